"""``cidb bench``: the gate compares ratios with a tolerance; a smoke case runs against the committed baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from loadtest.bench.baseline import BaselineError, compare, load_baseline, save_baseline
from loadtest.bench.cases import SMOKE
from loadtest.bench.measures import GATED, measures
from loadtest.bench.runner import run_bench

BASELINE = Path(__file__).resolve().parents[1] / "bench" / "baseline.json"
CASE = {
    "e2e_over_floor": 4.0,
    "api_calls_per_policy": 0.65,
    "bytes_per_output_byte": 2.08,
    "invocations_per_policy": 0.04,
}


def test_a_ratio_worse_by_more_than_the_tolerance_regresses() -> None:
    worse = {**CASE, "api_calls_per_policy": 0.65 * 1.25, "bytes_per_output_byte": 2.08 * 1.15}
    rows = compare({"tuned-1500": CASE}, {"tuned-1500": worse}, tolerance=0.2)
    regressed = {row["measure"] for row in rows if row["regressed"]}
    assert regressed == {"api_calls_per_policy"}, rows
    assert {row["measure"] for row in rows} == set(GATED)


def test_getting_better_is_never_a_regression() -> None:
    better = {measure: value / 2 for measure, value in CASE.items()}
    assert not any(row["regressed"] for row in compare({"c": CASE}, {"c": better}))


def test_cases_missing_from_the_baseline_are_not_compared() -> None:
    assert compare({"tuned-1500": CASE}, {"tuned-300": {**CASE, "e2e_over_floor": 99}}) == []


def test_saving_keeps_the_cases_this_run_did_not_make(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    save_baseline(path, {"tuned-1500": CASE}, {"cpus": 2})
    save_baseline(path, {"tuned-300": {**CASE, "e2e_over_floor": 5.0}}, {"cpus": 2})
    assert set(load_baseline(path)) == {"tuned-1500", "tuned-300"}


@pytest.mark.parametrize("content", [None, "not json", '{"cases": 3}'])
def test_a_bad_baseline_names_the_file(tmp_path: Path, content: str | None) -> None:
    path = tmp_path / "baseline.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(BaselineError, match=str(path)):
        load_baseline(path)


def test_measures_are_ratios_of_one_run() -> None:
    summary = {
        "profile": "tuned",
        "policies": 1000,
        "e2e_seconds": 20.0,
        "emulator_floor_seconds": 5.0,
        "unique_rows": 1000,
        "api_calls": {"per_policy": 0.7},
        "s3_bytes_written_per_output_byte": 2.1,
        "lock": {"wait_ms_p50": 10.0, "wait_ms_p99": 50.0},
        "reporter_invocations": 40,
        "lost": 0,
        "duplicates": 0,
        "dlq": 0,
    }
    m = measures(summary, peak_rss_mb=300.0)
    assert (m["e2e_over_floor"], m["records_per_second"], m["invocations_per_policy"]) == (4.0, 50.0, 0.04)


def test_smoke_bench_holds_the_committed_baselines_ratios(tmp_path: Path) -> None:
    # GIVEN the baseline committed in the repository WHEN the smoke case (tuned, 300 policies) runs
    result = run_bench(SMOKE, tmp_path, baseline=BASELINE)
    # THEN no gated ratio is more than 20 % worse, and the run itself delivered everything once
    [case] = result.cases.values()
    assert (case["lost"], case["duplicates"], case["dlq"]) == (0, 0, 0)
    assert result.comparison, "the committed baseline must hold the smoke case"
    assert result.regressions == [], json.dumps(result.comparison, indent=1)
    assert (tmp_path / "bench.json").is_file() and (tmp_path / "bench.html").is_file()
