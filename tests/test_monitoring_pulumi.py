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

from monitoring import MonitoredResources, Severity, build_monitoring
from pipeline.spec import build_spec
from queries import load_queries

SPEC = build_spec("tuned")
# Physical names differ from the spec's on purpose: AWS metrics must follow the resources passed in.
RESOURCES = MonitoredResources(**{f.name: f"deployed-{f.name}" for f in dataclasses.fields(MonitoredResources)})
EMAILS = ["oncall@example.com", "team@example.com"]
PAGE_EMAILS = ["pager@example.com"]
WEBHOOK = "https://events.pagerduty.com/integration/abc/enqueue"
RUNBOOK = (Path(__file__).resolve().parents[1] / "docs" / "runbook.md").read_text()


@pytest.fixture(scope="module")
def stack():
    """GIVEN the component built under mocks WHEN all registrations resolved THEN tests read them."""
    return _build(CidbMocks())


def _build(mocks: CidbMocks, actions_for: tuple[Severity, ...] = tuple(Severity)) -> SimpleNamespace:
    pulumi.runtime.set_mocks(mocks, preview=False)
    from monitoring.component import PipelineMonitoring

    outputs: dict = {}

    @pulumi.runtime.test
    def build():
        component = PipelineMonitoring(
            "monitoring",
            SPEC,
            RESOURCES,
            alarm_emails=EMAILS,
            webhook_url=WEBHOOK,
            page_emails=PAGE_EMAILS,
            actions_for=actions_for,
        )
        return pulumi.Output.all(
            page=component.page_topic_arn,
            ticket=component.ticket_topic_arn,
            topics={str(route): topic.arn for route, topic in component.alarm_topics.items()},
            dashboards=component.dashboard_names,
            composite=component.composite_alarm_name,
        ).apply(outputs.update)

    build()
    by_type: dict[str, list] = {}
    for resource in mocks.resources:
        by_type.setdefault(resource.typ.rsplit(":", 1)[-1], []).append(resource)
    return SimpleNamespace(outputs=outputs, of=lambda typ: by_type.get(typ, []))


