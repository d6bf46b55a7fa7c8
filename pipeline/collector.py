"""Collector Lambda: read policies, record the run, publish them to SNS in batches.

Events::

    {"source": "iam"}                                   # default; customer-managed policies
    {"source": "iam", "include_aws_managed": true}      # plus attached AWS-managed ones
    {"source": "synthetic", "count": 1500, "seed": 7, "run_id": "lt-1"}

``run_id`` defaults to one derived from the request id, which Lambda keeps across async
retries, so a retried collection republishes into the same run and the reporter's
deduplication absorbs the repeats.

Environment variables: see :mod:`pipeline.settings`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from pipeline import aws
from pipeline.collection import build_records, synthetic_policies
from pipeline.iam_source import iter_policies
from pipeline.publish_results import write_publish_results
from pipeline.publisher import BatchPublisher, PublishIncomplete
from pipeline.record import CollectedPolicy
from pipeline.run_store import start_run
from pipeline.settings import ConfigError, load_settings
from pipeline.telemetry import LogField, MetricName, make_logger, make_metrics, report_sdk_retries

logger = make_logger()
metrics = make_metrics()
SOURCES = ("iam", "synthetic")


def _synthetic_from_event(event: dict[str, Any], account_id: str) -> list[CollectedPolicy]:
    try:
        count, seed = int(event["count"]), int(event.get("seed", 0))
    except (KeyError, TypeError, ValueError):
        raise ConfigError("synthetic collection needs an integer 'count' (and optional integer 'seed')") from None
    return synthetic_policies(count, seed, account_id)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    settings = load_settings(need_bucket=True, need_topic=True)
    source = event.get("source", "iam")
    if source not in SOURCES:
        raise ConfigError(f"event field 'source'={source!r} must be one of {SOURCES}")
    account_id = context.invoked_function_arn.split(":")[4]
    run_id = str(event.get("run_id") or f"run-{context.aws_request_id}")
    logger.append_keys(**{LogField.RUN_ID: run_id})

    if source == "synthetic":
        policies = _synthetic_from_event(event, account_id)
    else:
        policies = list(iter_policies(aws.client("iam"), include_aws_managed=bool(event.get("include_aws_managed"))))
    records = build_records(policies, run_id=run_id, account_id=account_id)
    metrics.add_metric(name=MetricName.POLICIES_COLLECTED, unit="Count", value=len(records))

    start_run(
        aws.client("dynamodb"),
        aws.client("s3"),
        table=settings.run_table,
        bucket=settings.bucket,
        run_id=run_id,
        account_id=account_id,
        source=source,
        keys=[r.key for r in records],
    )
    logger.info("run started", extra={LogField.EXPECTED: len(records), "source": source})

    publisher = BatchPublisher(
        aws.client("sns"),
        settings.topic_arn,
        s3=aws.client("s3"),
        bucket=settings.bucket,
        max_attempts=settings.publish_max_attempts,
        logger=logger,
        metrics=metrics,
    )
    result = publisher.publish(records)
    try:
        write_publish_results(aws.client("s3"), settings.bucket, run_id, len(records), result)
    except Exception as exc:
        logger.warning(
            f"publish results not recorded; forensics will take the collector for one that never finished: {exc}",
            extra={LogField.ERROR_CODE: aws.error_code(exc)},
        )
    report_sdk_retries(metrics, logger, aws.take_sdk_retries(), aws.take_retry_errors())
    summary = {
        "run_id": run_id,
        "expected": len(records),
        "published": result.published,
        "publish_calls": result.calls,
        "republished": result.republished,
        "offloaded": result.offloaded,
        "given_up": len(result.given_up),
    }
    logger.info("run published", extra=summary)
    if result.given_up:
        raise PublishIncomplete(
            f"run {run_id}: {len(result.given_up)} of {len(records)} records could not be published "
            f"after {settings.publish_max_attempts} attempts (first ids: {result.given_up[:10]}); "
            "see the 'publish entry failed' log lines for SNS's reasons"
        )
    return summary
