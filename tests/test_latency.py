"""``--latency aws``: the sampler draws what the profile says, every AWS call passes through the hook, pollers
ramp up as Lambda's do, and the floor is measured (and cached) under the same profile.

Everything here counts; nothing times: wall-clock assertions would fail on a busy 2-core machine.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from emulated import Deployment

from loadtest.bench.cases import MATRIX
from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.esm import UNCAPPED_EMULATOR_CONCURRENCY, EventSourceMapping, MappingSettings
from loadtest.emulator.lambda_runtime import FunctionConfig
from loadtest.emulator.moto_server import ACCOUNT_ID, REGION
from loadtest.faults.injection import FaultRule, install_rules
from loadtest.latency import EMULATOR_CEILING, PROFILES, LatencyHook, LatencyProfile, Percentiles, Sampler
from loadtest.latency.profiles import AWS_DELAYS, PYTHON_COLD_START, S3_READ, S3_WRITE, SQS
from loadtest.latency.scaling import SQS_STANDARD
from loadtest.run.floor_cache import cached_floor, floor_key
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from pipeline.spec import build_spec

AWS = PROFILES["aws"]


@pytest.mark.parametrize("distribution", [S3_READ, S3_WRITE, SQS, PYTHON_COLD_START], ids=str)
def test_draws_have_the_profiles_p50_and_p99(distribution: Percentiles) -> None:
    # GIVEN a profile whose only distribution is this one WHEN 40 000 calls are drawn with a fixed seed
    sampler = Sampler(LatencyProfile("t", {"*": distribution}, distribution), seed="quantiles")
    draws = [sampler.call_seconds("any.Call") * 1000 for _ in range(40_000)]
    # THEN their median and 99th percentile are the published ones, within sampling error
    cuts = statistics.quantiles(draws, n=100)
    assert cuts[49] == pytest.approx(distribution.p50_ms, rel=0.03)
    assert cuts[98] == pytest.approx(distribution.p99_ms, rel=0.06)


def test_the_same_seed_draws_the_same_delays() -> None:
    first, second, other = (Sampler(AWS_DELAYS, seed) for seed in ("run-1:a", "run-1:a", "run-1:b"))
    draws = [[s.call_seconds("s3.GetObject") for _ in range(5)] for s in (first, second, other)]
    assert draws[0] == draws[1] != draws[2]


def test_an_operation_gets_its_own_then_its_services_then_the_default_distribution() -> None:
    assert AWS_DELAYS.distribution("s3.PutObject") == S3_WRITE
    assert AWS_DELAYS.distribution("s3.DeleteObjects") == S3_WRITE
    assert AWS_DELAYS.distribution("s3.GetObject") == S3_READ
    assert AWS_DELAYS.distribution("s3.ListObjectVersions") == S3_READ
    assert AWS_DELAYS.distribution("sqs.ChangeMessageVisibilityBatch") == SQS
    assert AWS_DELAYS.distribution("iam.GetAccountAuthorizationDetails").p50_ms > S3_WRITE.p99_ms
    assert AWS_DELAYS.distribution("kinesis.PutRecord") == AWS_DELAYS.calls["*"]


def test_a_profile_reaches_the_instance_as_plain_data_unchanged() -> None:
    assert LatencyProfile.from_dict(AWS_DELAYS.to_dict()) == AWS_DELAYS


def test_each_http_attempt_waits_and_each_call_is_counted_once(deployment: Deployment) -> None:
    # GIVEN an S3 client whose first PutObject attempt meets a 503 (retried by botocore), behind the hook
    s3 = deployment.aws._session.client("s3", endpoint_url=deployment.aws.endpoint_url)
    waits: list[float] = []
    hook = LatencyHook(Sampler(AWS_DELAYS, "retries"), sleep=waits.append).install(s3.meta.events)
    install_rules(s3.meta.events, [FaultRule("s3.PutObject", "SlowDown", 503, action="http", attempt=1)])
    # WHEN one PutObject and one GetObject are made
    s3.put_object(Bucket=deployment.outputs.bucket_name, Key="k", Body=b"x")
    s3.get_object(Bucket=deployment.outputs.bucket_name, Key="k")
    # THEN three attempts waited (the retry too), and two calls were counted
    taken = hook.take()
    assert (taken["calls"], taken["attempts"], len(waits)) == ({"s3.PutObject": 1, "s3.GetObject": 1}, 3, 3)


@pytest.fixture(scope="module")
def aws_run(tmp_path_factory: pytest.TempPathFactory) -> LoadTestResult:
    """A small tuned run under the AWS latency profile, with its floor measured under the same profile."""
    options = LoadTestOptions(
        policies=30, latency="aws", measure_floor=True, idle_seconds=2, out=tmp_path_factory.mktemp("aws")
    )
    return run_loadtest(options)


def test_every_aws_call_of_a_run_passes_through_the_latency_hook(aws_run: LoadTestResult) -> None:
    s = aws_run.summary
    assert aws_run.ok, aws_run.problems + aws_run.unsettled
    # THEN each component's delayed calls, operation by operation, are its counted API calls
    counted, delayed = s["api_calls"]["by_component"], s["latency_injected"]["calls"]
    assert set(delayed) == {"collector", "reporter", "verifier", "event_source_mapping"}
    for component, operations in counted.items():
        assert delayed[component] == operations, component
    # AND the floor's calls all waited too
    assert s["floor_latency"] == "aws" and s["floor_delayed_calls"] == s["floor_api_calls"] > 0


def test_every_new_instance_waits_a_cold_start_and_the_summary_names_the_profile(aws_run: LoadTestResult) -> None:
    s = aws_run.summary
    instances = s["cold_starts"] + 2  # the reporter's, plus the collector and the verifier
    assert (s["latency"], s["latency_injected"]["cold_starts"]) == ("aws", instances)
    assert s["poller_scaling"]["capped_by"] == "the mapping's maximum concurrency"
    assert "latency aws" in (aws_run.report_dir / "report.html").read_text()


def test_pollers_ramp_from_five_by_300_a_minute_up_to_the_cap() -> None:
    allowed = [SQS_STANDARD.allowed(seconds, cap=50) for seconds in (0, 0.5, 1, 6, 60)]
    assert allowed == [5, 7, 10, 35, 50]
    assert SQS_STANDARD.allowed(3600, cap=5000) == 1000  # AWS's own maximum
    assert SQS_STANDARD.cap(10) == (10, "the mapping's maximum concurrency")
    assert SQS_STANDARD.cap(None)[0] == EMULATOR_CEILING and "ceiling" in SQS_STANDARD.cap(None)[1]


def test_an_uncapped_mapping_scales_to_the_ceiling_under_aws_and_stays_fixed_without() -> None:
    seed = build_spec("seed")
    assert seed.queue.max_concurrency is None
    assert MappingSettings.from_spec(seed).max_concurrency == UNCAPPED_EMULATOR_CONCURRENCY
    under_aws = MappingSettings.from_spec(seed, scaling=AWS.scaling)
    assert (under_aws.max_concurrency, under_aws.scaling) == (EMULATOR_CEILING, SQS_STANDARD)
    assert MappingSettings.from_spec(seed, concurrency=3, scaling=AWS.scaling).max_concurrency == 3


def _wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.1)


def test_a_mapping_under_aws_does_not_start_every_poller_at_once(deployment: Deployment, tmp_path: Path) -> None:
    # GIVEN a mapping of 20 slots that scales as Lambda's, on a clock that stands still at its start
    now = [0.0]
    session = AwsSession(deployment.aws.endpoint_url)
    counter = session.counter
    function = FunctionConfig("reporter", "x.handler", 5, 128, {}, tmp_path, ACCOUNT_ID, REGION, (tmp_path, tmp_path))
    settings = MappingSettings(10, 0, 20, True, scaling=SQS_STANDARD)
    esm = EventSourceMapping(
        session.client("sqs"),
        counter,
        queue_url=deployment.outputs.queue_url,
        queue_arn=deployment.outputs.queue_arn,
        function=function,
        settings=settings,
        clock=lambda: now[0],
    ).start()
    try:
        # WHEN the pollers have made 15 receives THEN only the first five slots ever polled
        _wait_for(lambda: counter.calls["sqs.ReceiveMessage"] >= 15)
        assert counter.calls["sqs.ReceiveMessage"] >= 15
        assert esm.state.polled_slots == set(range(5))
        # WHEN a minute has passed on its clock THEN every slot polls
        now[0] = 60.0
        _wait_for(lambda: len(esm.state.polled_slots) == 20)
        assert esm.state.polled_slots == set(range(20))
    finally:
        esm.stop()


def test_the_floor_cache_keeps_one_floor_per_latency_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CIDB_CACHE_DIR", str(tmp_path))
    assert floor_key(100, 7, 10, "aws") != floor_key(100, 7, 10, "none")
    measured: list[str] = []
    for latency in ("none", "aws", "none", "aws"):
        cached_floor(100, 7, 10, lambda latency=latency: measured.append(latency) or {"s": 1.0}, latency=latency)
    assert measured == ["none", "aws"]


def test_bad_latency_options_fail_with_one_clear_line() -> None:
    assert LoadTestOptions(latency="fast").problems() == ["--latency='fast' must be one of ('none', 'aws')"]
    [problem] = LoadTestOptions(latency="aws", target="stack", outputs_file=Path("o.json")).problems()
    assert problem.startswith("--latency aws needs the local target")


def test_the_bench_runs_tuned_and_seed_at_1500_with_and_without_the_aws_profile() -> None:
    names = [case.name for case in MATRIX]
    assert len(names) == len(set(names))
    assert {"tuned-1500", "seed-1500", "tuned-1500-aws", "seed-1500-aws"} <= set(names)
