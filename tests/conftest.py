"""Shared fixtures: a real moto server over HTTP, provisioned from the spec."""

from __future__ import annotations

import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from loadtest.aws_session import AwsSession
from loadtest.emulator import ACCOUNT_ID, MotoServer
from loadtest.job import LoadTestResult, run_loadtest
from loadtest.lambda_bootstrap import InvocationContext
from loadtest.options import LoadTestOptions
from loadtest.outputs import StackOutputs
from loadtest.provision import provision
from pipeline.spec import DeploymentSpec, build_spec


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def aws(moto_server: MotoServer) -> AwsSession:
    """A clean emulator for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server.endpoint_url}/moto-api/reset", method="POST")).close()
    return AwsSession(moto_server.endpoint_url)


@dataclass
class Deployment:
    spec: DeploymentSpec
    outputs: StackOutputs
    aws: AwsSession
    account_id: str = ACCOUNT_ID

    def client(self, service: str) -> Any:
        return self.aws.client(service)


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


def lambda_context(function_name: str = "cidb-tests", timeout_seconds: float = 900) -> InvocationContext:
    """The context object Lambda passes, for calling a handler in-process."""
    config = {
        "name": function_name,
        "arn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}",
        "memory_mb": 1024,
    }
    return InvocationContext(config, str(uuid.uuid4()), time.time() + timeout_seconds, "test-stream")


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
