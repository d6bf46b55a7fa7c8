"""Inject faults between a handler and AWS, with botocore event hooks; the pipeline code is untouched.

A :class:`FaultRule` names an API call and what happens to it:

- ``error``: botocore gets an error response instead of sending the request (``before-call``)
  and raises the ``ClientError`` that the endpoint would have caused. botocore does not retry
  it, so it stands for an error that outlasted the SDK's retries.
- ``http``: the endpoint "answers" with an HTTP error (``before-send``), inside botocore's retry
  loop, so the SDK's retry mode retries it as it would a real 503 or 500.
- ``kill``: the call succeeds, then the process is killed (SIGKILL), as a crashed instance is.
- ``pause``: the call succeeds, then the process stops itself (SIGSTOP); the runtime that owns
  it resumes it (SIGCONT) after ``seconds``, as a frozen Lambda sandbox is thawed.
- ``hang``: the call succeeds, then the process sleeps ``seconds``: past its timeout, if the
  fault makes ``seconds`` longer than that.
- ``fail-entries``: every ``every``-th entry of a batch call (SNS ``PublishBatch``) is taken out
  of the request and returned in ``Failed``, as a partial failure.
- ``corrupt-entries``: every ``every``-th entry of a batch call (SNS ``PublishBatch``) is sent with
  a wrongly typed field (``total``), as a message damaged on its way: the record's key fields stay
  intact, so the reporter must refuse it and forensics must still find it in the DLQ.
- ``skew-clock`` (no operation): the instance's wall clock runs ``seconds`` off.

``limit`` caps the injections of a rule across every process of a run: each injection claims
a token file in a shared directory (``O_CREAT | O_EXCL``), so a rule such as "kill one reporter
while it holds the lock" fires once, not once per new instance. The token files are also the
count of injections that the report shows.

This module imports only the standard library at load time, because a function instance loads
it from its file (see :mod:`loadtest.emulator.lambda_bootstrap`); botocore comes from the
artifact's layer when a rule fires.
"""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ACTIONS = ("error", "http", "kill", "pause", "hang", "fail-entries", "corrupt-entries", "skew-clock")
AFTER_CALL_ACTIONS = ("kill", "pause", "hang")
CORRUPTED_VALUE = "damaged in transit"


@dataclass(frozen=True)
class FaultRule:
    operation: str = ""  # "service.Operation", e.g. "s3.DeleteObject"
    code: str = ""  # the error code the caller sees, e.g. "SlowDown"
    status: int = 0  # its HTTP status, e.g. 503
    key_suffix: str = ""  # only calls whose Key ends with this
    when_param: str = ""  # only calls that carry this parameter (e.g. IfMatch: conditional requests)
    every: int = 1  # act on every Nth matching call (per process), or every Nth entry
    limit: int = 0  # act at most this many times in the whole run (0: no limit)
    action: str = "error"  # one of ACTIONS
    key_contains: str = ""  # only calls whose Key contains this
    seconds: float = 0.0  # pause, hang or clock-skew length
    attempt: int = 0  # ``http`` only: act on this attempt of a call (1: the first try; 0: any attempt)
    fault: str = "api"  # the fault this rule belongs to, for counting

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def rules_from_dicts(items: list[dict[str, Any]]) -> list[FaultRule]:
    return [FaultRule(**item) for item in items]


