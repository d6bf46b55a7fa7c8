"""Run reconciliation and record throughput: the data-loss alarm and expected vs written."""

from __future__ import annotations

from monitoring.alarm_factory import VERDICT, AlarmFactory
from monitoring.emf import CidbMetricFactory
from monitoring.model import MAXIMUM, AlarmDefinition, Severity
from monitoring.naming import View
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
        self.data_loss_alarm = alarms.alarm(
            VERDICT,
            component="verifier",
            suffix="data-loss",
            severity=Severity.CRITICAL,
            metric=self.shortfall,
            threshold=0,
            summary="A finished run has fewer unique rows in S3 than records collected: data was lost. The alarm "
            "stays on until a later run reconciles clean.",
            runbook_anchor="data-loss",
        )

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        return (self.data_loss_alarm,)

    def summary_widgets(self) -> list[Widget]:
        return [
            graph("Records: expected vs written", self.expected, self.written, self.records_written, width=HALF_WIDTH),
            graph("Data loss", self.shortfall, self.runs_verified, alarms=(self.data_loss_alarm,)),
            LogWidget("Reconciliation per run", "run-reconciliation", width=HALF_WIDTH),
        ]

    def detail_widgets(self) -> dict[View, list[Widget]]:
        return {View.QUEUE: [graph("Reporter records", *self.records, width=HALF_WIDTH)]}
