"""The on-call verbs, run as on-call runs them (the `cidb` CLI), on an emulator after real load tests.

GIVEN an emulator that outlives two small load tests (one clean, one with poison in the DLQ),
WHEN on-call runs a verb against it, THEN the verb names what really happened.
"""

from __future__ import annotations

import json
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from emulated import lambda_context
from typer.testing import CliRunner, Result

from cidb.cli import app
from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.esm import to_lambda_record
from loadtest.emulator.moto_server import ACCOUNT_ID, MotoServer
from loadtest.faults.lock_release import plant_stale_lock
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from ops.dlq import redrive, show
from ops.errors import OpsError
from ops.locks import break_lock, run_lock
from ops.runs import get_run
from ops.target import resolve_target
from pipeline import run_store
from pipeline.collection import build_records, synthetic_policies, trace_id
from pipeline.dlq_messages import peek_messages
from pipeline.layout import index_key
from pipeline.lock import S3Lock
from pipeline.settings import LockSettings

runner = CliRunner()


@dataclass
class Deployed:
    result: LoadTestResult
    endpoint: str

    @property
    def outputs_file(self) -> Path:
        return self.result.report_dir / "stack-outputs.json"

    @property
    def run_id(self) -> str:
        return str(self.result.summary["run_id"])

    @property
    def target(self) -> list[str]:
        return ["--outputs", str(self.outputs_file), "--endpoint-url", self.endpoint]

    @property
    def session(self) -> AwsSession:
        return AwsSession(self.endpoint)

    @property
    def outputs(self) -> Any:
        return resolve_target(outputs_file=self.outputs_file, endpoint_url=self.endpoint).outputs


def cidb(*args: str) -> Result:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    assert "Traceback" not in result.output, result.output
    return result


def _load_test(server: MotoServer, out: Path, **options: Any) -> Deployed:
    result = run_loadtest(LoadTestOptions(endpoint_url=server.endpoint_url, out=out, **{"policies": 40, **options}))
    return Deployed(result, server.endpoint_url)


@pytest.fixture(scope="module")
def server(moto_server: MotoServer) -> MotoServer:
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST")).close()
    return moto_server


