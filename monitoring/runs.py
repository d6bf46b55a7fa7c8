"""Run reconciliation and record throughput: the data-loss alarm and expected vs written."""

from __future__ import annotations

from dataclasses import replace

from monitoring.alarm_factory import VERDICT, AlarmFactory, heartbeat
from monitoring.emf import CidbMetricFactory
from monitoring.model import MAXIMUM, SAMPLE_COUNT, AlarmDefinition, Severity
from monitoring.naming import View
from monitoring.thresholds import HEARTBEAT_PERIOD_SECONDS, verifier_heartbeat_hours
from monitoring.widgets import HALF_WIDTH, LogWidget, Widget, graph
from pipeline.spec import DeploymentSpec
from pipeline.telemetry import MetricName


class RunMonitoring:
    def __init__(self, spec: DeploymentSpec, alarms: AlarmFactory) -> None:
        verifier = CidbMetricFactory(spec, "verifier")
        reporter = CidbMetricFactory(spec, "reporter")
        self.expected = verifier.metric_count(MetricName.RUN_EXPECTED, label="expected (collected)")
        self.written = verifier.metric_count(MetricName.RUN_WRITTEN, label="written (unique rows in S3)")
        self.shortfall = verifier.metric_count(MetricName.RUN_SHORTFALL, MAXIMUM, label="shortfall (max per run)")
        self.runs_verified = verifier.metric_count(MetricName.RUNS_VERIFIED, label="runs reconciled")
        self.records_written = reporter.metric_count(MetricName.RECORDS_WRITTEN)
        self.records = (
            reporter.metric_count(MetricName.RECORDS_RECEIVED),
            self.records_written,
            reporter.metric_count(MetricName.DUPLICATES_DROPPED),
            reporter.metric_count(MetricName.RECORDS_FAILED),
        )
        # Severity PAGE: it pages on its own route, outside the composite. It stays in ALARM until that same run
        # completes, and as a composite child it would hold the composite in ALARM and silence every later page.
        self.data_loss_alarm = alarms.alarm(
            VERDICT,
            component="verifier",
            suffix="data-loss",
            severity=Severity.PAGE,
            metric=self.shortfall,
            threshold=0,
            summary="A finished run has fewer unique rows in S3 than records collected: data was lost or is parked "
            "in the DLQ. The alarm stays on until that same run is complete (redrive, re-run) or on-call closes it "
            "with `cidb runs close`; a later clean run does not clear it.",
            runbook_anchor="data-loss",
        )
        hours = verifier_heartbeat_hours(spec)
        self.verifier_invocations = replace(
            self.runs_verified, statistic=SAMPLE_COUNT, period=HEARTBEAT_PERIOD_SECONDS, label="verifier invocations"
        )
        self.verifier_stopped_alarm = (
            alarms.alarm(
                heartbeat(hours),
                component="verifier",
                suffix="stopped",
                severity=Severity.WARNING,
                metric=self.verifier_invocations,
                threshold=1,
                summary=f"The verifier reported no RunsVerified for {hours} hours (schedule "
                f"{spec.verify_schedule_expression} plus slack): runs are not reconciled, so the data-loss alarm "
                "cannot fire.",
                runbook_anchor="verifier-stopped",
            )
            if hours
            else None
        )

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        return tuple(a for a in (self.data_loss_alarm, self.verifier_stopped_alarm) if a)

    def summary_widgets(self) -> list[Widget]:
        return [
            graph("Records: expected vs written", self.expected, self.written, self.records_written, width=HALF_WIDTH),
            graph("Data loss", self.shortfall, self.runs_verified, alarms=(self.data_loss_alarm,)),
            LogWidget("Reconciliation per run", "run-reconciliation", width=HALF_WIDTH),
        ]

    def detail_widgets(self) -> dict[View, list[Widget]]:
        widgets = [graph("Reporter records", *self.records, width=HALF_WIDTH)]
        if self.verifier_stopped_alarm:
            widgets.append(
                graph("Verifier invocations per hour", self.verifier_invocations, alarms=(self.verifier_stopped_alarm,))
            )
        return {View.QUEUE: widgets}
