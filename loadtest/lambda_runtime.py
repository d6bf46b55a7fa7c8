"""A Lambda-like runtime: each function instance is its own OS process.

Instances overlap for real (separate interpreters, no shared state), can be killed when
they exceed the function timeout, and start cold again afterwards, as Lambda's do. Each
instance writes what the handler prints (Powertools JSON logs and EMF blobs) to its own
log file, plus a ``platform.report`` line per invocation in Lambda's JSON log format.
"""

from __future__ import annotations

import importlib
import json
import multiprocessing
import os
import resource
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from loadtest.apicalls import ApiCallCounter


@dataclass(frozen=True)
class FunctionConfig:
    name: str
    handler: str
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    log_dir: Path
    account_id: str
    region: str

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{self.account_id}:function:{self.name}"


@dataclass
class InvocationResult:
    function: str
    request_id: str
    instance_id: str
    cold_start: bool
    started: float
    ended: float
    outcome: str  # ok | error | timeout | crash
    response: Any = None
    error: str | None = None
    api_calls: dict[str, int] = field(default_factory=dict)
    s3_bytes_written: int = 0
    init_ms: float = 0.0

    @property
    def duration_ms(self) -> float:
        return (self.ended - self.started) * 1000


class InvocationContext:
    """The attributes of Lambda's context object that handlers and Powertools use."""

    def __init__(self, config: dict[str, Any], request_id: str, deadline: float, stream: str) -> None:
        self.function_name = config["name"]
        self.function_version = "$LATEST"
        self.invoked_function_arn = config["arn"]
        self.memory_limit_in_mb = config["memory_mb"]
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{config['name']}"
        self.log_stream_name = stream
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def platform_report(request_id: str, duration_ms: float, memory_mb: int, status: str, init_ms: float = 0.0) -> str:
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 2),
        "billedDurationMs": int(duration_ms) + 1,
        "memorySizeMB": memory_mb,
        "maxMemoryUsedMB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    }
    if init_ms:
        metrics["initDurationMs"] = round(init_ms, 2)
    record = {"requestId": request_id, "metrics": metrics, "status": status}
    return json.dumps({"time": _now(), "type": "platform.report", "record": record})


def worker_main(conn: Connection) -> None:
    """Body of an instance process: load the handler once, then serve invocations."""
    config, log_path = conn.recv()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.update(config["environment"])
    started = time.monotonic()
    import boto3

    boto3.setup_default_session()
    counter = ApiCallCounter().install(boto3.DEFAULT_SESSION)
    module_name, func_name = config["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), func_name)
    init_ms = (time.monotonic() - started) * 1000
    conn.send(("ready", init_ms))
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    first = True
    while True:
        message = conn.recv()
        if message is None:
            return
        event, request_id, deadline = message
        begun = time.monotonic()
        try:
            response, outcome, error = (
                handler(event, InvocationContext(config, request_id, deadline, stream)),
                "ok",
                None,
            )
        except Exception as exc:
            response, outcome, error = None, "error", f"{type(exc).__name__}: {exc}"
            print(
                json.dumps(
                    {
                        "timestamp": _now(),
                        "level": "ERROR",
                        "requestId": request_id,
                        "message": {
                            "errorType": type(exc).__name__,
                            "errorMessage": str(exc),
                            "stackTrace": traceback.format_exception(exc),
                        },
                    }
                )
            )
        duration = (time.monotonic() - begun) * 1000
        print(
            platform_report(
                request_id,
                duration,
                config["memory_mb"],
                "success" if outcome == "ok" else "error",
                init_ms if first else 0.0,
            )
        )
        first = False
        calls, written = counter.take()
        conn.send((outcome, response, error, calls, written))


class FunctionInstance:
    """One warm container; replaced by a cold one after a timeout or crash."""

    def __init__(self, config: FunctionConfig) -> None:
        self.config = config
        self.instance_id = uuid.uuid4().hex[:8]
        self.log_path = config.log_dir / config.name / f"{self.instance_id}.jsonl"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc: Any = None
        self._conn: Any = None
        self._init_ms = 0.0

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        parent, child = multiprocessing.Pipe()
        payload = {
            "name": self.config.name,
            "arn": self.config.arn,
            "handler": self.config.handler,
            "memory_mb": self.config.memory_mb,
            "environment": self.config.environment,
        }
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "loadtest.lambda_worker", str(child.fileno())],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self._conn = parent
        parent.send((payload, str(self.log_path)))
        if not parent.poll(60):
            self.kill()
            raise RuntimeError(f"{self.config.name}: instance did not initialise within 60 s; see {self.log_path}")
        _, self._init_ms = parent.recv()

    def invoke(self, event: dict[str, Any]) -> InvocationResult:
        cold = not self.alive
        started = time.time()
        if cold:
            self._start()
        request_id = str(uuid.uuid4())
        deadline = started + self.config.timeout_seconds
        result = InvocationResult(self.config.name, request_id, self.instance_id, cold, started, started, "ok")
        result.init_ms = self._init_ms if cold else 0.0
        self._conn.send((event, request_id, deadline))
        try:
            ready = self._conn.poll(max(0.0, deadline - time.time()))
            if not ready:
                result.outcome, result.error = (
                    "timeout",
                    f"Task timed out after {self.config.timeout_seconds:.2f} seconds",
                )
                self.kill()
                self._append_report(request_id, started, "timeout")
            else:
                outcome, response, error, calls, written = self._conn.recv()
                result.outcome, result.response, result.error = outcome, response, error
                result.api_calls, result.s3_bytes_written = calls, written
        except (EOFError, OSError):
            result.outcome, result.error = "crash", "instance exited during the invocation"
            self.kill()
        result.ended = time.time()
        return result

    def _append_report(self, request_id: str, started: float, status: str) -> None:
        with open(self.log_path, "a") as log:
            log.write(platform_report(request_id, (time.time() - started) * 1000, self.config.memory_mb, status) + "\n")

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()
            self._proc.wait(timeout=5)
        self._proc = None

    def close(self) -> None:
        if self.alive:
            try:
                self._conn.send(None)
                self._proc.wait(timeout=5)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                pass
        self.kill()
