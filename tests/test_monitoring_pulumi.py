"""The Pulumi layer under Pulumi's mocks: what it creates and what every resource points at."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pulumi
import pytest
from nested import strings
from pulumi_mocks import ACCOUNT, REGION, CidbMocks, mocked_outputs

from monitoring import MonitoredResources, build_monitoring
from pipeline.spec import build_spec
from queries import load_queries

SPEC = build_spec("tuned")
# Physical names differ from the spec's on purpose: AWS metrics must follow the resources passed in.
RESOURCES = MonitoredResources(**{f.name: f"deployed-{f.name}" for f in dataclasses.fields(MonitoredResources)})
EMAILS = ["oncall@example.com", "team@example.com"]
WEBHOOK = "https://hooks.example.com/cidb"
RUNBOOK = (Path(__file__).resolve().parents[1] / "docs" / "runbook.md").read_text()


@pytest.fixture(scope="module")
def stack():
    """GIVEN the component built under mocks WHEN all registrations resolved THEN tests read them."""
    return _build(CidbMocks())


def _build(mocks: CidbMocks) -> SimpleNamespace:
    pulumi.runtime.set_mocks(mocks, preview=False)
    from monitoring.component import PipelineMonitoring

    outputs: dict = {}

    @pulumi.runtime.test
    def build():
        component = PipelineMonitoring("monitoring", SPEC, RESOURCES, alarm_emails=EMAILS, webhook_url=WEBHOOK)
        return pulumi.Output.all(
            topic=component.alarm_topic_arn,
            dashboards=component.dashboard_names,
            composite=component.composite_alarm_name,
        ).apply(outputs.update)

    build()
    by_type: dict[str, list] = {}
    for resource in mocks.resources:
        by_type.setdefault(resource.typ.rsplit(":", 1)[-1], []).append(resource)
    return SimpleNamespace(outputs=outputs, of=lambda typ: by_type.get(typ, []))


def test_exports_topic_arn_composite_and_dashboard_names(stack):
    assert stack.outputs["topic"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:{SPEC.base_name}-alarms"
    assert stack.outputs["composite"] == build_monitoring(SPEC).composite.name
    assert set(stack.outputs["dashboards"].values()) == {d.name for d in build_monitoring(SPEC).dashboards}


def test_every_alarm_definition_is_deployed_as_defined(stack):
    deployed = {r.inputs["name"]: r for r in stack.of("MetricAlarm")}
    definitions = build_monitoring(SPEC, RESOURCES).alarms
    assert set(deployed) == {a.name for a in definitions}
    for alarm in definitions:
        inputs, metric = deployed[alarm.name].inputs, alarm.metric
        assert inputs["namespace"] == metric.namespace and inputs["metricName"] == metric.name, alarm.name
        assert inputs["dimensions"] == metric.dimension_map, (
            f"alarm {deployed[alarm.name].name} watches the wrong thing"
        )
        assert inputs.get("statistic", inputs.get("extendedStatistic")) == metric.statistic, alarm.name
        assert inputs["threshold"] == alarm.threshold and inputs["period"] == metric.period, alarm.name
        assert inputs["evaluationPeriods"] == alarm.evaluation_periods, alarm.name
        assert inputs["datapointsToAlarm"] == alarm.datapoints_to_alarm, alarm.name
        assert inputs["treatMissingData"] == alarm.treat_missing_data, alarm.name


def test_aws_dimensions_name_the_resources_passed_and_emf_the_spec_functions(stack):
    passed = {getattr(RESOURCES, f.name) for f in dataclasses.fields(RESOURCES)}
    services = {fn.name for fn in SPEC.functions}
    for alarm in stack.of("MetricAlarm"):
        inputs = alarm.inputs
        expected = services if inputs["namespace"] == SPEC.metrics_namespace else passed
        assert set(inputs["dimensions"].values()) <= expected, f"alarm {alarm.name}: {inputs['dimensions']}"


def test_every_alarm_notifies_alarm_and_ok_to_the_topic(stack):
    topic = stack.outputs["topic"]
    for alarm in [*stack.of("MetricAlarm"), *stack.of("CompositeAlarm")]:
        assert alarm.inputs["alarmActions"] == [topic], f"alarm {alarm.name} must notify the alarm topic"
        assert alarm.inputs["okActions"] == [topic], f"alarm {alarm.name} must send OK to the alarm topic"


def test_every_alarm_description_links_an_existing_runbook_entry(stack):
    for alarm in [*stack.of("MetricAlarm"), *stack.of("CompositeAlarm")]:
        anchor = alarm.inputs["alarmDescription"].rsplit("docs/runbook.md#", 1)[1]
        assert f'<a id="{anchor}"></a>' in RUNBOOK, f"alarm {alarm.name}: runbook has no #{anchor}"


def test_composite_rule_covers_the_critical_alarms(stack):
    (composite,) = stack.of("CompositeAlarm")
    critical = {r.inputs["name"] for r in stack.of("MetricAlarm") if r.inputs["name"].endswith("-critical")}
    named = set(composite.inputs["alarmRule"].replace('ALARM("', "").replace('")', "").split(" OR "))
    assert named == critical, f"composite {composite.name} must page on exactly the critical alarms"


def test_topic_is_encrypted_with_a_key_cloudwatch_may_use(stack):
    (topic,) = stack.of("Topic")
    (key,) = stack.of("Key")
    key_arn = mocked_outputs(key.typ, key.name, key.inputs)[1]["arn"]
    assert topic.inputs["kmsMasterKeyId"] == key_arn, (
        f"topic {topic.name} must use the customer managed key; alias/aws/sns blocks CloudWatch alarms"
    )
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    cloudwatch = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])


def test_topic_policy_lets_only_this_accounts_alarms_publish(stack):
    (policy,) = stack.of("TopicPolicy")
    statements = json.loads(policy.inputs["policy"])["Statement"]
    (cloudwatch,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert cloudwatch["Resource"] == policy.inputs["arn"] == stack.outputs["topic"]


def test_subscriptions_for_each_email_and_the_webhook(stack):
    subscriptions = {(s.inputs["protocol"], s.inputs["endpoint"]) for s in stack.of("TopicSubscription")}
    assert subscriptions == {("email", e) for e in EMAILS} | {("https", WEBHOOK)}
    assert all(s.inputs["topic"] == stack.outputs["topic"] for s in stack.of("TopicSubscription"))


def test_saved_queries_use_the_passed_log_groups(stack):
    deployed = {r.inputs["name"]: r.inputs for r in stack.of("QueryDefinition")}
    for query in load_queries():
        inputs = deployed[f"{SPEC.base_name}/{query.name}"]
        assert inputs["queryString"] == query.text
        assert inputs["logGroupNames"] == [RESOURCES.log_group(role) for role in query.log_groups]


def test_dashboards_render_resolved_names_and_alarm_arns(stack):
    alarm_arns = {f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{r.inputs['name']}" for r in stack.of("MetricAlarm")}
    for dashboard in stack.of("Dashboard"):
        body = json.loads(dashboard.inputs["dashboardBody"])
        text = json.dumps(body)
        assert "deployed-" in text and "Output" not in text, f"dashboard {dashboard.name} must hold resolved names"
        for widget in body["widgets"]:
            if widget["type"] == "alarm":
                assert alarm_arns <= set(widget["properties"]["alarms"]), f"dashboard {dashboard.name}"
            if widget["type"] == "log":
                assert "SOURCE 'deployed-" in widget["properties"]["query"], f"dashboard {dashboard.name}"


def test_no_input_names_the_commercial_partition_in_aws_cn():
    """GIVEN getPartition answers aws-cn WHEN the component is built THEN no policy or ARN says arn:aws:."""
    mocks = CidbMocks(partition="aws-cn")
    _build(mocks)
    texts = [(r.name, where, text) for r in mocks.resources for where, text in strings(dict(r.inputs), "")]
    assert any("arn:aws-cn:" in text for _, _, text in texts), "the mocks did not switch the partition"
    problems = [f"{name}{where}: {text[:120]!r}" for name, where, text in texts if "arn:aws:" in text]
    assert not problems, "monitoring inputs that hard-code 'arn:aws:' in aws-cn:\n  " + "\n  ".join(problems)


@pytest.mark.parametrize(
    ("emails", "webhook", "message"),
    [(["not-an-address"], None, "e-mail"), ([], "http://insecure.example.com", "https://")],
)
def test_bad_notification_endpoints_are_refused_with_a_fix(emails, webhook, message):
    pulumi.runtime.set_mocks(CidbMocks(), preview=False)
    from monitoring.component import PipelineMonitoring

    with pytest.raises(ValueError, match=message):
        PipelineMonitoring("bad", SPEC, RESOURCES, alarm_emails=emails, webhook_url=webhook)
