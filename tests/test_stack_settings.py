"""Settings: the spec's numbers reach the queue, the event source mapping and the functions.

GIVEN the default (tuned) stack configuration, WHEN the program runs against mocks,
THEN each resource carries the value the spec defines.
"""

from __future__ import annotations

import json

import pytest
from pulumi_mocks import Deployment, deploy

from pipeline.spec import RUNTIME

ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"
QUEUE = "aws:sqs/queue:Queue"


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


def test_tuned_reporter_batches_25_messages_within_5_seconds(tuned: Deployment) -> None:
    esm = tuned.one(ESM)
    assert esm.state["batchSize"] == 25, f"{esm.urn} batch size"
    assert esm.state["maximumBatchingWindowInSeconds"] == 5, f"{esm.urn} batching window"
    assert esm.state["eventSourceArn"] == tuned.outputs["queue_arn"], f"{esm.urn} must read this stack's queue"
    assert esm.state["functionName"] == tuned.function("reporter").state["arn"], f"{esm.urn} must drive the reporter"


def test_reporter_reports_partial_batch_failures(tuned: Deployment) -> None:
    esm = tuned.one(ESM)
    assert esm.state["functionResponseTypes"] == ["ReportBatchItemFailures"], f"{esm.urn} must report item failures"


def test_reporter_concurrency_is_capped_by_the_queue(tuned: Deployment) -> None:
    esm = tuned.one(ESM)
    expected = tuned.settings.spec.queue.max_concurrency
    assert esm.state["scalingConfig"] == {"maximumConcurrency": expected}, f"{esm.urn} scaling config"


def test_visibility_timeout_covers_six_reporter_timeouts_plus_window(tuned: Deployment) -> None:
    queue = tuned.one(QUEUE, "-queue")
    spec = tuned.settings.spec
    needed = 6 * spec.reporter.timeout_seconds + spec.queue.batching_window_seconds
    assert queue.state["visibilityTimeoutSeconds"] >= needed, f"{queue.urn} visibility timeout below {needed}"
    assert queue.state["visibilityTimeoutSeconds"] == spec.queue.visibility_timeout_seconds, queue.urn


