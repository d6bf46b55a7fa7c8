"""Publishing and throttling: the collector's PublishBatch to SNS, SNS delivery to SQS, SDK retries.

SNS has no throttling metric of its own, so throttling is read from what the collector saw
(entries SNS returned as failed, re-publish rounds, entries given up) and from botocore's retries.
"""

from __future__ import annotations

from monitoring.alarm_factory import IMMEDIATE, AlarmFactory
from monitoring.emf import CidbMetricFactory
from monitoring.model import SUM, AlarmDefinition, Metric, Severity
from monitoring.naming import View
from monitoring.resources import MonitoredResources, NameLike
from monitoring.thresholds import ALARM_PERIOD_SECONDS, SDK_RETRIES_PER_PERIOD
from monitoring.widgets import HALF_WIDTH, LogWidget, Widget, graph
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName

NAMESPACE = "AWS/SNS"
SDK_RETRY_ROLES = ("collector", "reporter")


class SnsMetricFactory:
    """AWS/SNS metrics of one topic."""

    def __init__(self, topic_name: NameLike, label: str) -> None:
        self.topic_name = topic_name
        self.label = label

    def metric_published_messages_count(self) -> Metric:
        return self._metric("NumberOfMessagesPublished", "messages published")

    def metric_failed_notifications_count(self) -> Metric:
        return self._metric("NumberOfNotificationsFailed", "notifications failed")

    def metric_failed_redrives_count(self) -> Metric:
        return self._metric("NumberOfNotificationsFailedToRedriveToDlq", "notifications not redriven to the DLQ")

    def _metric(self, name: str, what: str) -> Metric:
        dimensions = (("TopicName", self.topic_name),)
        return Metric(NAMESPACE, name, dimensions, SUM, ALARM_PERIOD_SECONDS, f"{self.label} {what}")


class PublishMonitoring:
    def __init__(self, spec: DeploymentSpec, resources: MonitoredResources, alarms: AlarmFactory) -> None:
        topic = SnsMetricFactory(resources.topic_name, "SNS")
        collector = CidbMetricFactory(spec, "collector")
        self.sns_published = topic.metric_published_messages_count()
        self.sns_failed = topic.metric_failed_notifications_count()
        self.sns_redrive_failed = topic.metric_failed_redrives_count()
        self.policies_collected = collector.metric_count(MetricName.POLICIES_COLLECTED)
        self.messages_published = collector.metric_count(MetricName.MESSAGES_PUBLISHED)
        self.oversize_offloaded = collector.metric_count(MetricName.OVERSIZE_OFFLOADED)
        self.failed_entries = collector.metric_count(MetricName.PUBLISH_FAILED_ENTRIES)
        self.publish_retries = collector.metric_count(MetricName.PUBLISH_RETRIES)
        self.publish_given_up = collector.metric_count(MetricName.PUBLISH_GIVEN_UP)
        self.sdk_retries = {
            role: CidbMetricFactory(spec, role).metric_count(MetricName.SDK_RETRIES) for role in SDK_RETRY_ROLES
        }

        self.sns_failed_alarm = alarms.alarm(
            IMMEDIATE,
            component="topic",
            suffix="notifications-failed",
            severity=Severity.CRITICAL,
            metric=self.sns_failed,
            threshold=0,
            summary="SNS gave up delivering messages from the policies topic to the queue: those records never "
            "reached a reporter.",
            runbook_anchor="sns-notifications-failed",
        )
        self.sns_redrive_failed_alarm = alarms.alarm(
            IMMEDIATE,
            component="topic",
            suffix="redrive-failed",
            severity=Severity.CRITICAL,
            metric=self.sns_redrive_failed,
            threshold=0,
            summary="SNS could deliver messages neither to the queue nor to the subscription's DLQ: those records "
            "are gone from the pipeline and must be re-published from the run's expected key set.",
            runbook_anchor="sns-redrive-failed",
        )
        self.publish_retries_alarm = alarms.alarm(
            IMMEDIATE,
            component="collector",
            suffix="publish-retries",
            severity=Severity.WARNING,
            metric=self.publish_retries,
            threshold=0,
            summary="SNS rejected PublishBatch entries (usually throttling) and the collector had to publish them "
            "again; the run is slower but nothing is lost yet.",
            runbook_anchor="publish-retries",
        )
        self.publish_given_up_alarm = alarms.alarm(
            IMMEDIATE,
            component="collector",
            suffix="publish-given-up",
            severity=Severity.CRITICAL,
            metric=self.publish_given_up,
            threshold=0,
            summary=f"The collector gave up on PublishBatch entries after {spec.publish_max_attempts} attempts: "
            "those records were never sent.",
            runbook_anchor="publish-given-up",
        )
        self.sdk_retries_alarms = {
            role: alarms.alarm(
                IMMEDIATE,
                component=role,
                suffix="sdk-retries",
                severity=Severity.WARNING,
                metric=metric,
                threshold=SDK_RETRIES_PER_PERIOD,
                summary=f"botocore retried many {role} AWS calls (throttling or transient errors from IAM, SNS "
                "or S3): calls are slowing down and may start to fail.",
                runbook_anchor="sdk-retries",
            )
            for role, metric in self.sdk_retries.items()
        }

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        return (
            self.sns_failed_alarm,
            self.sns_redrive_failed_alarm,
            self.publish_retries_alarm,
            self.publish_given_up_alarm,
            *self.sdk_retries_alarms.values(),
        )

    def summary_widgets(self) -> list[Widget]:
        return []

    def detail_widgets(self) -> dict[View, list[Widget]]:
        return {
            View.THROTTLING: [
                graph(
                    "Collected vs published",
                    self.policies_collected,
                    self.messages_published,
                    self.sns_published,
                    self.oversize_offloaded,
                    width=HALF_WIDTH,
                ),
                graph(
                    "PublishBatch: failed entries, retries, given up",
                    self.failed_entries,
                    self.publish_retries,
                    self.publish_given_up,
                    alarms=(self.publish_retries_alarm, self.publish_given_up_alarm),
                ),
                graph(
                    "SNS deliveries failed, and not redriven to the DLQ",
                    self.sns_failed,
                    self.sns_redrive_failed,
                    alarms=(self.sns_failed_alarm, self.sns_redrive_failed_alarm),
                ),
                graph(
                    "SDK retries",
                    *self.sdk_retries.values(),
                    alarms=tuple(self.sdk_retries_alarms.values()),
                ),
                LogWidget("Throttling and retry events", "throttling-retries", width=HALF_WIDTH),
            ]
        }
