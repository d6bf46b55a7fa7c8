"""End to end: the real handlers, as separate processes, on a real moto server.

These read as GIVEN a profile and a number of policies WHEN the load test runs THEN the
reconciliation (read back from S3 and the DLQ) and the report say what happened.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from plotly.offline import get_plotlyjs_version

from artifact import build_artifact
from loadtest.analysis.html_parts import Card, plotly_basic_path
from loadtest.analysis.report import headline_cards
from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import MotoServer
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from pipeline.spec import build_spec


def _summary(run: LoadTestResult) -> dict:
    return json.loads((run.report_dir / "summary.json").read_text())


def test_tuned_run_of_1500_loses_and_duplicates_nothing(local_run: LoadTestResult) -> None:
    s = _summary(local_run)
    assert (s["policies"], s["rows_written"], s["unique_rows"]) == (1500, 1500, 1500), s
    assert (s["lost"], s["duplicates"], s["dlq"]) == (0, 0, 0), s["missing_keys"]
    assert local_run.ok


def test_tuned_run_batches_instead_of_one_invocation_per_policy(local_run: LoadTestResult) -> None:
    s = _summary(local_run)
    invocations = pd.read_csv(local_run.report_dir / "invocations.csv")
    assert len(invocations) == s["reporter_invocations"], "invocations.csv has one row per reporter invocation"
    assert s["reporter_invocations"] <= 1500 / 25 * 1.25, f"{s['reporter_invocations']} invocations for 1500 records"
    assert invocations["batch_size"].max() <= 25
    # SQS delivers at least once, so a record may be committed in two segments; compaction keeps one row.
    assert invocations["records_written"].sum() >= 1500, "per-invocation RecordsWritten covers every record"
    metrics = pd.read_csv(local_run.report_dir / "metrics.csv")
    compacted = metrics.loc[metrics["metric_name"] == "RecordsCompacted", "value"].sum()
    assert compacted == 1500, f"RecordsCompacted adds up to the output exactly, got {compacted}"


def test_tuned_run_counts_calls_bytes_and_lock_activity(local_run: LoadTestResult) -> None:
    s = _summary(local_run)
    by_component = s["api_calls"]["by_component"]
    assert by_component["collector"]["sns.PublishBatch"] >= 150, "1500 records need at least 150 PublishBatch calls"
    assert by_component["reporter"]["s3.PutObject"] >= s["reporter_invocations"], "one segment per batch at least"
    assert s["s3_bytes_written"] > s["output_bytes"] > 0
    # Segments take the lock off the commit path: it is taken about once per part, not once per batch.
    assert 1 <= s["lock"]["acquired"] <= s["output_files"] + 3, s["lock"]
    assert s["s3_bytes_written_per_output_byte"] <= 2.5, "each byte is written as a segment, then once in a part"
    assert s["emulator_floor_seconds"] > 0 and s["e2e_seconds"] > 0


def test_tuned_run_writes_the_report_directory(local_run: LoadTestResult) -> None:
    d = local_run.report_dir
    for name in ("summary.json", "invocations.csv", "metrics.csv", "report.html", "emulator.log"):
        assert (d / name).is_file(), f"{name} missing from {d}"
    parts = sorted((d / "output").glob("*.csv"))
    assert len(parts) == 3, f"1500 rows at 500 per part make 3 parts, got {[p.name for p in parts]}"
    for part in parts:
        assert part.read_text().startswith("record_key,"), f"{part.name} lacks its header row"
    for fn in ("collector", "reporter", "verifier"):
        assert (d / "logs" / f"{local_run.spec.base_name}-{fn}.jsonl").stat().st_size > 0
    html = (d / "report.html").read_text()
    for title in ("Records written over time", "Queue depth", "instances in flight", "Lock wait distribution"):
        assert title in html, f"report.html lacks the chart {title!r}"
    assert "<script" in html and "<script src=" not in html, "report.html must be self-contained"


FIRST_SCREEN_CARDS = ("lost", "duplicates", "DLQ", "e2e ÷ floor", "API calls per policy", "S3 bytes per output byte")


def test_report_opens_with_pass_fail_cards_and_stays_small(local_run: LoadTestResult) -> None:
    html = (local_run.report_dir / "report.html").read_text()
    for label in FIRST_SCREEN_CARDS:
        assert f"data-card='{label}'" in html, f"report.html lacks the card {label!r}"
    assert html.index("data-card='lost'") < html.index("<h2>"), "the cards come before every section"
    assert html.count("data-card='lost'") == 1 and "card pass" in html
    assert len(html.encode()) < 1_500_000, f"report.html is {len(html.encode())} bytes"
    assert html.count("* plotly.js (basic - minified)") == 1, "plotly.js (basic) must be inlined exactly once"
    assert "NaT" not in html and "{&quot;" not in html, "no NaT and no JSON in table cells"
    assert "API calls by component" in html
    assert "<div class='card pass' data-card='IAM denied calls'>" in html, "a clean run: IAM enforced, none denied"


def test_iam_card_fails_on_a_denied_call_and_informs_when_off(local_run: LoadTestResult) -> None:
    def iam_card(iam: dict[str, Any]) -> Card:
        summary = {**local_run.summary, "iam": iam}
        return next(c for c in headline_cards(summary, None, 0.2) if c.label == "IAM denied calls")

    assert iam_card({"mode": "enforced", "denied": 2, "denied_by_function": {}}).state == "fail"
    assert iam_card({"mode": "off (--no-iam)", "denied": 0, "denied_by_function": {}}).state == "info"


def test_vendored_plotly_bundle_is_the_version_plotly_py_draws_for() -> None:
    bundle = plotly_basic_path()
    assert bundle.is_file(), f"{bundle}: vendor the basic bundle of the plotly.js version plotly.py bundles"
    assert f"v{get_plotlyjs_version()}" in bundle.read_text()[:200]


def test_report_cards_render_in_a_headless_browser(local_run: LoadTestResult, tmp_path: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium on this machine (Debian: apt-get install chromium)")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
    done = subprocess.run(
        [browser, *flags, f"--user-data-dir={tmp_path}", "--dump-dom", (local_run.report_dir / "report.html").as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    for label in FIRST_SCREEN_CARDS:
        assert f'data-card="{label}"' in done.stdout, f"the rendered page lacks the card {label!r}"
    assert "main-svg" in done.stdout, "plotly drew no chart"


def test_tuned_run_names_the_artifact_that_ran(local_run: LoadTestResult) -> None:
    ran, built = _summary(local_run)["artifact"], build_artifact()
    assert ran["sha256"] == built.sha256, "the main job must run the artifact that `pulumi up` deploys"
    assert (ran["aws_lambda_powertools"], ran["boto3"]) == (
        built.versions["aws-lambda-powertools"],
        built.versions["boto3"],
    )
    assert _summary(local_run)["init_errors"] == []


CliRun = tuple[subprocess.CompletedProcess[str], Path]
OLD_POWERTOOLS_LOCK = Path(__file__).parent / "fixtures" / "powertools-3.29.0.lock"


@pytest.fixture(scope="session")
def old_pin_run(tmp_path_factory: pytest.TempPathFactory) -> CliRun:
    """The artifact built with Powertools 3.29.0, whose BatchProcessor lacks the ``logger`` argument."""
    out = tmp_path_factory.mktemp("old-pin-run")
    command = [sys.executable, "-m", "cidb", "loadtest", "--policies", "30", "--out", str(out)]
    command += ["--lambda-lock", str(OLD_POWERTOOLS_LOCK), "--set", "queue.batching_window_seconds=1"]
    return subprocess.run(command, capture_output=True, text=True, timeout=600), out


def test_old_powertools_pin_fails_loudly_at_cold_start(
    old_pin_run: CliRun,
) -> None:
    # GIVEN an artifact pinned to Powertools 3.29.0 WHEN the load test runs it
    done, out = old_pin_run
    summary = json.loads((out / "summary.json").read_text())
    # THEN the reporter's import error is the headline, every record is in the DLQ, and the CLI exits 1
    assert done.returncode == 1, done.stdout[-2000:]
    assert "failed at cold start" in done.stdout and "unexpected keyword argument" in done.stdout, done.stdout[-2000:]
    [error] = summary["init_errors"]
    assert error["function"].endswith("-reporter") and "'logger'" in error["error"], error
    assert error["count"] >= build_spec().queue.max_receive_count, "every receive of every message hit the init error"
    assert (summary["dlq"], summary["rows_written"], summary["lost"], summary["timed_out"]) == (30, 0, 0, False)
    assert summary["artifact"]["aws_lambda_powertools"] == "3.29.0"
    assert set(summary["reporter_outcomes"]) == {"init_error"}, summary["reporter_outcomes"]


def test_old_powertools_pin_trips_the_alarms_and_shows_in_the_report(
    old_pin_run: CliRun,
) -> None:
    _, out = old_pin_run
    fired = json.loads((out / "summary.json").read_text())["alarms_fired"]
    for suffix in ("dlq-depth-critical", "reporter-errors-critical"):
        assert any(name.endswith(suffix) for name in fired), f"{suffix} must fire; fired: {fired}"
    html = (out / "report.html").read_text()
    assert "failed at cold start" in html and "3.29.0" in html, "report.html must show the init error and the pin"
    init_reports = [
        json.loads(line)
        for path in (out / "logs").rglob("*.jsonl")
        for line in path.read_text().splitlines()
        if '"platform.initReport"' in line
    ]
    assert init_reports and all(r["record"]["status"] == "error" for r in init_reports), init_reports[:2]


def test_clean_tuned_run_trips_no_alarm(local_run: LoadTestResult) -> None:
    assert local_run.alarms is not None
    fired = local_run.alarms.loc[local_run.alarms["fired"], "name"].tolist()
    assert fired == [], f"a clean tuned run must not trip alarms, but {fired} fired"


@pytest.fixture(scope="session")
def seed_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The seed profile through the real CLI, as a user would run it."""
    out = tmp_path_factory.mktemp("seed-run")
    done = subprocess.run(
        [sys.executable, "-m", "cidb", "loadtest", "--profile", "seed", "--policies", "300", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    return done, out


def test_seed_profile_loses_data_under_concurrency(seed_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    done, out = seed_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["lost"] > 0, f"the seed's unlocked single CSV should lose rows; summary: {summary}"
    assert summary["reporter_invocations"] >= 300, "batch size 1 means one invocation per policy"
    assert done.returncode == 1, done.stdout[-2000:]
    assert "DATA LOSS" in done.stdout


def test_seed_profile_trips_the_data_loss_alarm(seed_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, out = seed_run
    summary = json.loads((out / "summary.json").read_text())
    # The data-loss alarm pages by itself (severity page), not through the composite it would otherwise latch.
    assert any(name.endswith("verifier-data-loss-page") for name in summary["alarms_fired"]), summary["alarms_fired"]


def test_iam_source_collects_real_policies_end_to_end(tmp_path: Path) -> None:
    run = run_loadtest(
        LoadTestOptions(
            policies=200, source="iam", out=tmp_path, overrides={"queue.batching_window_seconds": 2}, idle_seconds=2
        )
    )
    s = run.summary
    assert (s["lost"], s["duplicates"], s["unique_rows"]) == (0, 0, 200), s["missing_keys"]
    iam_calls = s["api_calls"]["by_component"]["collector"]
    assert iam_calls.get("iam.GetAccountAuthorizationDetails") == 1, iam_calls
    assert not any(op.startswith("iam.") and "Authorization" not in op for op in iam_calls), iam_calls


def test_stale_lock_is_taken_over_without_loss(fault_run: LoadTestResult) -> None:
    s = fault_run.summary
    assert s["lock"]["stale_broken"] >= 1, s["lock"]
    assert (s["lost"], s["duplicates"]) == (0, 0), s["missing_keys"]
    fired = set(fault_run.alarms.loc[fault_run.alarms["fired"], "name"])
    assert any(name.endswith("lock-stale-broken-warning") for name in fired), fired


def test_bad_options_fail_with_a_clear_message(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cidb", "loadtest", "--policies", "0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "--policies=0 must be at least 1" in done.stdout


def test_endpoint_url_uses_a_running_emulator(moto_server: MotoServer, tmp_path: Path) -> None:
    # GIVEN an emulator that is already running WHEN the load test is pointed at it
    run = run_loadtest(
        LoadTestOptions(
            policies=60,
            endpoint_url=moto_server.endpoint_url,
            out=tmp_path,
            overrides={"queue.batching_window_seconds": 1},
            idle_seconds=2,
        )
    )
    # THEN the run happens there (its resources remain after the run) and reconciles cleanly
    assert (run.summary["lost"], run.summary["duplicates"], run.summary["unique_rows"]) == (0, 0, 60)
    s3 = AwsSession(moto_server.endpoint_url).client("s3")
    buckets = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert run.spec.bucket_name in buckets, f"{run.spec.bucket_name} not in the running emulator: {buckets}"
    assert not (tmp_path / "emulator.log").exists(), "no embedded emulator was started"


def test_records_still_queued_at_the_deadline_are_not_called_lost(tmp_path: Path) -> None:
    # GIVEN a deadline far too short for 300 records WHEN the run stops at it
    run = run_loadtest(LoadTestOptions(policies=300, deadline_seconds=2, idle_seconds=2, out=tmp_path))
    s = run.summary
    # THEN what was still in the queue is reported as queued, not lost, and the run still fails
    assert s["timed_out"] and s["queued_at_end"] > 0, {k: s[k] for k in ("timed_out", "queued_at_end", "unique_rows")}
    assert s["lost"] == 0, s["missing_keys"][:5]
    assert s["unique_rows"] + s["queued_at_end"] + s["in_flight"] + s["dlq"] == 300
    assert not run.ok and any("still in the queue" in p for p in run.unsettled), run.unsettled
    # AND the exit code tells "not finished" (3) apart from "lost" (1)
    assert (run.problems, run.exit_code) == ([], 3)


def test_stress_20_reporters_with_batches_of_5_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    # GIVEN 20 concurrent reporters and small batches (many segments, many compaction attempts)
    run = run_loadtest(
        LoadTestOptions(
            policies=600,
            concurrency=20,
            overrides={"queue.batch_size": 5, "queue.batching_window_seconds": 1},
            idle_seconds=3,
            out=tmp_path,
        )
    )
    s = run.summary
    # THEN every record is in the parts exactly once, and the lock never held a writer up for long
    assert (s["lost"], s["duplicates"], s["dlq"], s["written_and_dlq"], s["unique_rows"]) == (0, 0, 0, 0, 600)
    assert s["lock"]["acquire_failed"] == 0, s["lock"]
    assert s["reporter_invocations"] >= 600 / 5