def test_exports_topic_arns_composite_and_dashboard_names(stack):
    assert stack.outputs["page"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:{SPEC.base_name}-alarms-page"
    assert stack.outputs["ticket"] == f"arn:aws:sns:{REGION}:{ACCOUNT}:{SPEC.base_name}-alarms-ticket"
    assert stack.outputs["topics"] == {"page": stack.outputs["page"], "ticket": stack.outputs["ticket"]}, (
        "alarm_topics holds every alarm topic, for a notifier to subscribe to"
    )
    assert stack.outputs["composite"] == build_monitoring(SPEC).composite.name
    assert set(stack.outputs["dashboards"].values()) == {d.name for d in build_monitoring(SPEC).dashboards}


def test_every_alarm_definition_is_deployed_as_defined(stack):
    deployed = {r.inputs["name"]: r for r in stack.of("MetricAlarm")}
    definitions = build_monitoring(SPEC, RESOURCES).alarms
    assert set(deployed) == {a.name for a in definitions}
    for alarm in definitions:
        inputs, metric = deployed[alarm.name].inputs, alarm.metric
        if alarm.expression:
            continue  # test_percentile_alarms_alarm_on_the_sample_count_expression
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
        queried = [q["metric"] for q in alarm.inputs.get("metricQueries", []) if "metric" in q]
        for inputs in queried or [alarm.inputs]:
            expected = services if inputs["namespace"] == SPEC.metrics_namespace else passed
            assert set(inputs["dimensions"].values()) <= expected, f"alarm {alarm.name}: {inputs['dimensions']}"


def _actions(alarm) -> tuple[list, list, bool]:
    return alarm.inputs["alarmActions"], alarm.inputs["okActions"], alarm.inputs["actionsEnabled"]


def test_composite_and_data_loss_page_once_everything_else_tickets(stack):
    """GIVEN the two alarm topics WHEN an incident fires a critical child THEN only the composite pages."""
    page, ticket = [stack.outputs["page"]], [stack.outputs["ticket"]]
    (composite,) = stack.of("CompositeAlarm")
    assert _actions(composite) == (page, page, True), f"composite {composite.name} must notify the page topic only"
    for alarm in stack.of("MetricAlarm"):
        expected = page if alarm.inputs["name"].endswith("-verifier-data-loss-page") else ticket
        assert _actions(alarm) == (expected, expected, True), f"alarm {alarm.name} notifies the wrong topic"
    assert any(a.inputs["name"].endswith("-warning") for a in stack.of("MetricAlarm")), "no warning checked"


def test_data_loss_is_no_composite_child(stack):
    (composite,) = stack.of("CompositeAlarm")
    assert "data-loss" not in composite.inputs["alarmRule"], (
        f"composite {composite.name}: the latched data-loss alarm would hold it in ALARM and mute later pages"
    )


def test_severities_without_actions_keep_their_alarms_with_actions_disabled():
    """GIVEN a dev stack with alarmActions [critical, warning] WHEN built THEN page alarms exist but are silent."""
    stack = _build(CidbMocks(), actions_for=(Severity.CRITICAL, Severity.WARNING))
    (composite,) = stack.of("CompositeAlarm")
    assert composite.inputs["actionsEnabled"] is False, f"composite {composite.name} must not page on dev"
    enabled = {a.inputs["name"]: a.inputs["actionsEnabled"] for a in stack.of("MetricAlarm")}
    assert enabled.pop(f"{SPEC.base_name}-verifier-data-loss-page") is False
    assert all(enabled.values()), f"critical and warning alarms keep their actions: {enabled}"


def test_percentile_alarms_alarm_on_the_sample_count_expression(stack):
    deployed = {r.inputs["name"]: r.inputs for r in stack.of("MetricAlarm")}
    percentiles = [a for a in build_monitoring(SPEC, RESOURCES).alarms if a.metric.is_percentile]
    assert percentiles, "the tuned profile has p99 alarms"
    for alarm in percentiles:
        inputs = deployed[alarm.name]
        assert "metricName" not in inputs and "extendedStatistic" not in inputs, alarm.name
        by_id = {q["id"]: q for q in inputs["metricQueries"]}
        (returned,) = [q for q in by_id.values() if q.get("returnData")]
        assert returned["expression"] == f"IF(samples >= {alarm.min_samples}, value)", alarm.name
        value, samples = by_id["value"]["metric"], by_id["samples"]["metric"]
        assert (value["metricName"], value["stat"], value["period"]) == (
            alarm.metric.name,
            alarm.metric.statistic,
            alarm.metric.period,
        ), alarm.name
        assert (samples["metricName"], samples["stat"]) == (alarm.metric.name, "SampleCount"), alarm.name
        assert value["dimensions"] == samples["dimensions"] == alarm.metric.dimension_map, alarm.name


def test_heartbeats_count_hourly_over_the_window(stack):
    deployed = {r.inputs["name"]: r.inputs for r in stack.of("MetricAlarm")}
    producer = deployed[f"{SPEC.base_name}-queue-producer-stopped-critical"]
    assert (producer["period"], producer["evaluationPeriods"], producer["datapointsToAlarm"]) == (3600, 26, 26), (
        "rate(1 day): 26 of 26 hourly periods"
    )
    verifier = deployed[f"{SPEC.base_name}-verifier-stopped-warning"]
    assert (verifier["metricName"], verifier["statistic"], verifier["treatMissingData"]) == (
        "RunsVerified",
        "SampleCount",
        "breaching",
    )


def test_every_alarm_description_links_an_existing_runbook_entry(stack):
    for alarm in [*stack.of("MetricAlarm"), *stack.of("CompositeAlarm")]:
        assert "Runbook: docs/runbook.md#" in alarm.inputs["alarmDescription"], "no runbookUrl: the relative path"
        anchor = alarm.inputs["alarmDescription"].rsplit("docs/runbook.md#", 1)[1]
        assert f'<a id="{anchor}"></a>' in RUNBOOK, f"alarm {alarm.name}: runbook has no #{anchor}"


def test_composite_rule_covers_the_critical_alarms(stack):
    (composite,) = stack.of("CompositeAlarm")
    critical = {r.inputs["name"] for r in stack.of("MetricAlarm") if r.inputs["name"].endswith("-critical")}
    named = set(composite.inputs["alarmRule"].replace('ALARM("', "").replace('")', "").split(" OR "))
    assert named == critical, f"composite {composite.name} must page on exactly the critical alarms"


def test_topics_are_encrypted_with_a_key_cloudwatch_may_use(stack):
    (key,) = stack.of("Key")
    key_arn = mocked_outputs(key.typ, key.name, key.inputs)[1]["arn"]
    topics = stack.of("Topic")
    assert len(topics) == 2
    for topic in topics:
        assert topic.inputs["kmsMasterKeyId"] == key_arn, (
            f"topic {topic.name} must use the customer managed key; alias/aws/sns blocks CloudWatch alarms"
        )
    assert key.inputs["enableKeyRotation"] is True
    statements = json.loads(key.inputs["policy"])["Statement"]
    cloudwatch = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
    assert cloudwatch and {"kms:Decrypt", "kms:GenerateDataKey*"} <= set(cloudwatch[0]["Action"])


def test_topic_policies_let_only_this_accounts_alarms_publish(stack):
    policies = stack.of("TopicPolicy")
    assert {p.inputs["arn"] for p in policies} == {stack.outputs["page"], stack.outputs["ticket"]}
    for policy in policies:
        statements = json.loads(policy.inputs["policy"])["Statement"]
        (cloudwatch,) = [s for s in statements if s["Principal"] == {"Service": "cloudwatch.amazonaws.com"}]
        assert cloudwatch["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}, policy.name
        assert cloudwatch["Resource"] == policy.inputs["arn"], policy.name


def test_emails_ticket_page_emails_and_the_pager_endpoint_page(stack):
    subscriptions = {
        (s.inputs["topic"], s.inputs["protocol"], s.inputs["endpoint"]) for s in stack.of("TopicSubscription")
    }
    page, ticket = stack.outputs["page"], stack.outputs["ticket"]
    assert subscriptions == {(ticket, "email", e) for e in EMAILS} | {(page, "email", e) for e in PAGE_EMAILS} | {
        (page, "https", WEBHOOK)
    }


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