@pytest.fixture(scope="module")
def clean(server: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    return _load_test(server, tmp_path_factory.mktemp("clean"))


@pytest.fixture(scope="module")
def poisoned(server: MotoServer, clean: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    return _load_test(server, tmp_path_factory.mktemp("poisoned"), faults=("poison",))


@pytest.fixture(scope="module")
def seeded(server: MotoServer, poisoned: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Deployed:
    """The seed's unlocked read-append-overwrite: concurrent writers lose updates."""
    return _load_test(server, tmp_path_factory.mktemp("seeded"), profile="seed", policies=60)


def test_status_of_a_clean_run_is_healthy_and_exits_0(clean: Deployed) -> None:
    result = cidb("status", *clean.target)
    assert result.exit_code == 0, result.output
    assert "HEALTHY" in result.output and clean.run_id in result.output
    data = json.loads(cidb("status", "--json", *clean.target).output)
    assert (data["healthy"], data["queue"]["dlq_depth"], data["problems"]) == (True, 0, [])
    assert [(r["run_id"], r["status"], r["shortfall"]) for r in data["runs"]] == [(clean.run_id, "complete", 0)]


def test_status_with_poison_in_the_dlq_names_it_and_exits_1(poisoned: Deployed) -> None:
    result = cidb("status", *poisoned.target)
    assert result.exit_code == 1, result.output
    assert "UNHEALTHY" in result.output and "the DLQ holds 7 messages" in result.output
    data = json.loads(cidb("status", "--json", *poisoned.target).output)
    firing = {a["name"]: a for a in data["alarms"] if a["state"] == "ALARM"}
    dlq_alarm = f"{poisoned.outputs.base_name}-dlq-depth-critical"
    assert dlq_alarm in firing, data["alarms"]
    assert (firing[dlq_alarm]["severity"], firing[dlq_alarm]["runbook"]) == ("critical", "docs/runbook.md#dlq-depth")
    assert data["queue"]["dlq_depth"] == 7


def test_an_endpoint_alone_finds_its_deployment_or_says_which_to_choose(clean: Deployed, poisoned: Deployed) -> None:
    result = cidb("status", "--endpoint-url", poisoned.endpoint)
    assert result.exit_code == 2
    assert "holds deployments" in result.output and "stack-outputs.json" in result.output


def test_dlq_show_decodes_and_groups_the_poison_by_error(poisoned: Deployed) -> None:
    messages = json.loads(cidb("dlq", "show", "--json", *poisoned.target).output)
    assert len(messages) == 7
    assert all(m["error"] and m["record_key"] is None for m in messages), messages
    # the two records damaged in transit still name the record they were meant to be
    damaged = [m for m in messages if "damaged in transit" in m["error"]]
    assert len(damaged) == 2 and all(m["claimed_key"] and m["claimed_trace_id"] for m in damaged), messages
    shown = cidb("dlq", "show", *poisoned.target).output
    assert "message body is not JSON" in shown and "DLQ: 7 messages" in shown
    assert len(json.loads(cidb("dlq", "show", "--json", *poisoned.target).output)) == 7, "show consumed messages"


def test_verify_names_damaged_records_dlq_with_the_validators_error(poisoned: Deployed) -> None:
    result = cidb("verify", "--json", poisoned.run_id, *poisoned.target)
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert (data["shortfall"], data["lost"], data["by_cause"]["dlq"], data["by_cause"]["unknown"]) == (2, 0, 2, 0)
    assert all(m["cause"] == "dlq" and "wrong type" in m["detail"] for m in data["missing"]), data["missing"]
    # Nothing was lost, so the output's version history was never read
    assert data["versions_read"] == 0


def test_verify_a_complete_run(clean: Deployed) -> None:
    result = cidb("verify", clean.run_id, *clean.target)
    assert result.exit_code == 0, result.output
    assert f"COMPLETE  run {clean.run_id}: expected 40, written 40 unique" in result.output


def test_trace_follows_a_record_to_its_part_row_and_its_log_lines(clean: Deployed) -> None:
    result = cidb("trace", clean.run_id, "--seq", "7", *clean.target)
    assert result.exit_code == 0, result.output
    for expected in ("record received", "rows committed", "run published", "run reconciled", "part: "):
        assert expected in result.output, result.output
    by_trace_id = cidb("trace", clean.run_id, "--trace-id", trace_id(clean.run_id, 7), *clean.target)
    assert f"seq 7 trace id {trace_id(clean.run_id, 7)}" in by_trace_id.output
    part_key, row = result.output.split("part: s3://…/")[1].split()[0], int(result.output.split(" row ")[1].split()[0])
    body = clean.session.client("s3").get_object(Bucket=clean.outputs.bucket_name, Key=part_key)["Body"].read()
    assert f",{clean.run_id},7," in body.decode().splitlines()[row], "the row shown is not the record's"


def test_query_lists_prints_and_runs_saved_queries(clean: Deployed) -> None:
    listed = cidb("query", "--list").output
    assert "trace-run" in listed and "lock-contention" in listed
    printed = cidb("query", "trace-run", "--print", "--run-id", clean.run_id, *clean.target).output
    assert f'filter run_id = "{clean.run_id}"' in printed and clean.outputs.reporter_log_group_name in printed
    ran = cidb("query", "reporter-errors", "--since", "2h", *clean.target)
    assert ran.exit_code == 0, ran.output
    assert "the endpoint returned no fields" in ran.output or "rows" in ran.output


def test_lock_break_refuses_a_fresh_lock_and_breaks_a_stale_one(clean: Deployed) -> None:
    s3, bucket = clean.session.client("s3"), clean.outputs.bucket_name
    S3Lock(s3, bucket, index_key(ACCOUNT_ID, clean.run_id), LockSettings(), owner="writer-at-work").acquire()
    refused = cidb("lock", "break", clean.run_id, *clean.target)
    assert refused.exit_code == 2 and "is not stale" in refused.output, refused.output
    assert "writer-at-work" in cidb("lock", "show", clean.run_id, *clean.target).output

    s3.delete_object(Bucket=bucket, Key=index_key(ACCOUNT_ID, clean.run_id) + ".lock")
    plant_stale_lock(s3, bucket, ACCOUNT_ID, clean.run_id)  # a lease of 0 s: stale once S3's clock ticks
    time.sleep(1.5)
    status = json.loads(cidb("status", "--json", *clean.target).output)
    assert [(lock["run_id"], lock["stale"]) for lock in status["locks"]] == [(clean.run_id, True)]
    assert status["healthy"] is False
    broken = cidb("lock", "break", clean.run_id, *clean.target)
    assert broken.exit_code == 0 and "deleted" in broken.output, broken.output
    assert "No lock is held." in cidb("lock", "show", clean.run_id, *clean.target).output


def test_lock_break_deletes_only_the_lock_it_showed(clean: Deployed) -> None:
    target = resolve_target(outputs_file=clean.outputs_file, endpoint_url=clean.endpoint)
    s3 = clean.session.client("s3")
    plant_stale_lock(s3, clean.outputs.bucket_name, ACCOUNT_ID, clean.run_id)
    time.sleep(1.5)
    shown = run_lock(target, get_run(target, clean.run_id))
    assert shown.stale
    new_writer = LockSettings(timeout_seconds=1)  # a writer's own lease decides when it may take a lock over
    S3Lock(s3, clean.outputs.bucket_name, index_key(ACCOUNT_ID, clean.run_id), new_writer, owner="new").acquire()
    with pytest.raises(OpsError, match="changed since it was shown"):
        break_lock(target, shown, force=False)
    assert run_lock(target, get_run(target, clean.run_id)).owner == "new"


def _start_run(deployed: Deployed, run_id: str, count: int) -> list[str]:
    records = build_records(synthetic_policies(count, 7, ACCOUNT_ID), run_id=run_id, account_id=ACCOUNT_ID)
    run_store.start_run(
        deployed.session.client("dynamodb"),
        deployed.session.client("s3"),
        table=deployed.outputs.run_table_name,
        bucket=deployed.outputs.bucket_name,
        run_id=run_id,
        account_id=ACCOUNT_ID,
        source="synthetic",
        keys=[r.key for r in records],
    )
    return [r.to_json() for r in records]


def _reporter_pass(deployed: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployed reporter handler over whatever the queue holds, settling as the mapping does."""
    from pipeline import reporter

    spec, outputs, sqs = deployed.result.spec, deployed.outputs, deployed.session.client("sqs")
    env = {
        **deployed.session.function_environment(),
        **spec.reporter_environment(run_table=outputs.run_table_name, bucket=outputs.bucket_name),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if reporter.metrics.namespace is None:  # imported before the Lambda environment was set
        monkeypatch.setattr(reporter.metrics, "namespace", spec.metrics_namespace)
    while got := sqs.receive_message(
        QueueUrl=outputs.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
    ).get("Messages", []):
        event = {"Records": [to_lambda_record(m, outputs.queue_arn, outputs.region) for m in got]}
        failed = {f["itemIdentifier"] for f in reporter.handler(event, lambda_context())["batchItemFailures"]}
        assert not failed, failed
        sqs.delete_message_batch(
            QueueUrl=outputs.queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(got)],
        )


def test_redrive_then_a_reporter_pass_leaves_no_shortfall(poisoned: Deployed, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a run whose 10 records all exhausted their receives (a reporter outage), next to 7 poison messages
    run_id, outputs, sqs = "outage-run", poisoned.outputs, poisoned.session.client("sqs")
    bodies = _start_run(poisoned, run_id, 10)
    sqs.send_message_batch(
        QueueUrl=outputs.dlq_url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies)]
    )
    short = cidb("verify", run_id, *poisoned.target)
    assert short.exit_code == 1 and "shortfall 10" in short.output and "dlq 10" in short.output, short.output

    # WHEN the cause's alarm still fires, redrive refuses; a dry run moves nothing
    cloudwatch, cause = poisoned.session.client("cloudwatch"), f"{outputs.base_name}-reporter-errors-critical"
    cloudwatch.set_alarm_state(AlarmName=cause, StateValue="ALARM", StateReason="test: the outage goes on")
    refused = cidb("dlq", "redrive", *poisoned.target)
    assert refused.exit_code == 2 and cause in refused.output, refused.output
    assert "would move 10 messages" in cidb("dlq", "redrive", "--dry-run", "--force", *poisoned.target).output
    cloudwatch.set_alarm_state(AlarmName=cause, StateValue="OK", StateReason="test: fixed")
    moved = cidb("dlq", "redrive", "--rate", "100", *poisoned.target)

    # THEN the records move, the poison stays, and after a reporter pass the run is complete
    assert moved.exit_code == 0 and "Moved 10 of 10" in moved.output and "Left 7" in moved.output, moved.output
    assert len(json.loads(cidb("dlq", "show", "--json", *poisoned.target).output)) == 7
    _reporter_pass(poisoned, monkeypatch)
    done = cidb("verify", run_id, *poisoned.target)
    assert done.exit_code == 0 and "shortfall 0" in done.output, done.output


def test_a_record_nowhere_gets_its_trace_id_and_its_run_can_be_closed(clean: Deployed) -> None:
    _start_run(clean, "never-sent", 3)
    data = json.loads(cidb("verify", "never-sent", "--json", *clean.target).output)
    assert [(m["seq"], m["cause"], m["trace_id"]) for m in data["missing"]] == [
        (seq, "never-published", trace_id("never-sent", seq)) for seq in (1, 2, 3)
    ]
    cloudwatch, data_loss = clean.session.client("cloudwatch"), f"{clean.outputs.base_name}-verifier-data-loss-page"
    cloudwatch.set_alarm_state(AlarmName=data_loss, StateValue="ALARM", StateReason="test: never-sent is short")
    closed = cidb("runs", "close", "never-sent", "--reason", "collector crashed before publishing", *clean.target)
    assert closed.exit_code == 0 and f"{data_loss} set to OK" in closed.output, closed.output
    state = cloudwatch.describe_alarms(AlarmNames=[data_loss])["MetricAlarms"][0]
    assert (state["StateValue"], "never-sent" in state["StateReason"]) == ("OK", True)
    runs = {r["run_id"]: r for r in json.loads(cidb("runs", "--json", *clean.target).output)}
    assert (runs["never-sent"]["status"], runs["never-sent"]["closed_reason"]) == (
        "closed",
        "collector crashed before publishing",
    )
    unverified = run_store.unverified_runs(clean.session.client("dynamodb"), table=clean.outputs.run_table_name)
    assert "never-sent" not in [r.run_id for r in unverified], "the verifier would keep the data-loss alarm latched"
    refused = cidb("runs", "close", clean.run_id, "--reason", "x", *clean.target)
    assert refused.exit_code == 2 and "is complete" in refused.output


def test_closing_a_run_leaves_the_data_loss_alarm_while_another_run_is_short(clean: Deployed) -> None:
    dynamodb, table = clean.session.client("dynamodb"), clean.outputs.run_table_name
    for run_id in ("short-a", "short-b"):
        _start_run(clean, run_id, 2)
        run_store.mark_verified(dynamodb, table=table, run_id=run_id, written=1, missing=1)
    cloudwatch, data_loss = clean.session.client("cloudwatch"), f"{clean.outputs.base_name}-verifier-data-loss-page"
    cloudwatch.set_alarm_state(AlarmName=data_loss, StateValue="ALARM", StateReason="test: two short runs")
    closed = cidb("runs", "close", "short-a", "--reason", "accepted", *clean.target)
    assert closed.exit_code == 0 and "left as it is: runs ['short-b'] are still short" in closed.output, closed.output
    assert cloudwatch.describe_alarms(AlarmNames=[data_loss])["MetricAlarms"][0]["StateValue"] == "ALARM"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["verify", "no-such-run"], "is not in run table"),
        (["query", "no-such-query"], "no saved query 'no-such-query'"),
        (["trace", "RUN", "--seq", "1", "--trace-id", "t"], "exactly one of --seq N or --trace-id T"),
        (["query", "reporter-errors", "--since", "soon"], "--since 'soon'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(clean: Deployed, args: list[str], message: str) -> None:
    result = cidb(*args, *clean.target)
    assert result.exit_code == 2 and message in result.output, result.output
    assert len(result.output.strip().splitlines()) <= 2


def test_a_stack_without_the_outputs_and_an_endpoint_that_is_down(tmp_path: Path) -> None:
    partial = tmp_path / "outputs.json"
    partial.write_text(json.dumps({"queue_url": "https://sqs.example/q"}))
    result = cidb("status", "--outputs", str(partial))
    assert result.exit_code == 2 and "lacks stack outputs" in result.output and "base_name" in result.output
    down = cidb("status", "--endpoint-url", "http://127.0.0.1:9")
    assert down.exit_code == 2 and "cannot reach http://127.0.0.1:9" in down.output


def test_redrive_deletes_only_what_sqs_confirmed_it_sent(poisoned: Deployed) -> None:
    # GIVEN 4 records in the DLQ, and SQS refusing one entry of each SendMessageBatch
    outputs = poisoned.outputs
    bodies = _start_run(poisoned, "refused-send", 4)
    sqs = poisoned.session.client("sqs")
    sqs.send_message_batch(
        QueueUrl=outputs.dlq_url, Entries=[{"Id": str(n), "MessageBody": b} for n, b in enumerate(bodies)]
    )
    target = resolve_target(outputs_file=poisoned.outputs_file, endpoint_url=poisoned.endpoint)

    def refuse_first_entry(parsed: dict[str, Any], **_: Any) -> None:
        first, *rest = parsed.get("Successful", [])
        parsed["Successful"] = rest
        parsed["Failed"] = [{"Id": first["Id"], "SenderFault": False, "Code": "InternalError", "Message": "test"}]

    target.client("sqs").meta.events.register("after-call.sqs.SendMessageBatch", refuse_first_entry)
    # WHEN it is redriven
    result = redrive(target, force=True, rate=100)
    # THEN the refused message stays in the DLQ: nothing is lost, and it is named. (moto did send it; only the
    # answer said not. The copy left in the DLQ is then a duplicate at worst, which the reporter drops.)
    # (one refusal per SendMessageBatch: how many batches the 4 records took depends on the receives)
    refused = len(result.failed_sends)
    assert refused >= 1 and result.moved + refused == 4, result
    in_dlq = [m.key for m in show(target).messages if m.record and m.record.run_id == "refused-send"]
    queued = {m.key for m in peek_messages(sqs, outputs.queue_url) if m.record and m.record.run_id == "refused-send"}
    assert len(in_dlq) == refused and len(queued | set(in_dlq)) == 4


def test_verify_explains_the_seeds_lost_updates_as_the_load_test_did_and_s3_bears_it_out(seeded: Deployed) -> None:
    # GIVEN the seed's run, which lost records to concurrent overwrites
    summary = seeded.result.summary
    forensics = summary["forensics"]
    assert summary["lost"] > 0 and forensics["by_cause"]["overwritten"] == summary["lost"], forensics["by_cause"]
    assert forensics["by_cause"]["unknown"] == 0
    # WHEN on-call verifies the run on the deployment
    result = cidb("verify", "--json", seeded.run_id, *seeded.target)
    data = json.loads(result.output)
    # THEN verify, which shares the load test's implementation, gives every record the same cause
    assert result.exit_code == 1 and data["lost"] == summary["lost"] and data["by_cause"] == forensics["by_cause"]
    s3, bucket = seeded.session.client("s3"), seeded.outputs.bucket_name

    def keys_in(evidence: dict[str, Any], which: str) -> list[str]:
        got = s3.get_object(Bucket=bucket, Key=evidence["object_key"], VersionId=evidence[which]["version_id"])
        return [line.split(",", 1)[0] for line in got["Body"].read().decode().splitlines()[1:]]

    # AND S3 bears each one out: in the version named as holding it, not in the later one named as dropping it,
    # each written by a different writer (the invocation's request id, from the objects' metadata)
    for missing in data["missing"]:
        evidence = missing["evidence"]
        assert missing["key"] in keys_in(evidence, "held_in") and missing["key"] not in keys_in(evidence, "dropped_by")
        held_by, dropped_by = evidence["held_in"]["writer"], evidence["dropped_by"]["writer"]
        assert held_by and dropped_by and held_by != dropped_by, evidence
    # AND the report starts with why, and draws the writers whose cycles overlapped
    page = (seeded.result.report_dir / "report.html").read_text()
    assert page.index("Why records were lost") < page.index("class='cards'")
    assert "write cycles (red: its write dropped rows" in page and forensics["writers"]


def test_a_clean_run_is_verified_without_reading_object_versions(clean: Deployed) -> None:
    data = json.loads(cidb("verify", "--json", clean.run_id, *clean.target).output)
    assert (data["shortfall"], data["versions_read"], clean.result.summary["forensics"]["versions_read"]) == (0, 0, 0)
