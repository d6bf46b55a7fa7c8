"""Queue monitoring: age of the oldest message, backlog, DLQ depth, producer vs consumer, heartbeat."""

from __future__ import annotations

from monitoring.alarm_factory import IMMEDIATE, SUSTAINED, AlarmFactory, heartbeat
from monitoring.model import MAXIMUM, SUM, AlarmDefinition, Comparison, MathExpression, Metric, Severity
from monitoring.naming import View
from monitoring.resources import MonitoredResources, NameLike
from monitoring.thresholds import (
    ALARM_PERIOD_SECONDS,
    DLQ_PERIOD_SECONDS,
    HEARTBEAT_PERIOD_SECONDS,
    oldest_message_age_threshold,
    producer_heartbeat_hours,
)
from monitoring.widgets import HALF_WIDTH, Widget, graph
from pipeline.spec import DeploymentSpec

NAMESPACE = "AWS/SQS"


class SqsMetricFactory:
    """AWS/SQS metrics of one queue."""

    def __init__(self, queue_name: NameLike, label: str) -> None:
        self.queue_name = queue_name
        self.label = label

    def metric_oldest_message_age_seconds(self) -> Metric:
        return self._metric("ApproximateAgeOfOldestMessage", MAXIMUM, ALARM_PERIOD_SECONDS, "oldest message age (s)")

    def metric_visible_messages_count(self, period: int = ALARM_PERIOD_SECONDS) -> Metric:
        return self._metric("ApproximateNumberOfMessagesVisible", MAXIMUM, period, "visible messages")

    def metric_in_flight_messages_count(self) -> Metric:
        return self._metric("ApproximateNumberOfMessagesNotVisible", MAXIMUM, ALARM_PERIOD_SECONDS, "in flight")

    def metric_sent_messages_count(self, period: int = ALARM_PERIOD_SECONDS) -> Metric:
        return self._metric("NumberOfMessagesSent", SUM, period, "messages sent")

    def metric_deleted_messages_count(self) -> Metric:
        return self._metric("NumberOfMessagesDeleted", SUM, ALARM_PERIOD_SECONDS, "messages deleted")

    def _metric(self, name: str, statistic: str, period: int, what: str) -> Metric:
        return Metric(NAMESPACE, name, (("QueueName", self.queue_name),), statistic, period, f"{self.label} {what}")


class QueueMonitoring:
    """Creates each queue metric once and hands the same object to its alarm and its graphs."""

    def __init__(self, spec: DeploymentSpec, resources: MonitoredResources, alarms: AlarmFactory) -> None:
        queue = SqsMetricFactory(resources.queue_name, "queue")
        self.age = queue.metric_oldest_message_age_seconds()
        self.visible = queue.metric_visible_messages_count()
        self.in_flight = queue.metric_in_flight_messages_count()
        self.sent = queue.metric_sent_messages_count()
        self.deleted = queue.metric_deleted_messages_count()
        self.dlq_depth = SqsMetricFactory(resources.dlq_name, "DLQ").metric_visible_messages_count(DLQ_PERIOD_SECONDS)
        self.producer_rate = MathExpression("sent / PERIOD(sent)", (("sent", self.sent),), "producer: sent/s")
        self.consumer_rate = MathExpression(
            "deleted / PERIOD(deleted)", (("deleted", self.deleted),), "consumer: deleted/s"
        )
        self.time_to_drain = MathExpression(
            "visible / (deleted / PERIOD(deleted))",
            (("visible", self.visible), ("deleted", self.deleted)),
            "time to drain the backlog at the consumer rate (s)",
        )
        hours = producer_heartbeat_hours(spec)
        self.sent_per_hour = queue.metric_sent_messages_count(HEARTBEAT_PERIOD_SECONDS) if hours else None

        self.age_alarm = alarms.alarm(
            IMMEDIATE,
            component="queue",
            suffix="oldest-message-age",
            severity=Severity.CRITICAL,
            metric=self.age,
            threshold=oldest_message_age_threshold(spec),
            summary="A message has waited in the policies queue longer than one healthy batch can take "
            "(batching window + reporter timeout + margin): reporters are stuck, failing or starved.",
            runbook_anchor="queue-oldest-message-age",
        )
        self.backlog_alarm = alarms.alarm(
            SUSTAINED,
            component="queue",
            suffix="backlog",
            severity=Severity.WARNING,
            metric=self.visible,
            threshold=spec.alarms.backlog_messages,
            summary="The policies queue has held a large visible backlog for three periods: reporters are not "
            "keeping up with the collector.",
            runbook_anchor="queue-backlog",
        )
        self.dlq_alarm = alarms.alarm(
            IMMEDIATE,
            component="dlq",
            suffix="depth",
            severity=Severity.CRITICAL,
            metric=self.dlq_depth,
            threshold=spec.alarms.dlq_messages,
            comparison=Comparison.GREATER_OR_EQUAL,
            summary="Records reached the dead-letter queue after every retry failed; they are not in the output "
            "until redriven.",
            runbook_anchor="dlq-depth",
        )
        self.producer_stopped_alarm = (
            alarms.alarm(
                heartbeat(hours),
                component="queue",
                suffix="producer-stopped",
                severity=Severity.CRITICAL,
                metric=self.sent_per_hour,
                threshold=1,
                summary=f"No message reached the policies queue for {hours} hours (the longest gap of "
                f"{spec.schedule_expression} plus slack): the scheduled collector run did not happen or published "
                "nothing.",
                runbook_anchor="producer-stopped",
            )
            if self.sent_per_hour and hours
            else None
        )

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        found = (self.age_alarm, self.backlog_alarm, self.dlq_alarm, self.producer_stopped_alarm)
        return tuple(a for a in found if a)

    def summary_widgets(self) -> list[Widget]:
        return [
            graph("Queue: age of oldest message", self.age, alarms=(self.age_alarm,), left_axis_label="seconds"),
            graph("DLQ depth", self.dlq_depth, alarms=(self.dlq_alarm,), left_axis_label="messages"),
        ]

    def detail_widgets(self) -> dict[View, list[Widget]]:
        widgets = [
            graph("Age of oldest message", self.age, alarms=(self.age_alarm,), left_axis_label="seconds"),
            graph("Backlog: visible vs in flight", self.visible, self.in_flight, alarms=(self.backlog_alarm,)),
            graph("DLQ depth", self.dlq_depth, alarms=(self.dlq_alarm,), left_axis_label="messages"),
            graph(
                "Producer vs consumer rate",
                self.producer_rate,
                self.consumer_rate,
                left_axis_label="messages/s",
                width=HALF_WIDTH,
            ),
            graph("Time to drain", self.time_to_drain, left_axis_label="seconds", width=HALF_WIDTH),
        ]
        if self.producer_stopped_alarm and self.sent_per_hour:
            widgets.append(
                graph(
                    "Messages sent per hour (scheduled runs)",
                    self.sent_per_hour,
                    alarms=(self.producer_stopped_alarm,),
                    left_axis_label="messages",
                )
            )
        return {View.QUEUE: widgets}