def test_queue_redrives_to_the_dlq_after_max_receive_count(tuned: Deployment) -> None:
    queue = tuned.one(QUEUE, "-queue")
    redrive = json.loads(queue.state["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": tuned.outputs["dlq_arn"],
        "maxReceiveCount": tuned.settings.spec.queue.max_receive_count,
    }, f"{queue.urn} redrive policy"


def test_queues_are_encrypted_with_sse_sqs_and_keep_messages_as_specified(tuned: Deployment) -> None:
    spec = tuned.settings.spec.queue
    for suffix, retention in (("-queue", spec.retention_seconds), ("-dlq", spec.dlq_retention_seconds)):
        queue = tuned.one(QUEUE, suffix)
        assert queue.state["sqsManagedSseEnabled"] is True, f"{queue.urn} must use SSE-SQS"
        assert "kmsMasterKeyId" not in queue.state, f"{queue.urn}: SNS cannot deliver to an aws/sqs-encrypted queue"
        assert queue.state["messageRetentionSeconds"] == retention, f"{queue.urn} retention"
    assert spec.dlq_retention_seconds == 14 * 24 * 3600


def test_dlq_accepts_redrives_only_from_the_source_queue(tuned: Deployment) -> None:
    allow = tuned.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")
    assert allow.state["queueUrl"] == tuned.outputs["dlq_url"], f"{allow.urn} must sit on the DLQ"
    assert json.loads(allow.state["redriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [tuned.outputs["queue_arn"]],
    }, f"{allow.urn} redrive allow policy"


def test_topic_delivers_raw_messages_to_the_queue(tuned: Deployment) -> None:
    subscription = tuned.one("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.state["topic"] == tuned.outputs["topic_arn"], subscription.urn
    assert subscription.state["protocol"] == "sqs", subscription.urn
    assert subscription.state["endpoint"] == tuned.outputs["queue_arn"], subscription.urn
    assert subscription.state["rawMessageDelivery"] is True, f"{subscription.urn} must deliver raw messages"


@pytest.mark.parametrize("key", ["collector", "reporter"])
def test_collector_and_reporter_run_900_seconds_with_1024_mb(tuned: Deployment, key: str) -> None:
    function = tuned.function(key)
    assert function.state["timeout"] == 900, f"{function.urn} timeout"
    assert function.state["memorySize"] == 1024, f"{function.urn} memory"


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_function_matches_its_spec(tuned: Deployment, key: str) -> None:
    fn = getattr(tuned.settings.spec, key)
    function = tuned.function(key)
    assert function.state["name"] == fn.name, function.urn
    assert function.state["handler"] == fn.handler, function.urn
    assert function.state["runtime"] == RUNTIME, function.urn
    assert function.state["tracingConfig"] == {"mode": "Active"}, f"{function.urn} must trace when spec.tracing"


def test_environment_variables_are_exactly_the_specs(tuned: Deployment) -> None:
    spec, outputs = tuned.settings.spec, tuned.outputs
    shared = {"run_table": outputs["run_table_name"], "bucket": outputs["bucket_name"]}
    expected = {
        "collector": spec.collector_environment(topic_arn=outputs["topic_arn"], **shared),
        "reporter": spec.reporter_environment(**shared),
        "verifier": spec.verifier_environment(**shared),
    }
    for key, variables in expected.items():
        function = tuned.function(key)
        assert function.state["environment"] == {"variables": variables}, f"{function.urn} environment"


def test_functions_get_the_real_bucket_name_not_the_prefix(tuned: Deployment) -> None:
    bucket = tuned.one("aws:s3/bucket:Bucket")
    for key in ("collector", "reporter", "verifier"):
        function = tuned.function(key)
        assert function.state["environment"]["variables"]["CIDB_BUCKET"] == bucket.state["bucket"], (
            f"{function.urn} must name {bucket.urn}'s generated name"
        )


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_each_function_logs_json_to_its_own_log_group_made_first(tuned: Deployment, key: str) -> None:
    fn = getattr(tuned.settings.spec, key)
    log_group = tuned.one("aws:cloudwatch/logGroup:LogGroup", f"-{key}-logs")
    function = tuned.function(key)
    assert log_group.state["name"] == fn.log_group, log_group.urn
    assert log_group.state["retentionInDays"] == tuned.settings.spec.log_retention_days, f"{log_group.urn} retention"
    logging = function.state["loggingConfig"]
    assert (logging["logFormat"], logging["logGroup"]) == ("JSON", fn.log_group), function.urn
    order = [r.urn for r in tuned.resources]
    assert order.index(log_group.urn) < order.index(function.urn), f"{log_group.urn} must exist before {function.urn}"


def test_collector_runs_on_the_spec_schedule_with_the_iam_source(tuned: Deployment) -> None:
    rule = tuned.one("aws:cloudwatch/eventRule:EventRule", "-collector-")
    target = tuned.one("aws:cloudwatch/eventTarget:EventTarget", "-collector-")
    permission = tuned.one("aws:lambda/permission:Permission", "-collector-")
    collector = tuned.function("collector")
    assert rule.state["scheduleExpression"] == tuned.settings.spec.schedule_expression, rule.urn
    assert target.state["arn"] == collector.state["arn"], target.urn
    assert json.loads(target.state["input"]) == {"source": "iam"}, f"{target.urn} input"
    assert permission.state["principal"] == "events.amazonaws.com", permission.urn
    assert permission.state["sourceArn"] == rule.state["arn"], f"{permission.urn} must be scoped to {rule.urn}"
    assert permission.state["function"] == collector.state["name"], permission.urn


def test_verifier_runs_on_the_verify_schedule(tuned: Deployment) -> None:
    rule = tuned.one("aws:cloudwatch/eventRule:EventRule", "-verifier-")
    permission = tuned.one("aws:lambda/permission:Permission", "-verifier-")
    assert rule.state["scheduleExpression"] == tuned.settings.spec.verify_schedule_expression, rule.urn
    assert permission.state["sourceArn"] == rule.state["arn"], f"{permission.urn} must be scoped to {rule.urn}"
    assert permission.state["function"] == tuned.function("verifier").state["name"], permission.urn


def test_seed_profile_has_no_concurrency_cap_and_redrives_after_two_receives() -> None:
    seed = deploy({"profile": "seed"})
    esm = seed.one(ESM)
    queue = seed.one(QUEUE, "-queue")
    assert esm.state["batchSize"] == 1, f"{esm.urn} batch size"
    assert "scalingConfig" not in esm.state, f"{esm.urn}: no scaling config when max_concurrency is None"
    assert json.loads(queue.state["redrivePolicy"])["maxReceiveCount"] == 2, f"{queue.urn} redrive"
    assert seed.function("reporter").state["timeout"] == 20, "seed reporter timeout"
