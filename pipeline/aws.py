"""boto3 clients shared by the handlers.

Retries use botocore's adaptive mode (token bucket + exponential backoff on throttling),
never sleep loops of our own. Clients are cached per process, as Lambda reuses warm
containers. ``AWS_ENDPOINT_URL`` (read by botocore itself) points them at an emulator.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
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
