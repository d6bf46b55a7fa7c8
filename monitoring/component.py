"""The Pulumi layer: turns the pure monitoring definitions into AWS resources.

The only module of ``monitoring`` that imports Pulumi. It creates the encrypted alarm topic and
its subscriptions, one MetricAlarm per alarm definition, the paging CompositeAlarm, the saved
Logs Insights queries and the dashboards.

Example (in ``__main__.py``)::

    monitoring = PipelineMonitoring(
        "monitoring", spec, MonitoredResources.from_spec(spec), alarm_emails=["oncall@example.com"]
    )
    pulumi.export("alarm_topic_arn", monitoring.alarm_topic_arn)
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import pulumi
import pulumi_aws as aws

from monitoring.model import STANDARD_STATISTICS, AlarmDefinition
from monitoring.naming import View, query_definition_name
from monitoring.plan import Monitoring, build_monitoring
from monitoring.render import render_dashboard_body
from monitoring.resources import MonitoredResources
from monitoring.thresholds import check_age_threshold
from pipeline.spec import DeploymentSpec
from queries import load_queries
from stack import iam

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class PipelineMonitoring(pulumi.ComponentResource):
    """Alarms, notifications, saved queries and dashboards for one CIDB deployment.

    Outputs: ``alarm_topic_arn``, ``composite_alarm_name`` and ``dashboard_names`` (view -> name).
    """

    alarm_topic_arn: pulumi.Output[str]
    composite_alarm_name: pulumi.Output[str]
    dashboard_names: dict[str, pulumi.Output[str]]

    def __init__(
        self,
        name: str,
        spec: DeploymentSpec,
        resources: MonitoredResources,
        alarm_emails: Sequence[str] = (),
        webhook_url: str | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        _check_endpoints(alarm_emails, webhook_url)
        super().__init__("cidb:monitoring:PipelineMonitoring", name, None, opts)
        if problem := check_age_threshold(spec):
            pulumi.log.info(problem, resource=self)
        child = pulumi.ResourceOptions(parent=self)
        plan = build_monitoring(spec, resources)
        account = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self)).account_id
        region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        partition = aws.get_partition_output(opts=pulumi.InvokeOutputOptions(parent=self)).partition

        topic = self._alarm_topic(name, spec, account, region, partition, child)
        for email in alarm_emails:
            aws.sns.TopicSubscription(
                f"{name}-email-{_short_hash(email)}", topic=topic.arn, protocol="email", endpoint=email, opts=child
            )
        if webhook_url:
            aws.sns.TopicSubscription(
                f"{name}-webhook", topic=topic.arn, protocol="https", endpoint=webhook_url, opts=child
            )

        actions = [topic.arn]
        alarms = {a.name: _metric_alarm(a, actions, child) for a in plan.alarms}
        composite = aws.cloudwatch.CompositeAlarm(
            plan.composite.name,
            alarm_name=plan.composite.name,
            alarm_description=plan.composite.description,
            alarm_rule=pulumi.Output.all(*(alarms[n].name for n in plan.composite.children)).apply(
                lambda names: plan.composite.rule(tuple(names))
            ),
            alarm_actions=actions,
            ok_actions=actions,
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
        self.alarm_topic_arn = topic.arn
        self.composite_alarm_name = composite.alarm_name
        self.register_outputs(
            {
                "alarm_topic_arn": self.alarm_topic_arn,
                "composite_alarm_name": self.composite_alarm_name,
                "dashboard_names": self.dashboard_names,
            }
        )

    def _alarm_topic(
        self,
        name: str,
        spec: DeploymentSpec,
        account: pulumi.Output[str],
        region: pulumi.Output[str],
        partition: pulumi.Output[str],
        child: pulumi.ResourceOptions,
    ) -> aws.sns.Topic:
        """SNS encrypted with a customer managed key: CloudWatch cannot use the AWS managed alias/aws/sns key."""
        key = aws.kms.Key(
            f"{name}-alarm-key",
            description=f"Encrypts the {spec.base_name} alarm topic; lets CloudWatch alarms publish to it",
            enable_key_rotation=True,
            policy=pulumi.Output.all(account, partition).apply(
                lambda v: json.dumps(iam.alarm_topic_key_policy(account_root_arn=f"arn:{v[1]}:iam::{v[0]}:root"))
            ),
            opts=child,
        )
        aws.kms.Alias(
            f"{name}-alarm-key-alias", name=f"alias/{spec.base_name}-alarms", target_key_id=key.id, opts=child
        )
        topic = aws.sns.Topic(
            f"{name}-alarm-topic", name=f"{spec.base_name}-alarms", kms_master_key_id=key.arn, opts=child
        )
        aws.sns.TopicPolicy(
            f"{name}-alarm-topic-policy",
            arn=topic.arn,
            policy=pulumi.Output.all(topic.arn, account, region, partition).apply(
                lambda v: json.dumps(iam.alarm_topic_policy(topic_arn=v[0], account=v[1], region=v[2], partition=v[3]))
            ),
            opts=child,
        )
        return topic


def _metric_alarm(
    alarm: AlarmDefinition, actions: list[Any], opts: pulumi.ResourceOptions
) -> aws.cloudwatch.MetricAlarm:
    metric = alarm.metric
    statistic = {"statistic": metric.statistic} if metric.statistic in STANDARD_STATISTICS else {}
    percentile = (
        {"extended_statistic": metric.statistic, "evaluate_low_sample_count_percentiles": "evaluate"}
        if metric.is_percentile
        else {}
    )
    return aws.cloudwatch.MetricAlarm(
        alarm.name,
        name=alarm.name,
        alarm_description=alarm.description,
        namespace=metric.namespace,
        metric_name=metric.name,
        dimensions=metric.dimension_map,
        period=metric.period,
        comparison_operator=str(alarm.comparison),
        threshold=alarm.threshold,
        evaluation_periods=alarm.evaluation_periods,
        datapoints_to_alarm=alarm.datapoints_to_alarm,
        treat_missing_data=str(alarm.treat_missing_data),
        alarm_actions=actions,
        ok_actions=actions,
        **statistic,
        **percentile,
        opts=opts,
    )


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
