"""boto3 clients shared by the handlers.

Retries use botocore's adaptive mode (token bucket + exponential backoff on throttling),
never sleep loops of our own. Clients are cached per process, as Lambda reuses warm
containers. ``AWS_ENDPOINT_URL`` (read by botocore itself) points them at an emulator.
"""

from __future__ import annotations

import functools
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


def _count_retries(http_response: Any = None, parsed: dict[str, Any] | None = None, **_: Any) -> None:
    global _sdk_retries
    if parsed:
        _sdk_retries += int(parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0))


@functools.cache
def client(service: str) -> Any:
    c = boto3.client(service, config=RETRY_CONFIG)
    c.meta.events.register("after-call", _count_retries)
    return c


def take_sdk_retries() -> int:
    """Retries botocore made since the last call; reported as the SdkRetries metric."""
    global _sdk_retries
    value, _sdk_retries = _sdk_retries, 0
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
