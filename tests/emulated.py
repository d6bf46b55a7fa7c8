"""Helpers for tests that run handlers against the emulator: a provisioned deployment, a Lambda context."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from loadtest.emulator.aws_session import AwsSession
from loadtest.emulator.lambda_bootstrap import InvocationContext
from loadtest.emulator.moto_server import ACCOUNT_ID
from ops.outputs import StackOutputs
from pipeline.spec import DeploymentSpec


@dataclass
class Deployment:
    spec: DeploymentSpec
    outputs: StackOutputs
    aws: AwsSession
    account_id: str = ACCOUNT_ID

    def client(self, service: str) -> Any:
        return self.aws.client(service)


def lambda_context(function_name: str = "cidb-tests", timeout_seconds: float = 900) -> InvocationContext:
    """The context object Lambda passes, for calling a handler in-process."""
    config = {
        "name": function_name,
        "arn": f"arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}",
        "memory_mb": 1024,
    }
    return InvocationContext(config, str(uuid.uuid4()), time.time() + timeout_seconds, "test-stream")
