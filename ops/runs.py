"""Runs as the run table records them: list, look up, close one that can never complete."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.errors import OpsError, aws_errors
from ops.target import Target
from pipeline import run_store
from pipeline.run_store import RunRecord


@dataclass(frozen=True)
class RunRow:
    run: RunRecord

    @property
    def written(self) -> int:
        """Verified rows when the verifier has checked the run; the reporters' count until then."""
        return self.run.verified_written if self.run.verified_written is not None else self.run.reported_written

    @property
    def shortfall(self) -> int | None:
        return self.run.verified_missing

    @property
    def healthy(self) -> bool:
        return self.run.status != run_store.STATUS_SHORT

    def to_dict(self) -> dict[str, Any]:
        return {**self.run.__dict__, "written": self.written, "shortfall": self.shortfall}


def list_runs(target: Target, last: int | None = None) -> list[RunRow]:
    with aws_errors(f"run table {target.outputs.run_table_name} at {target.where}"):
        runs = run_store.all_runs(target.client("dynamodb"), table=target.outputs.run_table_name)
    return [RunRow(r) for r in runs[:last]]


def get_run(target: Target, run_id: str) -> RunRecord:
    with aws_errors(f"run table {target.outputs.run_table_name} at {target.where}"):
        run = run_store.get_run(target.client("dynamodb"), table=target.outputs.run_table_name, run_id=run_id)
    if run is None:
        raise OpsError(f"run {run_id!r} is not in run table {target.outputs.run_table_name}; `cidb runs` lists them")
    return run


def close_run(target: Target, run_id: str, reason: str) -> RunRecord:
    """Mark a run that can never complete as closed, so that its data-loss alarm clears."""
    if not reason.strip():
        raise OpsError("--reason must say why the run can never complete; it is kept in the run record")
    run = get_run(target, run_id)
    if run.status == run_store.STATUS_COMPLETE:
        raise OpsError(f"run {run_id} is complete; there is nothing to close")
    with aws_errors(f"run table {target.outputs.run_table_name} at {target.where}"):
        try:
            run_store.close_run(
                target.client("dynamodb"),
                table=target.outputs.run_table_name,
                run_id=run_id,
                reason=reason,
                closed_by=getpass.getuser(),
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise
            raise OpsError(f"run {run_id} completed meanwhile; it was not closed") from None
    return get_run(target, run_id)
