"""Shared fixtures: a real moto server over HTTP, provisioned from the spec."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest
from emulated import Deployment

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.moto_server import MotoServer
from loadtest.emulator.provision import provision
from loadtest.run.job import LoadTestResult, run_loadtest
from loadtest.run.options import LoadTestOptions
from pipeline.spec import build_spec


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer) -> AwsSession:
    """A clean emulator for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST")).close()
    return AwsSession(moto_server.endpoint_url)


@pytest.fixture
def deployment(aws: AwsSession, monkeypatch: pytest.MonkeyPatch) -> Deployment:
    """The tuned spec provisioned in the emulator, with this process set up to run handlers in-process."""
    spec = build_spec("tuned")
    outputs = provision(aws, spec)
    env = {
        **aws.function_environment(),
        **spec.collector_environment(
            topic_arn=outputs.topic_arn, run_table=outputs.run_table_name, bucket=outputs.bucket_name
        ),
        **spec.reporter_environment(run_table=outputs.run_table_name, bucket=outputs.bucket_name),
        "POWERTOOLS_SERVICE_NAME": "cidb-tests",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Deployment(spec, outputs, aws)


@pytest.fixture(scope="session")
def local_run(tmp_path_factory: pytest.TempPathFactory) -> LoadTestResult:
    """The default main job, run once: 1500 synthetic policies, tuned profile, embedded emulator."""
    return run_loadtest(LoadTestOptions(policies=1500, out=tmp_path_factory.mktemp("local-run")))


@pytest.fixture(scope="session")
def fault_run(tmp_path_factory: pytest.TempPathFactory) -> LoadTestResult:
    """A small run of rare lock events: it starts with the run's lock held by a crashed writer (short
    lease), every lock release meets a 503, and parts of 50 rows make a compaction every 50 records."""
    return run_loadtest(
        LoadTestOptions(
            policies=200,
            inject_stale_lock=True,
            fail_lock_release="503",
            overrides={"lock.timeout_seconds": 3, "queue.batching_window_seconds": 2, "output.rows_per_file": 50},
            idle_seconds=2,
            out=tmp_path_factory.mktemp("fault-run"),
        )
    )


@pytest.fixture(scope="session")
def throttled_run(tmp_path_factory: pytest.TempPathFactory) -> LoadTestResult:
    """A small run whose S3 calls are throttled (fault s3-throttle: 503 SlowDown on each first try), so the
    handlers log the SDK retries' error codes; too small to trip the retry alarm, which is not its purpose."""
    return run_loadtest(
        LoadTestOptions(policies=50, faults=("s3-throttle",), idle_seconds=2, out=tmp_path_factory.mktemp("throttled"))
    )
