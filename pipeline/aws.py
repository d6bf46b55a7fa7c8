"""boto3 clients shared by the handlers.

Retries use botocore's adaptive mode (token bucket + exponential backoff on throttling),
never sleep loops of our own. Clients are cached per process, as Lambda reuses warm
containers. ``AWS_ENDPOINT_URL`` (read by botocore itself) points them at an emulator.
"""

from __future__ import annotations

import functools
from collections import Counter
from typing import Any

import boto3
import botocore
from botocore.config import Config

RETRY_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 10},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=20,
)

_sdk_retries = 0
# (AWS service, operation, error code) -> retried attempts, so throttling (IAM Throttling, S3 SlowDown) has a name.
_retry_errors: Counter[tuple[str, str, str]] = Counter()
_ATTEMPT_ERRORS = "cidb_attempt_errors"  # key in botocore's per-call context: the codes of its failed attempts


def _note_failed_attempt(
    response: Any = None, caught_exception: Any = None, request_dict: dict[str, Any] | None = None, **_: Any
) -> None:
    """Every attempt botocore judges for a retry: keep its error code in the call's context.

    Returns None, so botocore's own retry handler alone decides. Whether the attempt was retried is known only
    when the call ends (:func:`_count_retries`): a conditional write's 412 or a 404 is final, not retried.
    """
    code = type(caught_exception).__name__ if caught_exception is not None else None
    if response is not None:
        http, parsed = response
        if http.status_code >= 300:
            code = str(parsed.get("Error", {}).get("Code") or http.status_code)
    if code and request_dict is not None:
        request_dict["context"].setdefault(_ATTEMPT_ERRORS, []).append(code)


def _count_retries(
    service: str,
    http_response: Any = None,
    parsed: dict[str, Any] | None = None,
    model: Any = None,
    context: dict[str, Any] | None = None,
    **_: Any,
) -> None:
    """At the end of a call: its retries, and the codes of the attempts that were retried (all but a failed last)."""
    global _sdk_retries
    if parsed:
        _sdk_retries += int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0))
    codes = (context or {}).get(_ATTEMPT_ERRORS, [])
    last_failed = http_response is None or http_response.status_code >= 300
    for code in codes[:-1] if last_failed else codes:
        _retry_errors[(service, getattr(model, "name", "?"), code)] += 1


@functools.cache
def client(service: str) -> Any:
    c = boto3.client(service, config=RETRY_CONFIG)
    c.meta.events.register("needs-retry", _note_failed_attempt)
    c.meta.events.register("after-call", functools.partial(_count_retries, service))
    c.meta.events.register("after-call-error", functools.partial(_count_retries, service))
    return c


def take_sdk_retries() -> int:
    """Retries botocore made since the last call; reported as the SdkRetries metric."""
    global _sdk_retries
    value, _sdk_retries = _sdk_retries, 0
    return value


def take_retry_errors() -> dict[tuple[str, str, str], int]:
    """Retried attempts since the last call, by (AWS service, operation, error code): why the SDK retried."""
    value = dict(_retry_errors)
    _retry_errors.clear()
    return value


def error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", type(exc).__name__))


_CONDITIONAL_PARAMETERS = {"PutObject": ("IfMatch", "IfNoneMatch"), "DeleteObject": ("IfMatch",)}


@functools.cache
def require_conditional_writes() -> None:
    """Fail at cold start if the runtime's botocore predates S3 conditional writes and deletes.

    Fencing depends on them; an older SDK would reject the parameters at the first write, or
    worse, a hand-rolled fallback would silently drop them.
    """
    model = client("s3").meta.service_model
    missing = [
        f"{operation}.{name}"
        for operation, names in _CONDITIONAL_PARAMETERS.items()
        for name in names
        if name not in model.operation_model(operation).input_shape.members
    ]
    if missing:
        raise RuntimeError(
            f"botocore {botocore.__version__} lacks S3 conditional request parameters {missing}; "
            "deploy the reporter with boto3 1.36 or newer (bundle it in the function archive or a layer)"
        )
