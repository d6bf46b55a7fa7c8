"""The names every verb needs from a deployment: the Pulumi stack's outputs.

Local provisioning returns the same structure, so the load test, the on-call verbs, a local
run and a run against a deployed stack follow one code path after set-up.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass, fields
from pathlib import Path


class OutputsError(ValueError):
    """Stack outputs are missing a name the verbs need, or cannot be read."""


@dataclass(frozen=True)
class StackOutputs:
    topic_arn: str
    queue_url: str
    queue_arn: str
    queue_name: str
    dlq_url: str
    dlq_arn: str
    dlq_name: str
    bucket_name: str
    run_table_name: str
    collector_function_name: str
    reporter_function_name: str
    verifier_function_name: str
    collector_log_group_name: str
    reporter_log_group_name: str
    verifier_log_group_name: str
    profile: str
    region: str
    base_name: str  # prefix of alarm, dashboard and saved-query names

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: dict[str, object], source: str) -> StackOutputs:
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if not data.get(n)]
        if missing:
            raise OutputsError(f"{source} lacks stack outputs {missing}; run `pulumi up` with this project's program")
        return cls(**{n: str(data[n]) for n in names})


def load_outputs(*, outputs_file: Path | None = None, stack: str | None = None) -> StackOutputs:
    """From a JSON file (machines without the Pulumi CLI) or from ``pulumi stack output --json``."""
    if outputs_file is not None:
        try:
            data = json.loads(outputs_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise OutputsError(f"cannot read stack outputs from {outputs_file}: {exc}") from None
        return StackOutputs.from_mapping(data, str(outputs_file))
    cmd = ["pulumi", "stack", "output", "--json", *(["--stack", stack] if stack else [])]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    except FileNotFoundError:
        raise OutputsError(
            "the Pulumi CLI is not installed; pass --outputs FILE with `pulumi stack output --json`"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise OutputsError(f"`{' '.join(cmd)}` failed: {exc.stderr.strip()}") from None
    return StackOutputs.from_mapping(json.loads(done.stdout), " ".join(cmd))
