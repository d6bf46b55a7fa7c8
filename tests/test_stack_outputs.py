"""Outputs and structure: what `pulumi stack output --json` holds, and the component tree."""

from __future__ import annotations

import dataclasses
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pulumi_mocks
import pytest
from pulumi_mocks import Deployment, deploy

from ops.outputs import StackOutputs

ROOT = Path(__file__).resolve().parent.parent
# The contract with every `cidb` verb's `--stack`/`--outputs FILE`; docs/deploy.md lists the same names.
EXPORTS = {
    "profile",
    "base_name",
    "region",
    "topic_arn",
    "queue_url",
    "queue_arn",
    "queue_name",
    "dlq_url",
    "dlq_arn",
    "dlq_name",
    "bucket_name",
    "run_table_name",
    *(f"{key}_{what}" for key in ("collector", "reporter", "verifier") for what in ("function_name", "log_group_name")),
}
MONITORING_EXPORTS = {"page_topic_arn", "ticket_topic_arn", "dashboards"}


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


def test_outputs_are_the_documented_snake_case_names(tuned: Deployment) -> None:
    assert set(tuned.outputs) == EXPORTS, f"stack outputs differ: {set(tuned.outputs) ^ EXPORTS}"


def test_deploy_guide_lists_every_output() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    missing = sorted(name for name in EXPORTS if f"| `{name}` |" not in guide)
    assert not missing, f"docs/deploy.md outputs table lacks {missing}"


def test_outputs_name_the_real_resources(tuned: Deployment) -> None:
    o, spec = tuned.outputs, tuned.settings.spec
    queue, dlq = tuned.one("aws:sqs/queue:Queue", "-queue"), tuned.one("aws:sqs/queue:Queue", "-dlq")
    assert (o["queue_url"], o["queue_arn"], o["queue_name"]) == (
        queue.state["url"],
        queue.state["arn"],
        spec.queue_name,
    ), queue.urn
    assert (o["dlq_url"], o["dlq_arn"], o["dlq_name"]) == (dlq.state["url"], dlq.state["arn"], spec.dlq_name), dlq.urn
    assert o["topic_arn"] == tuned.one("aws:sns/topic:Topic").state["arn"]
    assert o["bucket_name"] == tuned.one("aws:s3/bucket:Bucket").state["bucket"]
    assert o["run_table_name"] == spec.run_table_name
    assert (o["profile"], o["region"], o["base_name"]) == ("tuned", pulumi_mocks.REGION, spec.base_name)
    for key in ("collector", "reporter", "verifier"):
        fn = getattr(spec, key)
        assert (o[f"{key}_function_name"], o[f"{key}_log_group_name"]) == (fn.name, fn.log_group), key


def test_every_aws_resource_belongs_to_a_cidb_component(tuned: Deployment) -> None:
    orphans = [r.urn for r in tuned.resources if r.type.startswith("aws:") and "cidb:stack:" not in r.urn]
    assert not orphans, f"resources outside a component: {orphans}"


def test_pipeline_exposes_what_monitoring_reads(tuned: Deployment) -> None:
    pipeline = tuned.pipeline
    for attribute in ("topic", "queue", "dlq", "bucket", "run_table", "spec"):
        assert getattr(pipeline, attribute, None) is not None, f"CidbPipeline.{attribute} missing"
    for attribute in ("functions", "log_groups"):
        assert set(getattr(pipeline, attribute)) == {"collector", "reporter", "verifier"}, f"CidbPipeline.{attribute}"


def test_main_program_exports_the_pipeline_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    exported: dict[str, Any] = {}
    monkeypatch.setattr(pulumi, "export", lambda name, value: exported.__setitem__(name, value))
    pulumi.runtime.set_all_config({})

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"))

    program()
    expected = EXPORTS | MONITORING_EXPORTS
    assert set(exported) == expected, f"__main__.py exports differ: {set(exported) ^ expected}"


def test_main_program_wires_alarm_config_into_the_monitoring(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a stack that does not page and pins its runbook WHEN __main__.py runs THEN the alarms follow."""
    url = "https://github.com/acme/cidb/blob/0123abc/docs/runbook.md"
    monkeypatch.setattr(pulumi, "export", lambda name, value: None)
    pulumi_mocks.install()
    pulumi.runtime.set_all_config({"cidb:alarmActions": '["critical", "warning"]', "cidb:runbookUrl": url})
    pulumi_mocks.MONITOR.resources.clear()

    @pulumi.runtime.test
    def program() -> None:
        runpy.run_path(str(ROOT / "__main__.py"))

    program()
    alarms = [
        r.state
        for r in pulumi_mocks.MONITOR.resources.values()
        if r.urn.split("::")[2].endswith((":MetricAlarm", ":CompositeAlarm"))
    ]
    assert alarms and all(f"Runbook: {url}#" in a["alarmDescription"] for a in alarms), "cidb:runbookUrl"
    silent = {a.get("alarmName") or a.get("name") for a in alarms if a["actionsEnabled"] is False}
    assert silent == {"cidb-dev-pipeline-unhealthy-page", "cidb-dev-verifier-data-loss-page"}, silent


def test_load_test_reads_exactly_the_pipeline_outputs() -> None:
    fields = {f.name for f in dataclasses.fields(StackOutputs)}
    assert fields == EXPORTS, f"loadtest StackOutputs and stack exports differ: {fields ^ EXPORTS}"
