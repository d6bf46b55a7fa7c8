"""Runtime configuration of the Lambda handlers, read from environment variables.

The variable names are defined here once: the spec uses them to build each
function's environment, so infrastructure and runtime cannot drift apart.

Environment variables
---------------------
CIDB_BUCKET             output bucket (required by the reporter, optional for the collector)
CIDB_TOPIC_ARN          SNS topic the collector publishes to (required by the collector)
CIDB_RUN_TABLE          DynamoDB table holding run records (required by both)
CIDB_OUTPUT_MODE        ``fenced`` (default) or ``seed-overwrite`` (the unsafe seed behaviour)
MAX_ROWS_PER_FILE       rows per CSV part (default 500)
PUBLISH_MAX_ATTEMPTS    PublishBatch rounds for entries SNS returns as Failed (default 8)
LOCK_TIMEOUT_SECONDS    lock lease (default 60)
LOCK_MAX_ATTEMPTS       lock acquisition attempts (default 5)
LOCK_BASE_BACKOFF_SECONDS  base of the exponential backoff (default 2.0)
LOCK_JITTER_FACTOR      random jitter added to each backoff, as a fraction (default 1.0)
LOCK_MAX_BACKOFF_SECONDS  cap on one backoff (default 30.0)
RUN_GRACE_SECONDS       verifier: how long after its start a run must be complete (default 900)
AWS_ENDPOINT_URL        optional; points every client at an emulator
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

ENV_BUCKET = "CIDB_BUCKET"
ENV_TOPIC_ARN = "CIDB_TOPIC_ARN"
ENV_RUN_TABLE = "CIDB_RUN_TABLE"
ENV_OUTPUT_MODE = "CIDB_OUTPUT_MODE"
ENV_MAX_ROWS = "MAX_ROWS_PER_FILE"
ENV_PUBLISH_MAX_ATTEMPTS = "PUBLISH_MAX_ATTEMPTS"
ENV_LOCK_TIMEOUT = "LOCK_TIMEOUT_SECONDS"
ENV_LOCK_MAX_ATTEMPTS = "LOCK_MAX_ATTEMPTS"
ENV_LOCK_BASE_BACKOFF = "LOCK_BASE_BACKOFF_SECONDS"
ENV_LOCK_JITTER = "LOCK_JITTER_FACTOR"
ENV_LOCK_MAX_BACKOFF = "LOCK_MAX_BACKOFF_SECONDS"
ENV_RUN_GRACE = "RUN_GRACE_SECONDS"

OUTPUT_MODE_FENCED = "fenced"
OUTPUT_MODE_SEED = "seed-overwrite"
OUTPUT_MODES = (OUTPUT_MODE_FENCED, OUTPUT_MODE_SEED)

_TOPIC_ARN = re.compile(r"^arn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class ConfigError(ValueError):
    """Raised when the environment does not describe a usable configuration."""


@dataclass(frozen=True)
class LockSettings:
    timeout_seconds: float = 60.0
    max_attempts: int = 5
    base_backoff_seconds: float = 2.0
    jitter_factor: float = 1.0
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True)
class Settings:
    bucket: str | None
    topic_arn: str | None
    run_table: str
    output_mode: str
    max_rows_per_file: int
    publish_max_attempts: int
    run_grace_seconds: float
    lock: LockSettings


def _number(env: Mapping[str, str], name: str, default: float, kind: type, minimum: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return kind(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(
            f"environment variable {name}={raw!r} is not a valid {kind.__name__}; "
            f"set it to a number >= {minimum} or unset it to use {default}"
        ) from None
    if not math.isfinite(value) or value < minimum:
        raise ConfigError(f"environment variable {name}={raw!r} must be a finite number >= {minimum}")
    return value


def _required(env: Mapping[str, str], name: str, pattern: re.Pattern[str], what: str) -> str:
    value = env.get(name, "")
    if not value:
        raise ConfigError(f"environment variable {name} is not set; it must hold the {what}")
    if not pattern.match(value):
        raise ConfigError(f"environment variable {name}={value!r} is not a valid {what}")
    return value


def load_settings(env: Mapping[str, str] | None = None, *, need_bucket: bool, need_topic: bool) -> Settings:
    """Validate the environment once, at cold start, so a bad deploy fails loudly."""
    env = os.environ if env is None else env
    bucket = (
        _required(env, ENV_BUCKET, _BUCKET, "output S3 bucket name") if need_bucket else env.get(ENV_BUCKET) or None
    )
    topic = _required(env, ENV_TOPIC_ARN, _TOPIC_ARN, "SNS topic ARN") if need_topic else None
    table = _required(env, ENV_RUN_TABLE, _TABLE, "DynamoDB run table name")
    mode = env.get(ENV_OUTPUT_MODE) or OUTPUT_MODE_FENCED
    if mode not in OUTPUT_MODES:
        raise ConfigError(f"environment variable {ENV_OUTPUT_MODE}={mode!r} must be one of {OUTPUT_MODES}")
    lock = LockSettings(
        timeout_seconds=_number(env, ENV_LOCK_TIMEOUT, 60.0, float, 0.01),
        max_attempts=int(_number(env, ENV_LOCK_MAX_ATTEMPTS, 5, int, 1)),
        base_backoff_seconds=_number(env, ENV_LOCK_BASE_BACKOFF, 2.0, float, 0.0),
        jitter_factor=_number(env, ENV_LOCK_JITTER, 1.0, float, 0.0),
        max_backoff_seconds=_number(env, ENV_LOCK_MAX_BACKOFF, 30.0, float, 0.0),
    )
    return Settings(
        bucket=bucket,
        topic_arn=topic,
        run_table=table,
        output_mode=mode,
        max_rows_per_file=int(_number(env, ENV_MAX_ROWS, 500, int, 1)),
        publish_max_attempts=int(_number(env, ENV_PUBLISH_MAX_ATTEMPTS, 8, int, 1)),
        run_grace_seconds=_number(env, ENV_RUN_GRACE, 900.0, float, 0.0),
        lock=lock,
    )
