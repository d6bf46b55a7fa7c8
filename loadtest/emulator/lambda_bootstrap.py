"""The entry point of one function instance process, as Lambda's own runtime bootstrap is.

It is started as ``python -I -S lambda_bootstrap.py FD TASK_ROOT OPT_ROOT LOADTEST_DIR``, so
``sys.path`` holds the standard library only, and then exactly what Lambda puts there: the
function archive (``/var/task``) and the layer (``/opt/python``). Nothing comes from the
development venv, so a handler that needs something the artifact lacks, or a library version
that differs, fails here as it would on Lambda. For that reason this module imports only the
standard library; the API-call counter, the fault rules and the latency hook
(``loadtest/emulator/apicalls.py``, ``loadtest/faults/injection.py``, ``loadtest/latency/delays.py``,
all standard-library only) are loaded from their files.

An import error is reported the way Lambda reports an init error: an ERROR log line in
Lambda's JSON format and a ``platform.initReport`` with status ``error``, then the process
exits and the invocation fails.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import resource
import sys
import time
import traceback
import uuid
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from typing import Any

# The real wall clock, kept before a clock-skew fault replaces ``time.time``: Lambda's deadline is not
# the sandbox's clock.
REAL_TIME = time.time


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
        return max(0, int((self._deadline - REAL_TIME()) * 1000))


def now() -> str:
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
    return json.dumps({"time": now(), "type": "platform.report", "record": record})


def error_payload(exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": type(exc).__name__,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(exc),
    }


def _log_error(payload: dict[str, Any], request_id: str) -> None:
    """As Lambda's Python runtime (awslambdaric 4) logs an uncaught error in JSON format: flat errorType."""
    print(json.dumps({"timestamp": now(), "level": "ERROR", **payload, "requestId": request_id}))


def _load_harness_module(loadtest_dir: str, relative_path: str) -> Any:
    """A harness module by file path, so that the harness's own package never joins sys.path."""
    name = os.path.splitext(os.path.basename(relative_path))[0]
    spec = importlib.util.spec_from_file_location(f"_cidb_{name}", os.path.join(loadtest_dir, relative_path))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def _init(config: dict[str, Any], loadtest_dir: str, conn: Connection) -> tuple[Any, Any, Any, float]:
    """Import boto3 and the handler from the artifact, as Lambda's init phase does.

    Under a latency profile, the instance also waits a sampled cold start (the milliseconds it waited
    are returned) and every AWS call it makes afterwards is delayed by the returned hook."""
    faults = _load_harness_module(loadtest_dir, "faults/injection.py") if config.get("faults") else None
    if faults is not None:
        rules, budget = faults.rules_from_dicts(config["faults"]), faults.Budget(config.get("fault_dir"))
        for applied in faults.apply_process_rules(rules, budget):  # before any module reads the clock
            print(json.dumps({"time": now(), "type": "loadtest.fault", "record": applied}))
    import boto3

    boto3.setup_default_session()
    counter = _load_harness_module(loadtest_dir, "emulator/apicalls.py").ApiCallCounter().install(boto3.DEFAULT_SESSION)
    if faults is not None:
        faults.install_rules(boto3.DEFAULT_SESSION.events, rules, budget=budget, notify=conn.send)
    latency, injected_ms = None, 0.0
    if config.get("latency"):
        delays = _load_harness_module(loadtest_dir, "latency/delays.py")
        sampler = delays.Sampler(delays.LatencyProfile.from_dict(config["latency"]), config["latency_seed"])
        latency = delays.LatencyHook(sampler).install(boto3.DEFAULT_SESSION.events)
        injected_ms = latency.cold_start()
    module_name, func_name = config["handler"].rsplit(".", 1)
    handler = getattr(importlib.import_module(module_name), func_name)
    return handler, counter, latency, injected_ms


def serve(conn: Connection, task_root: str, opt_root: str, loadtest_dir: str) -> None:
    """Init once, then serve invocations until the parent sends None."""
    sys.path[:0] = [task_root, os.path.join(opt_root, "python")]
    config, log_path = conn.recv()
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    os.environ.update(config["environment"])
    os.environ["LAMBDA_TASK_ROOT"] = task_root
    started = time.monotonic()
    try:
        handler, counter, latency, injected_ms = _init(config, loadtest_dir, conn)
    except Exception as exc:
        payload = error_payload(exc)
        _log_error(payload, "")
        init_ms = (time.monotonic() - started) * 1000
        record = {
            "phase": "init",
            "status": "error",
            "errorType": payload["errorType"],
            "metrics": {"durationMs": init_ms},
        }
        print(json.dumps({"time": now(), "type": "platform.initReport", "record": record}))
        conn.send(("init_error", payload))
        return
    init_ms = (time.monotonic() - started) * 1000
    conn.send(("ready", init_ms, injected_ms))
    stream = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    first = True
    while True:
        message = conn.recv()
        if message is None:
            return
        event, request_id, deadline = message
        begun = time.monotonic()
        try:
            response = handler(event, InvocationContext(config, request_id, deadline, stream))
            outcome, error = "ok", None
        except Exception as exc:
            response, outcome, error = None, "error", f"{type(exc).__name__}: {exc}"
            _log_error(error_payload(exc), request_id)
        duration = (time.monotonic() - begun) * 1000
        status = "success" if outcome == "ok" else "error"
        print(platform_report(request_id, duration, config["memory_mb"], status, init_ms if first else 0.0))
        first = False
        calls, written, denied = counter.take()
        delayed = latency.take() if latency is not None else {}
        conn.send((outcome, response, error, calls, written, denied, delayed))


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4])
