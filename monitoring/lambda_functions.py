"""Lambda monitoring for the three functions: errors, throttles, duration vs timeout, reporter concurrency."""

from __future__ import annotations

from monitoring.alarm_factory import IMMEDIATE, SUSTAINED, AlarmFactory
from monitoring.model import MAXIMUM, MILLISECONDS, SUM, AlarmDefinition, Comparison, Metric, Severity, percentile
from monitoring.naming import View
from monitoring.resources import ROLES, MonitoredResources, NameLike
from monitoring.thresholds import (
    ALARM_PERIOD_SECONDS,
    MIN_PERCENTILE_SAMPLES,
    SPARSE_PERCENTILE_SAMPLES,
    concurrency_threshold,
    duration_threshold_ms,
)
from monitoring.widgets import HALF_WIDTH, LogWidget, Widget, graph
from pipeline.spec import DeploymentSpec

NAMESPACE = "AWS/Lambda"
PAGING_ERROR_ROLES = ("collector", "reporter")
"""A failing collector loses the day's run and a failing reporter strands records; verifier errors only delay
the reconciliation, so they notify."""


class LambdaMetricFactory:
    """AWS/Lambda metrics of one function."""

    def __init__(self, function_name: NameLike, label: str) -> None:
        self.function_name = function_name
        self.label = label

    def metric_errors_count(self) -> Metric:
        return self._metric("Errors", SUM, "errors")

    def metric_throttles_count(self) -> Metric:
        return self._metric("Throttles", SUM, "throttles")

    def metric_invocations_count(self) -> Metric:
        return self._metric("Invocations", SUM, "invocations")

    def metric_duration_ms(self, statistic: str) -> Metric:
        return self._metric("Duration", statistic, f"duration {statistic} (ms)", MILLISECONDS)

    def metric_concurrent_executions_count(self) -> Metric:
        return self._metric("ConcurrentExecutions", MAXIMUM, "concurrent executions")

    def _metric(self, name: str, statistic: str, what: str, unit: str = "") -> Metric:
        dimensions = (("FunctionName", self.function_name),)
        return Metric(NAMESPACE, name, dimensions, statistic, ALARM_PERIOD_SECONDS, f"{self.label} {what}", unit)


class _FunctionMonitoring:
    def __init__(self, spec: DeploymentSpec, resources: MonitoredResources, alarms: AlarmFactory, role: str) -> None:
        metrics = LambdaMetricFactory(resources.function(role), role)
        self.role = role
        self.errors = metrics.metric_errors_count()
        self.throttles = metrics.metric_throttles_count()
        self.invocations = metrics.metric_invocations_count()
        self.duration = {p: metrics.metric_duration_ms(percentile(p)) for p in (50, 90, 99)}
        function = getattr(spec, role)
        self.errors_alarm = alarms.alarm(
            IMMEDIATE,
            component=role,
            suffix="errors",
            severity=Severity.CRITICAL if role in PAGING_ERROR_ROLES else Severity.WARNING,
            metric=self.errors,
            threshold=0,
            summary=f"The {role} Lambda raised an unhandled error (or timed out).",
            runbook_anchor="lambda-errors",
        )
        self.throttles_alarm = alarms.alarm(
            IMMEDIATE,
            component=role,
            suffix="throttles",
            severity=Severity.WARNING,
            metric=self.throttles,
            threshold=0,
            summary=f"Lambda throttled {role} invocations: the account or function concurrency limit was reached.",
            runbook_anchor="lambda-throttles",
        )
        self.duration_alarm = alarms.alarm(
            IMMEDIATE,
            component=role,
            suffix="duration-p99",
            severity=Severity.WARNING,
            metric=self.duration[99],
            threshold=duration_threshold_ms(spec, function),
            summary=f"p99 duration of the {role} is above {spec.alarms.duration_fraction_of_timeout:.0%} of its "
            f"{function.timeout_seconds} s timeout: the next slow invocation may time out.",
            runbook_anchor="lambda-duration",
            min_samples=MIN_PERCENTILE_SAMPLES if role == "reporter" else SPARSE_PERCENTILE_SAMPLES,
        )
        cap = concurrency_threshold(spec) if role == "reporter" else None
        self.concurrency = metrics.metric_concurrent_executions_count() if cap is not None else None
        self.concurrency_alarm = (
            alarms.alarm(
                SUSTAINED,
                component=role,
                suffix="concurrency-at-cap",
                severity=Severity.WARNING,
                metric=self.concurrency,
                threshold=cap,
                comparison=Comparison.GREATER_OR_EQUAL,
                summary=f"Reporters have run at the event source mapping's maximum concurrency "
                f"({spec.queue.max_concurrency}) for three periods: the mapping, not the queue, limits throughput.",
                runbook_anchor="reporter-concurrency",
            )
            if self.concurrency and cap is not None
            else None
        )

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        found = (self.errors_alarm, self.throttles_alarm, self.duration_alarm, self.concurrency_alarm)
        return tuple(a for a in found if a)


class FunctionsMonitoring:
    """The three functions side by side, so their graphs can share widgets."""

    def __init__(self, spec: DeploymentSpec, resources: MonitoredResources, alarms: AlarmFactory) -> None:
        self.functions = [_FunctionMonitoring(spec, resources, alarms, role) for role in ROLES]

    @property
    def alarms(self) -> tuple[AlarmDefinition, ...]:
        return tuple(a for f in self.functions for a in f.alarms)

    def summary_widgets(self) -> list[Widget]:
        return [self._errors_graph()]

    def detail_widgets(self) -> dict[View, list[Widget]]:
        performance: list[Widget] = [
            graph(
                f"{f.role}: duration",
                *f.duration.values(),
                alarms=(f.duration_alarm,),
                left_axis_label="ms",
            )
            for f in self.functions
        ]
        performance += [
            graph("Invocations", *(f.invocations for f in self.functions)),
            self._errors_graph(),
        ]
        performance += [
            graph("reporter: concurrent executions", f.concurrency, alarms=(f.concurrency_alarm,))
            for f in self.functions
            if f.concurrency and f.concurrency_alarm
        ]
        performance += [
            LogWidget("Cold starts and duration (REPORT lines)", "cold-starts-duration"),
            LogWidget("Reporter errors by exception", "reporter-errors"),
        ]
        throttling: list[Widget] = [
            graph(
                "Lambda throttles",
                *(f.throttles for f in self.functions),
                alarms=tuple(f.throttles_alarm for f in self.functions),
                width=HALF_WIDTH,
            )
        ]
        return {View.LAMBDA: performance, View.THROTTLING: throttling}

    def _errors_graph(self) -> Widget:
        return graph(
            "Lambda errors",
            *(f.errors for f in self.functions),
            alarms=tuple(f.errors_alarm for f in self.functions),
        )
