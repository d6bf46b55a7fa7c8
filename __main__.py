"""CIDB Pulumi program: stack configuration -> DeploymentSpec -> pipeline + monitoring -> stack outputs."""

import pulumi

from monitoring import MonitoredResources, Severity
from monitoring.component import PipelineMonitoring
from monitoring.naming import RUNBOOK_PATH
from stack import CidbPipeline, read_settings
from stack.notifier import alarm_notifier

ROLES = ("collector", "reporter", "verifier")

settings = read_settings()
pipeline = CidbPipeline("cidb", settings.spec, load_test_principal_arns=settings.load_test_principal_arns)
monitoring = PipelineMonitoring(
    "cidb-monitoring",
    settings.spec,
    MonitoredResources(
        queue_name=pipeline.queue.name,
        dlq_name=pipeline.dlq.name,
        topic_name=pipeline.topic.name,
        **{f"{role}_function": pipeline.functions[role].name for role in ROLES},
        **{f"{role}_log_group": pipeline.log_groups[role].name for role in ROLES},
    ),
    alarm_emails=settings.notifications.emails,
    webhook_url=settings.notifications.webhook_url,
    page_emails=settings.notifications.page_emails,
    actions_for=[Severity(s) for s in settings.notifications.severities],
    opts=pulumi.ResourceOptions(depends_on=[pipeline]),
)
alarm_notifier(
    "cidb-notifier",
    pipeline,
    settings.chat,
    topic_arns={route: topic.arn for route, topic in monitoring.alarm_topics.items()},
    actions_for=[Severity(s) for s in settings.notifications.severities],
    runbook_base=settings.spec.alarms.runbook_url or RUNBOOK_PATH,
)
for name, value in pipeline.outputs.items():
    pulumi.export(name, value)
pulumi.export("page_topic_arn", monitoring.page_topic_arn)
pulumi.export("ticket_topic_arn", monitoring.ticket_topic_arn)
pulumi.export("dashboards", monitoring.dashboard_names)