class Budget:
    """Injections claimed across processes, one token file each, in a directory the run owns."""

    def __init__(self, directory: str | os.PathLike[str] | None) -> None:
        self.directory = Path(directory) if directory else None
        self._local: dict[str, int] = {}

    def claim(self, rule_id: str, limit: int) -> bool:
        if self.directory is None:
            taken = self._local.get(rule_id, 0)
            if limit and taken >= limit:
                return False
            self._local[rule_id] = taken + 1
            return True
        self.directory.mkdir(parents=True, exist_ok=True)
        names = range(limit) if limit else [uuid.uuid4().hex]
        for name in names:
            try:
                os.close(os.open(self.directory / f"{rule_id}.{name}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                return True
            except FileExistsError:
                continue
        return False


def injected_counts(directory: str | os.PathLike[str]) -> dict[str, int]:
    """Injections per fault, from the token files of a run."""
    counts: dict[str, int] = {}
    path = Path(directory)
    for token in path.iterdir() if path.is_dir() else ():
        fault = token.name.split("#", 1)[0]
        counts[fault] = counts.get(fault, 0) + 1
    return counts


_PARAMS = "cidb_api_params"
_HELD_BACK = "cidb_held_back_entries"


def _remember_params(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
    """``before-call`` sees the serialized request; keep the API parameters for the rules."""
    context[_PARAMS] = dict(params)


class _Rule:
    def __init__(self, rule: FaultRule, rule_id: str, budget: Budget, notify: Callable[[Any], None]) -> None:
        self.rule, self.rule_id, self.budget, self.notify = rule, rule_id, budget, notify
        self.matched = 0
        self.injected = 0
        self._registered: list[tuple[Any, str, Callable[..., Any]]] = []

    def register(self, events: Any, event: str, hook: Callable[..., Any], *, last: bool = False) -> None:
        (events.register_last if last else events.register)(event, hook)
        self._registered.append((events, event, hook))

    def remove(self) -> None:
        """Take the rule off the emitters it was installed on."""
        for events, event, hook in self._registered:
            events.unregister(event, hook)
        self._registered.clear()

    def _matches(self, operation: str, params: dict[str, Any]) -> bool:
        rule = self.rule
        key = str(params.get("Key", ""))
        return (
            operation == rule.operation
            and (not rule.key_suffix or key.endswith(rule.key_suffix))
            and (not rule.key_contains or rule.key_contains in key)
            and (not rule.when_param or rule.when_param in params)
        )

    def _fires(self, operation: str, params: dict[str, Any]) -> bool:
        if not self._matches(operation, params):
            return False
        self.matched += 1
        fires = self.matched % self.rule.every == 0 and self.budget.claim(self.rule_id, self.rule.limit)
        self.injected += fires
        return fires

    def before_call(self, model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> Any:
        if self._fires(_operation(model), (context or {}).get(_PARAMS, {})):
            return _error_response(self.rule)
        return None

    def before_send(self, request: Any = None, **_: Any) -> Any:
        context = getattr(request, "context", {}) or {}
        operation = f"{context.get('cidb_service', '')}.{context.get('cidb_operation', '')}"
        attempt = context.get("retries", {}).get("attempt", 1)
        if self.rule.attempt and attempt != self.rule.attempt:
            return None
        if self._fires(operation, context.get(_PARAMS, {})):
            return _http_error(self.rule)
        return None

    def after_call(self, model: Any = None, context: dict[str, Any] | None = None, **_: Any) -> None:
        if not self._fires(_operation(model), (context or {}).get(_PARAMS, {})):
            return
        if self.rule.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif self.rule.action == "pause":
            self.notify(("pause", self.rule.seconds))
            os.kill(os.getpid(), signal.SIGSTOP)
        elif self.rule.action == "hang":
            time.sleep(self.rule.seconds)

    def hold_back(self, params: dict[str, Any], model: Any = None, context: dict[str, Any] | None = None, **_: Any):
        if _operation(model) != self.rule.operation or context is None:
            return
        entries = params.get("PublishBatchRequestEntries", [])
        kept, held = [], []
        for entry in entries:
            self.matched += 1
            due = self.matched % self.rule.every == 0 and len(held) + 1 < len(entries)  # never the whole batch
            if due and self.budget.claim(self.rule_id, self.rule.limit):
                held.append(entry)
                self.injected += 1
            else:
                kept.append(entry)
        if held:
            params["PublishBatchRequestEntries"] = kept
            context[_HELD_BACK] = held

    def corrupt(self, params: dict[str, Any], model: Any = None, **_: Any) -> None:
        if _operation(model) != self.rule.operation:
            return
        for entry in params.get("PublishBatchRequestEntries", []):
            self.matched += 1
            if self.matched % self.rule.every == 0 and self.budget.claim(self.rule_id, self.rule.limit):
                message = json.loads(entry["Message"])
                message["total"] = CORRUPTED_VALUE
                entry["Message"] = json.dumps(message)
                self.injected += 1

    def report_held_back(self, parsed: dict[str, Any], context: dict[str, Any] | None = None, **_: Any) -> None:
        held = (context or {}).pop(_HELD_BACK, [])
        message = f"injected by the load test ({self.rule.operation} entry -> {self.rule.code})"
        failed = [{"Id": e["Id"], "Code": self.rule.code, "Message": message, "SenderFault": False} for e in held]
        if failed:
            parsed.setdefault("Failed", []).extend(failed)


def _operation(model: Any) -> str:
    return f"{model.service_model.service_name}.{model.name}" if model is not None else ""


def _tag_operation(model: Any, context: dict[str, Any], **_: Any) -> None:
    """``before-send`` sees only the request: carry the operation's name there in its context."""
    context["cidb_service"], context["cidb_operation"] = model.service_model.service_name, model.name


def _error_response(rule: FaultRule) -> tuple[Any, dict[str, Any]]:
    from botocore.awsrequest import AWSResponse

    message = f"injected by the load test ({rule.operation} -> {rule.status} {rule.code})"
    # apicalls.INJECTED_FAULT_HOST: a denial answered from here is not counted as IAM's.
    http = AWSResponse("https://fault.invalid/", rule.status, {}, None)
    parsed = {
        "Error": {"Code": rule.code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": rule.status, "HTTPHeaders": {}, "RetryAttempts": 0},
    }
    return http, parsed


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_: Any) -> Any:
        yield self.data


def _http_error(rule: FaultRule) -> Any:
    from botocore.awsrequest import AWSResponse

    body = (
        f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{rule.code}</Code>"
        f"<Message>injected by the load test ({rule.operation} -> {rule.status})</Message></Error>"
    ).encode()
    headers = {"Content-Type": "application/xml", "Content-Length": str(len(body))}
    return AWSResponse("https://fault.invalid/", rule.status, headers, _Body(body))


def skew_clock(seconds: float) -> None:
    """Run this process's wall clock ``seconds`` off: ``time.time`` and ``datetime.now``/``utcnow``.

    Call it before the handler's modules are imported, so that their ``from datetime import
    datetime`` picks up the skewed class. Monotonic clocks are untouched, as they are on a host
    whose wall clock is wrong.
    """
    import datetime as dt

    real_time, real_time_ns, offset = time.time, time.time_ns, dt.timedelta(seconds=seconds)
    time.time = lambda: real_time() + seconds
    time.time_ns = lambda: real_time_ns() + int(seconds * 1e9)
    real_datetime = dt.datetime

    class SkewedDateTime(real_datetime):
        @classmethod
        def now(cls, tz: Any = None) -> Any:
            return real_datetime.now(tz) + offset

        @classmethod
        def utcnow(cls) -> Any:
            return real_datetime.now(dt.UTC).replace(tzinfo=None) + offset

    dt.datetime = SkewedDateTime


def apply_process_rules(rules: list[FaultRule], budget: Budget) -> list[str]:
    """Faults of the process itself (a skewed clock), applied at start; the ones that took effect."""
    applied = []
    for index, rule in enumerate(rules):
        if rule.action == "skew-clock" and budget.claim(_rule_id(rule, index), rule.limit):
            skew_clock(rule.seconds)
            applied.append(f"{rule.fault}: clock {rule.seconds:+.0f} s")
    return applied


def _rule_id(rule: FaultRule, index: int) -> str:
    return f"{rule.fault}#{index}"


def install_rules(
    events: Any,
    rules: list[FaultRule],
    *,
    budget: Budget | None = None,
    notify: Callable[[Any], None] | None = None,
) -> list[_Rule]:
    """Register each API rule on a botocore event emitter (``session.events`` or ``client.meta.events``)."""
    budget = budget or Budget(None)
    installed = []
    events.register("before-parameter-build", _remember_params)
    events.register("before-call", _tag_operation)
    for index, rule in enumerate(rules):
        if rule.action not in ACTIONS:
            raise ValueError(f"fault {rule.fault}: action {rule.action!r} is not one of {ACTIONS}")
        if rule.action == "skew-clock":
            continue
        hook = _Rule(rule, _rule_id(rule, index), budget, notify or (lambda _: None))
        installed.append(hook)
        service, _, operation = rule.operation.partition(".")
        if rule.action == "error":
            hook.register(events, "before-call", hook.before_call, last=True)  # after the API-call counter
        elif rule.action == "http":
            hook.register(events, f"before-send.{service}", hook.before_send, last=True)
        elif rule.action == "fail-entries":
            hook.register(events, f"before-parameter-build.{service}.{operation}", hook.hold_back)
            hook.register(events, f"after-call.{service}.{operation}", hook.report_held_back)
        elif rule.action == "corrupt-entries":
            hook.register(events, f"before-parameter-build.{service}.{operation}", hook.corrupt)
        else:
            hook.register(events, f"after-call.{service}.{operation}", hook.after_call)
    return installed
