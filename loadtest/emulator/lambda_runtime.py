"""A Lambda-like runtime: each function instance is its own OS process.

Instances overlap for real (separate interpreters, no shared state), can be killed when
they exceed the function timeout, and start cold again afterwards, as Lambda's do. Each
instance runs the built artifact (function archive and layer), never the development venv:
see :mod:`loadtest.emulator.lambda_bootstrap`. It writes what the handler prints (Powertools JSON
logs and EMF blobs) to its own log file, plus a ``platform.report`` line per invocation in
Lambda's JSON log format.

Environment variables: ``CIDB_LAMBDA_PYTHON``, the interpreter that runs the functions
(default: ``python3.12``, Lambda's runtime, when it is on PATH, else this interpreter).
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadtest.emulator import lambda_bootstrap
from loadtest.emulator.lambda_bootstrap import platform_report
from pipeline.spec import RUNTIME


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
    code: tuple[Path, Path]  # (task root, opt root) of the unpacked artifact
    faults: tuple[dict[str, Any], ...] = ()  # faults.injection.FaultRule dicts, installed in every instance
    fault_dir: Path | None = None  # where the instances claim and count injections (faults.injection.Budget)
    # Credentials for a new instance, given its id: an assumed-role session of the function's role.
    credentials: Callable[[str], dict[str, str]] | None = None
    # A latency profile (latency.delays.LatencyProfile.to_dict()): each instance waits a cold start and
    # delays its AWS calls, with draws seeded by ``latency_seed`` and the instance's id.
    latency: dict[str, Any] | None = None
    latency_seed: str = ""

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
    denied: dict[str, int] = field(default_factory=dict)  # service.Operation -> calls answered AccessDenied
    init_ms: float = 0.0
    init_injected_ms: float = 0.0  # of init_ms, the cold start the latency profile added
    init_error: dict[str, Any] | None = None
    delayed: dict[str, Any] = field(default_factory=dict)  # latency.delays.LatencyHook.take() of the invocation

    @property
    def duration_ms(self) -> float:
        return (self.ended - self.started) * 1000


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
        self._init_injected_ms = 0.0
        self._prewarmed: tuple[dict[str, Any] | None] | None = None  # (init error,) of an instance started early

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> dict[str, Any] | None:
        """Start a cold instance; Lambda's init-error payload if the handler could not load."""
        parent, child = multiprocessing.Pipe()
        payload = {
            "name": self.config.name,
            "arn": self.config.arn,
            "handler": self.config.handler,
            "memory_mb": self.config.memory_mb,
            "environment": {
                **self.config.environment,
                **(self.config.credentials(self.instance_id) if self.config.credentials else {}),
            },
            "faults": list(self.config.faults),
            "fault_dir": str(self.config.fault_dir) if self.config.fault_dir else None,
            "latency": self.config.latency,
            "latency_seed": f"{self.config.latency_seed}:{self.instance_id}",
        }
        task_root, opt_root = self.config.code
        self._proc = subprocess.Popen(
            [
                lambda_python(),
                "-I",
                "-S",
                lambda_bootstrap.__file__,
                str(child.fileno()),
                str(task_root),
                str(opt_root),
                str(Path(lambda_bootstrap.__file__).parent.parent),
            ],
            pass_fds=[child.fileno()],
            stdin=subprocess.DEVNULL,
        )
        child.close()
        self._conn = parent
        parent.send((payload, str(self.log_path)))
        if not parent.poll(60):
            self.kill()
            raise RuntimeError(f"{self.config.name}: instance did not initialise within 60 s; see {self.log_path}")
        try:
            status, detail, *injected = parent.recv()
        except EOFError:
            status, detail = "init_error", {"errorType": "Runtime.ExitError", "errorMessage": "exited during init"}
        if status == "init_error":
            self.kill()
            return detail
        self._init_ms, self._init_injected_ms = detail, injected[0]
        return None

    def prewarm(self) -> None:
        """Run the init phase now, off the clock; the next invocation still reports it as a cold start."""
        if not self.alive and self._prewarmed is None:
            self._prewarmed = (self._start(),)

    def invoke(self, event: dict[str, Any]) -> InvocationResult:
        cold = not self.alive or self._prewarmed is not None
        started = time.time()
        if self._prewarmed is not None:
            (init_error,), self._prewarmed = self._prewarmed, None
        else:
            init_error = self._start() if cold else None
        request_id = str(uuid.uuid4())
        deadline = started + self.config.timeout_seconds
        result = InvocationResult(self.config.name, request_id, self.instance_id, cold, started, started, "ok")
        if init_error is not None:
            result.outcome, result.init_error = "init_error", init_error
            result.error = f"{init_error['errorType']}: {init_error['errorMessage']}"
            self._append_report(request_id, started, "error")
            result.ended = time.time()
            return result
        result.init_ms = self._init_ms if cold else 0.0
        result.init_injected_ms = self._init_injected_ms if cold else 0.0
        self._conn.send((event, request_id, deadline))
        try:
            reply = self._await_reply(deadline)
            if reply is None:
                result.outcome, result.error = (
                    "timeout",
                    f"Task timed out after {self.config.timeout_seconds:.2f} seconds",
                )
                self.kill()
                self._append_report(request_id, started, "timeout")
            else:
                outcome, response, error, calls, written, denied, delayed = reply
                result.outcome, result.response, result.error = outcome, response, error
                result.api_calls, result.s3_bytes_written, result.denied = calls, written, denied
                result.delayed = delayed
        except (EOFError, OSError):
            result.outcome, result.error = "crash", "instance exited during the invocation"
            self.kill()
        result.ended = time.time()
        return result

    def _await_reply(self, deadline: float) -> tuple[Any, ...] | None:
        """The invocation's reply, or None at the deadline; thaws an instance that a fault froze."""
        while self._conn.poll(max(0.0, deadline - time.time())):
            message = self._conn.recv()
            if message[0] != "pause":
                return message
            threading.Timer(message[1], _resume, args=(self._proc,)).start()
        return None

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


def _resume(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)


@functools.cache
def lambda_python() -> str:
    """The interpreter for function instances: Lambda's Python version where this machine has it."""
    wanted = os.environ.get("CIDB_LAMBDA_PYTHON") or shutil.which(RUNTIME)
    if wanted:
        probe = subprocess.run([wanted, "-I", "-S", "-c", "pass"], capture_output=True, check=False)
        if probe.returncode == 0:
            return wanted
        if os.environ.get("CIDB_LAMBDA_PYTHON"):
            raise RuntimeError(f"CIDB_LAMBDA_PYTHON={wanted!r} does not run: {probe.stderr.decode().strip()}")
    return sys.executable


@functools.cache
def lambda_python_version() -> str:
    done = subprocess.run(
        [lambda_python(), "-I", "-S", "-c", "import platform; print(platform.python_version())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()
