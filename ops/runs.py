"""Runs as the run table records them: list, look up, close one that can never complete."""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from monitoring.model import Severity
from monitoring.naming import alarm_name
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


def close_run(target: Target, run_id: str, reason: str) -> tuple[RunRecord, str]:
    """Mark a run that can never complete as closed, and clear the data-loss alarm it latched.

    The alarm treats missing data as "keep the state", and a closed run is never checked again, so
    nothing else would clear it. It is set to OK only when no other run is still short: otherwise
    the verifier's next check of that run would raise it again at once. Returns the run and what
    happened to the alarm.
    """
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
    return get_run(target, run_id), _clear_data_loss_alarm(target, run_id, reason)


def _clear_data_loss_alarm(target: Target, run_id: str, reason: str) -> str:
    name = alarm_name(target.outputs.base_name, "verifier", "data-loss", Severity.PAGE)
    still_short = [r.run.run_id for r in list_runs(target) if r.run.status == run_store.STATUS_SHORT]
    if still_short:
        return f"{name} left as it is: runs {still_short} are still short"
    cloudwatch = target.client("cloudwatch")
    with aws_errors(f"CloudWatch at {target.where}"):
        found = cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms", [])
        if not found or found[0]["StateValue"] == "OK":
            return f"{name} is OK" if found else f"{name} does not exist here"
        cloudwatch.set_alarm_state(
            AlarmName=name, StateValue="OK", StateReason=f"run {run_id} closed by on-call: {reason}"[:1023]
        )
    return f"{name} set to OK"
