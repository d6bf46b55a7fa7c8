"""Run the benchmark matrix, one load test per case, each measuring its own emulator floor."""

from __future__ import annotations

import json
import platform
import resource
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.bench.baseline import DEFAULT_TOLERANCE, compare, load_baseline
from loadtest.bench.cases import BenchCase
from loadtest.bench.measures import measures
from loadtest.bench.page import write_bench_page
from loadtest.emulator.lambda_runtime import lambda_python_version
from loadtest.run.job import run_loadtest
from loadtest.run.observation import Progress
from loadtest.run.options import LoadTestOptions


@dataclass
class BenchResult:
    out_dir: Path
    cases: dict[str, dict[str, Any]]
    comparison: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [row for row in self.comparison if row["regressed"]]


def machine() -> dict[str, Any]:
    import moto

    return {
        "python": platform.python_version(),
        "function_python": lambda_python_version(),
        "moto": moto.__version__,
        "cpus": len(__import__("os").sched_getaffinity(0)),
        "platform": platform.platform(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this (harness) process so far; Linux reports KiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(
    cases: tuple[BenchCase, ...],
    out_dir: Path,
    *,
    baseline: Path | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    progress: Progress | None = None,
    on_case: Callable[[BenchCase], None] | None = None,
) -> BenchResult:
    results: dict[str, dict[str, Any]] = {}
    for case in cases:
        if on_case is not None:
            on_case(case)
        options = LoadTestOptions(
            policies=case.policies,
            profile=case.profile,
            latency=case.latency,
            out=out_dir / case.name,
            measure_floor=True,
        )
        run = run_loadtest(options, progress) if progress else run_loadtest(options)
        results[case.name] = measures(run.summary, peak_rss_mb())
    comparison = compare(load_baseline(baseline), results, tolerance) if baseline else []
    result = BenchResult(out_dir, results, comparison)
    body = {"machine": machine(), "cases": results, "comparison": comparison, "tolerance": tolerance}
    (out_dir / "bench.json").write_text(json.dumps(body, indent=2))
    write_bench_page(out_dir / "bench.html", results, comparison)
    return result
