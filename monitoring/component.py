"""The Pulumi layer: turns the pure monitoring definitions into AWS resources.

The only module of ``monitoring`` that imports Pulumi. It creates two encrypted alarm topics (page and
ticket) and their subscriptions, one MetricAlarm per alarm definition, the paging CompositeAlarm, the
saved Logs Insights queries and the dashboards.

Routing: the composite and the data-loss alarm (severity ``page``) notify the page topic; critical
alarms (the composite's children) and warnings notify the ticket topic. So one incident pages once,
and warnings never page.

Example (in ``__main__.py``)::

    monitoring = PipelineMonitoring(
        "monitoring", spec, MonitoredResources.from_spec(spec), alarm_emails=["oncall@example.com"]
    )
    pulumi.export("page_topic_arn", monitoring.page_topic_arn)
    pulumi.export("ticket_topic_arn", monitoring.ticket_topic_arn)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Collection, Sequence
from dataclasses import fields
from typing import Any

import pulumi
import pulumi_aws as aws

import iam_policies as iam
from monitoring.model import STANDARD_STATISTICS, AlarmDefinition, MathExpression, Route, Severity
from monitoring.naming import View, query_definition_name
from monitoring.plan import Monitoring, build_monitoring
from monitoring.render import render_dashboard_body
from monitoring.resources import MonitoredResources
from monitoring.thresholds import check_age_threshold, check_heartbeat
from pipeline.spec import DeploymentSpec
from queries import load_queries

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PipelineMonitoring(pulumi.ComponentResource):
    """Alarms, notifications, saved queries and dashboards for one CIDB deployment.

    ``alarm_emails`` get tickets (critical and warning alarms), ``page_emails`` and ``webhook_url`` (a
    PagerDuty or Opsgenie SNS endpoint) get pages. ``actions_for`` lists the severities whose alarms notify;
    the others still exist and change state, with their actions disabled (a dev stack that does not page).

    Outputs: ``page_topic_arn``, ``ticket_topic_arn``, ``composite_alarm_name`` and ``dashboard_names``
    (view -> name). ``alarm_topics`` (route -> topic) is what a notifier subscribes to: every alarm topic.
    """

    alarm_topics: dict[Route, aws.sns.Topic]
    page_topic_arn: pulumi.Output[str]
    ticket_topic_arn: pulumi.Output[str]
    composite_alarm_name: pulumi.Output[str]
    dashboard_names: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        resources: MonitoredResources,
        alarm_emails: Sequence[str] = (),
        webhook_url: str | None = None,
        page_emails: Sequence[str] = (),
        actions_for: Collection[Severity] = tuple(Severity),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _check_endpoints([*alarm_emails, *page_emails], webhook_url)
        super().__init__("cidb:monitoring:PipelineMonitoring", name, None, opts)
        if problem := check_age_threshold(spec):
            pulumi.log.info(problem, resource=self)  # monitoring raised the threshold itself
        if problem := check_heartbeat(spec):
            pulumi.log.warn(problem, resource=self)  # scheduled runs that no alarm watches
        child = pulumi.ResourceOptions(parent=self)
        plan = build_monitoring(spec, resources)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition

        key = self._alarm_key(name, spec, account, partition, child)
        self.alarm_topics = {
            route: self._alarm_topic(name, spec, route, key, account, region, partition, child) for route in Route
        }
        endpoints = [
            *(("email", e, Route.TICKET) for e in alarm_emails),
            *(("email", e, Route.PAGE) for e in page_emails),
            *((("https", webhook_url, Route.PAGE),) if webhook_url else ()),
        ]
        for protocol, endpoint, route in endpoints:
            aws.sns.TopicSubscription(
                f"{name}-{route}-{protocol}-{_short_hash(endpoint)}",
                topic=self.alarm_topics[route].arn,
                protocol=protocol,
                endpoint=endpoint,
                opts=child,
            )

        def actions(severity: Severity) -> dict[str, Any]:
            arns = [self.alarm_topics[severity.route].arn]
            return {"alarm_actions": arns, "ok_actions": arns, "actions_enabled": severity in actions_for}

        alarms = {a.name: _metric_alarm(a, actions(a.severity), child) for a in plan.alarms}
        composite = aws.cloudwatch.CompositeAlarm(
            plan.composite.name,
            alarm_name=plan.composite.name,
            alarm_description=plan.composite.description,
            alarm_rule=pulumi.Output.all(*(alarms[n].name for n in plan.composite.children)).apply(
                lambda names: plan.composite.rule(tuple(names))
            ),
            **actions(plan.composite.severity),
            opts=child,
        )
        for query in load_queries():
            aws.cloudwatch.QueryDefinition(
                f"{name}-query-{query.name}",
                name=query_definition_name(spec.base_name, query.name),
                query_string=query.text,
                log_group_names=[resources.log_group(role) for role in query.log_groups],
                opts=child,
            )
        arns = {plan.composite.name: composite.arn, **{n: alarm.arn for n, alarm in alarms.items()}}
        self.dashboard_names = {
            str(d.view): _dashboard(spec, plan, d.view, resources, arns, region, child).dashboard_name
            for d in plan.dashboards
        }
        self.page_topic_arn = self.alarm_topics[Route.PAGE].arn
        self.ticket_topic_arn = self.alarm_topics[Route.TICKET].arn
        self.composite_alarm_name = composite.alarm_name
        self.register_outputs(
            {
                "page_topic_arn": self.page_topic_arn,
                "ticket_topic_arn": self.ticket_topic_arn,
                "composite_alarm_name": self.composite_alarm_name,
                "dashboard_names": self.dashboard_names,
            }
        )

    def _alarm_key(
        self,
        name: str,
        spec: DeploymentSpec,
        account: pulumi.Output[str],
        partition: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> aws.kms.Key:
        """A customer managed key: CloudWatch cannot publish to topics encrypted with alias/aws/sns."""
        key = aws.kms.Key(
            f"{name}-alarm-key",
            description=f"Encrypts the {spec.base_name} alarm topics; lets CloudWatch alarms publish to them",
            enable_key_rotation=True,
            policy=pulumi.Output.all(account, partition).apply(
                lambda v: json.dumps(iam.alarm_topic_key_policy(account_root_arn=f"arn:{v[1]}:iam::{v[0]}:root"))
            ),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alarm-key-alias", name=f"alias/{spec.base_name}-alarms", target_key_id=key.id, opts=child
        )
        return key

    def _alarm_topic(
        self,
        name: str,
        spec: DeploymentSpec,
        route: Route,
        key: aws.kms.Key,
        account: pulumi.Output[str],
        region: pulumi.Output[str],
        partition: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> aws.sns.Topic:
        """One route's topic (``<base>-alarms-page`` or ``-ticket``), encrypted, that only this account's alarms use."""
        topic = aws.sns.Topic(
            f"{name}-{route}-topic", name=f"{spec.base_name}-alarms-{route}", kms_master_key_id=key.arn, opts=child
        )
        aws.sns.TopicPolicy(
            f"{name}-{route}-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account, region, partition).apply(
                lambda v: json.dumps(iam.alarm_topic_policy(topic_arn=v[0], account=v[1], region=v[2], partition=v[3]))
            ),
            opts=child,
        )
        return topic


def _metric_alarm(
    alarm: AlarmDefinition, actions: dict[str, Any], opts: pulumi.ResourceOptions
) -> aws.cloudwatch.MetricAlarm:
    common = {
        "name": alarm.name,
        "alarm_description": alarm.description,
        "comparison_operator": str(alarm.comparison),
        "threshold": alarm.threshold,
        "evaluation_periods": alarm.evaluation_periods,
        "datapoints_to_alarm": alarm.datapoints_to_alarm,
        "treat_missing_data": str(alarm.treat_missing_data),
        **actions,
    }
    if expression := alarm.expression:
        return aws.cloudwatch.MetricAlarm(alarm.name, metric_queries=_metric_queries(expression), **common, opts=opts)
    metric = alarm.metric
    statistic = {"statistic": metric.statistic} if metric.statistic in STANDARD_STATISTICS else {}
    percentile = (
        {"extended_statistic": metric.statistic, "evaluate_low_sample_count_percentiles": "evaluate"}
        if metric.is_percentile
        else {}
    )
    return aws.cloudwatch.MetricAlarm(
        alarm.name,
        namespace=metric.namespace,
        metric_name=metric.name,
        dimensions=metric.dimension_map,
        period=metric.period,
        **common,
        **statistic,
        **percentile,
        opts=opts,
    )


ALARM_EXPRESSION_ID = "alarmed"


def _metric_queries(expression: MathExpression) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
    """The expression (the only query returning data, which the alarm judges) and its input metrics."""
    inputs = [
        aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=metric_id,
            return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=metric.namespace,
                metric_name=metric.name,
                dimensions=metric.dimension_map,
                period=metric.period,
                stat=metric.statistic,
            ),
        )
        for metric_id, metric in expression.using
    ]
    alarmed = aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=ALARM_EXPRESSION_ID, expression=expression.expression, label=expression.label, return_data=True
    )
    return [alarmed, *inputs]


def _dashboard(
    spec: DeploymentSpec,
    plan: Monitoring,
    view: View,
    resources: MonitoredResources,
    arns: dict[str, pulumi.Output[str]],
    region: pulumi.Output[str],
    opts: pulumi.ResourceOptions,
) -> aws.cloudwatch.Dashboard:
    """Resolve names and ARNs first, then render the body from a plan built on plain strings."""
    names = {f.name: getattr(resources, f.name) for f in fields(resources)}

    def body(values: dict[str, Any]) -> str:
        resolved = MonitoredResources(**values["names"])
        dashboard = build_monitoring(spec, resolved).dashboard(view)
        rendered = render_dashboard_body(
            dashboard, region=values["region"], resources=resolved, alarm_arns=values["arns"]
        )
        return json.dumps(rendered)

    dashboard = plan.dashboard(view)
    return aws.cloudwatch.Dashboard(
        dashboard.name,
        dashboard_name=dashboard.name,
        dashboard_body=pulumi.Output.all(
            names=pulumi.Output.from_input(names), arns=pulumi.Output.from_input(arns), region=region
        ).apply(body),
        opts=opts,
    )


def _check_endpoints(alarm_emails: Sequence[str], webhook_url: str | None) -> None:
    bad = [e for e in alarm_emails if not _EMAIL.match(e)]
    if bad:
        raise ValueError(f"alarm_emails: {bad} are not e-mail addresses; pass addresses like oncall@example.com")
    if webhook_url is not None and not webhook_url.startswith("https://"):
        raise ValueError(f"webhook_url={webhook_url!r} must start with https:// (SNS delivers alarms over TLS only)")


def _short_hash(value: str) -> str:
    """A stable resource-name suffix, so reordering the e-mail list does not replace subscriptions."""
    return hashlib.sha256(value.encode()).hexdigest()[:8]
