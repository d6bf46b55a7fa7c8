"""What a load test is asked to do, checked before anything starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.faults import FAULTS
from loadtest.faults.lock_release import LOCK_RELEASE_FAILURES
from loadtest.latency import PROFILES as LATENCY_PROFILES

TARGETS = ("local", "stack")
SOURCES = ("synthetic", "iam")


class LoadTestError(RuntimeError):
    """The load test could not run; the message says what to change."""


@dataclass
class LoadTestOptions:
    policies: int = 1500
    profile: str = "tuned"
    concurrency: int | None = None
    source: str = "synthetic"
    out: Path | None = None
    endpoint_url: str | None = None
    target: str = "local"
    stack: str | None = None
    outputs_file: Path | None = None
    seed: int = 7
    deadline_seconds: float = 900.0
    idle_seconds: float = 3.0
    # A run cut off by its deadline waits this long for messages returned with a delay to become visible
    # (then they count as queued); None: up to the reporter's longest retry delay, at most 60 s.
    settle_seconds: float | None = None
    retry_delay_seconds: int = 1
    inject_stale_lock: bool = False
    lambda_lock: Path | None = None
    measure_floor: bool = False  # measure the emulator floor even if this machine has one cached
    fail_lock_release: str | None = None  # a key of loadtest.faults.lock_release.LOCK_RELEASE_FAILURES
    faults: tuple[str, ...] = ()  # names in loadtest.faults.FAULTS; one run each
    baseline: Path | None = None  # a `cidb bench` baseline whose values the report's cards show
    overrides: dict[str, Any] = field(default_factory=dict)
    iam: bool = True  # the embedded emulator enforces the functions' identity policies
    revoke: tuple[str, ...] = ()  # FUNCTION:ACTION grants left out of the emulator's roles (a broken policy)
    latency: str = "none"  # a name in loadtest.latency.PROFILES: none (the emulator as it is) or aws

    def problems(self) -> list[str]:
        out = []
        if self.policies < 1:
            out.append(f"--policies={self.policies} must be at least 1")
        if self.target not in TARGETS:
            out.append(f"--target={self.target!r} must be one of {TARGETS}")
        if self.source not in SOURCES:
            out.append(f"--source={self.source!r} must be one of {SOURCES}")
        if self.concurrency is not None and self.concurrency < 1:
            out.append(f"--concurrency={self.concurrency} must be at least 1")
        if self.target == "stack" and self.inject_stale_lock:
            out.append("--inject-stale-lock needs the local target")
        if self.fail_lock_release is not None and self.fail_lock_release not in LOCK_RELEASE_FAILURES:
            out.append(f"--fail-lock-release={self.fail_lock_release!r} must be one of {tuple(LOCK_RELEASE_FAILURES)}")
        if self.target == "stack" and self.fail_lock_release is not None:
            out.append("--fail-lock-release needs the local target")
        if self.revoke and (not self.iam or self.target != "local" or self.endpoint_url):
            out.append("--revoke needs IAM enforced: local target, own emulator (no --endpoint-url), no --no-iam")
        if self.baseline is not None and not self.baseline.is_file():
            out.append(f"--baseline={self.baseline}: no such file")
        if self.lambda_lock is not None and not self.lambda_lock.is_file():
            out.append(f"--lambda-lock={self.lambda_lock}: no such file")
        if self.target == "stack" and self.lambda_lock is not None:
            out.append("--lambda-lock needs the local target: a deployed stack runs the artifact it was deployed with")
        if self.target == "stack" and self.faults:
            out.append("--fault needs the local target: faults are injected into the emulator and its runtime")
        unknown = [name for name in self.faults if name not in FAULTS]
        if unknown:
            out.append(f"--fault {unknown} unknown; known: {', '.join(FAULTS)}")
        if self.latency not in LATENCY_PROFILES:
            out.append(f"--latency={self.latency!r} must be one of {tuple(LATENCY_PROFILES)}")
        elif self.target == "stack" and self.latency != "none":
            out.append(f"--latency {self.latency} needs the local target: a deployed stack already runs on AWS")
        if self.target == "stack" and self.source != "synthetic":
            out.append("--target stack publishes synthetic policies; --source iam needs the local target")
        return out
