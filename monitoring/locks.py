"""S3 lock monitoring: acquisitions, contention, waits, stale-lock take-overs, write conflicts, and the
compaction the lock now guards (records committed in segments against records folded into parts)."""

from __future__ import annotations

from monitoring.alarm_factory import IMMEDIATE, AlarmFactory
from monitoring.emf import CidbMetricFactory
from monitoring.model import AlarmDefinition, Severity, percentile
from monitoring.naming import View
from monitoring.thresholds import MIN_PERCENTILE_SAMPLES
from monitoring.widgets import HALF_WIDTH, LogWidget, Widget, graph
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName


class LockMonitoring:
    """Only built when the spec enables the lock; the seed profile writes without one."""

    def __init__(self, spec: DeploymentSpec, alarms: AlarmFactory) -> None:
        reporter = CidbMetricFactory(spec, "reporter")
        self.acquired = reporter.metric_count(MetricName.LOCK_ACQUIRED)
        self.contended = reporter.metric_count(MetricName.LOCK_CONTENDED)
        self.acquire_failed = reporter.metric_count(MetricName.LOCK_ACQUIRE_FAILED)
        self.stale_broken = reporter.metric_count(MetricName.LOCK_STALE_BROKEN)
        self.release_failed = reporter.metric_count(MetricName.LOCK_RELEASE_FAILED)
        self.wait = {p: reporter.metric_milliseconds(MetricName.LOCK_WAIT_MS, percentile(p)) for p in (50, 90, 99)}
        self.write_conflicts = reporter.metric_count(MetricName.WRITE_CONFLICTS)
        self.s3_write = {p: reporter.metric_milliseconds(MetricName.S3_WRITE_MS, percentile(p)) for p in (50, 99)}
        self.committed = reporter.metric_count(MetricName.RECORDS_WRITTEN)
        self.compacted = reporter.metric_count(MetricName.RECORDS_COMPACTED)
        self.compaction_failed = reporter.metric_count(MetricName.COMPACTION_FAILED)

        self.acquire_failed_alarm = alarms.alarm(
            IMMEDIATE,
            component="reporter",
            suffix="lock-acquire-failed",
            severity=Severity.WARNING,
            metric=self.acquire_failed,
            threshold=0,
            summary=f"A run's final compaction could not get the S3 lock in {spec.lock.max_attempts} attempts. "
            "Its records stay committed in segments; a later flush or the verifier's folds them into the parts.",
            runbook_anchor="lock-acquire-failed",
        )
        self.wait_alarm = alarms.alarm(
            IMMEDIATE,
            component="reporter",
            suffix="lock-wait-p99",
            severity=Severity.WARNING,
            metric=self.wait[99],
            threshold=spec.lock_wait_p99_alarm_ms,
            summary="p99 of the time compactions waited for the S3 lock is high: flushes queue behind a slow one.",
            runbook_anchor="lock-wait-p99",
            min_samples=MIN_PERCENTILE_SAMPLES,
        )
        self.stale_broken_alarm = alarms.alarm(
            IMMEDIATE,
            component="reporter",
            suffix="lock-stale-broken",
            severity=Severity.WARNING,
            metric=self.stale_broken,
            threshold=0,
            summary=f"A reporter took over a lock older than its {spec.lock.timeout_seconds} s lease: its owner "
            "crashed, timed out or paused. Fencing kept the data safe; find out why the owner died.",
            runbook_anchor="lock-stale-broken",
        )

        self.release_failed_alarm = alarms.alarm(
            IMMEDIATE,
            component="reporter",
            suffix="lock-release-failed",
            severity=Severity.WARNING,
            metric=self.release_failed,
            threshold=0,
            summary="A reporter could not delete its S3 lock after a committed write (the error code says why). "
            "The rows are safe; the lock was freed by a tombstone or waits out its lease, so writers may queue.",
            runbook_anchor="lock-release-failed",
        )

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        return (self.acquire_failed_alarm, self.wait_alarm, self.stale_broken_alarm, self.release_failed_alarm)

    def summary_widgets(self) -> list[Widget]:
        return []

    def detail_widgets(self) -> dict[View, list[Widget]]:
        return {
            View.LOCKS: [
                graph(
                    "Lock events",
                    self.acquired,
                    self.contended,
                    self.acquire_failed,
                    self.stale_broken,
                    self.release_failed,
                    alarms=(self.acquire_failed_alarm, self.stale_broken_alarm, self.release_failed_alarm),
                ),
                graph("Lock wait", *self.wait.values(), alarms=(self.wait_alarm,), left_axis_label="ms"),
                graph("S3 writes: duration and conflicts", *self.s3_write.values(), self.write_conflicts),
                graph(
                    "Records committed (segments) and compacted (parts)",
                    self.committed,
                    self.compacted,
                    self.compaction_failed,
                ),
                LogWidget("Lock acquisitions per 5 min", "lock-contention"),
                LogWidget("Lock wait percentiles", "lock-wait-percentiles"),
                LogWidget("Stale locks", "stale-locks", width=HALF_WIDTH),
                LogWidget("Lock release failures", "lock-release-failures", width=HALF_WIDTH),
                LogWidget("Slowest S3 writes", "slowest-s3-writes", width=HALF_WIDTH),
            ]
        }
