"""What a local run's components did, summed per component: API calls, IAM denials, latency delays.

A component is a function (collector, reporter, verifier) or the event source mapping, whose own
session counts its polls and deletes.
"""

from __future__ import annotations

from typing import Any

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.lambda_runtime import InvocationResult
from pipeline.spec import DeploymentSpec


def api_calls(
    esm_session: AwsSession, results: list[InvocationResult], spec: DeploymentSpec
) -> dict[str, dict[str, int]]:
    """API calls by component and operation; the mapping's own calls included."""
    calls: dict[str, dict[str, int]] = {"event_source_mapping": dict(esm_session.counter.calls)}
    for result in results:
        component = calls.setdefault(component_of(result.function, spec), {})
        for op, n in result.api_calls.items():
            component[op] = component.get(op, 0) + n
    return calls


def denied_calls(
    esm_session: AwsSession, results: list[InvocationResult], spec: DeploymentSpec
) -> dict[str, dict[str, int]]:
    """Calls answered AccessDenied, by component and operation; only components that had any."""
    denied: dict[str, dict[str, int]] = {}
    if esm_session.counter.denied:
        denied["event_source_mapping"] = dict(esm_session.counter.denied)
    for result in results:
        for op, n in result.denied.items():
            component = denied.setdefault(component_of(result.function, spec), {})
            component[op] = component.get(op, 0) + n
    return denied


def delayed_calls(
    esm_session: AwsSession, results: list[InvocationResult], spec: DeploymentSpec
) -> dict[str, dict[str, Any]]:
    """What the latency hooks delayed, by component: calls by operation, HTTP attempts, seconds."""
    delayed: dict[str, dict[str, Any]] = {}
    if esm_session.latency is not None:
        delayed["event_source_mapping"] = esm_session.latency.take()
    for result in results:
        if not result.delayed:
            continue
        empty: dict[str, Any] = {"calls": {}, "attempts": 0, "seconds": 0.0}
        component = delayed.setdefault(component_of(result.function, spec), empty)
        for op, n in result.delayed["calls"].items():
            component["calls"][op] = component["calls"].get(op, 0) + n
        component["attempts"] += result.delayed["attempts"]
        component["seconds"] = round(component["seconds"] + result.delayed["seconds"], 3)
    return delayed


def component_of(function_name: str, spec: DeploymentSpec) -> str:
    return {spec.collector.name: "collector", spec.reporter.name: "reporter", spec.verifier.name: "verifier"}.get(
        function_name, function_name
    )
