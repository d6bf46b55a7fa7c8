"""Runtime configuration of the Lambda handlers, read from environment variables.

The spec writes every variable into each function's environment (names in
:mod:`pipeline.env`); an unset one falls back to the default of the spec's field, so each
default has one home, in :mod:`pipeline.spec`.

Environment variables
---------------------
CIDB_BUCKET             output bucket (required by the reporter, optional for the collector)
CIDB_TOPIC_ARN          SNS topic the collector publishes to (required by the collector)
CIDB_RUN_TABLE          DynamoDB table holding run records (required by both)
CIDB_OUTPUT_MODE        ``fenced`` (default) or ``seed-overwrite`` (the unsafe seed behaviour)
MAX_ROWS_PER_FILE       rows per CSV part (``OutputSpec.rows_per_file``)
PUBLISH_MAX_ATTEMPTS    PublishBatch rounds for entries SNS returns as Failed (``DeploymentSpec.publish_max_attempts``)
LOCK_TIMEOUT_SECONDS    lock lease (``LockSpec.timeout_seconds``)
LOCK_MAX_ATTEMPTS       lock acquisition attempts (``LockSpec.max_attempts``)
LOCK_BASE_BACKOFF_SECONDS  base of the exponential backoff (``LockSpec.base_backoff_seconds``)
LOCK_JITTER_FACTOR      random jitter added to each backoff, as a fraction (``LockSpec.jitter_factor``)
LOCK_MAX_BACKOFF_SECONDS  cap on one backoff (``LockSpec.max_backoff_seconds``)
RUN_GRACE_SECONDS       verifier: how long after its start a run must be complete (``AlarmSpec.run_grace_seconds``)
RETRY_BASE_SECONDS      reporter: a failed message's first visibility, doubled per receive (``QueueSpec``)
RETRY_MAX_SECONDS       reporter: cap on that visibility (``QueueSpec.retry_max_seconds``)
AWS_ENDPOINT_URL        optional; points every client at an emulator
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pipeline.env import (
    ENV_BUCKET,
    ENV_LOCK_BASE_BACKOFF,
    ENV_LOCK_JITTER,
    ENV_LOCK_MAX_ATTEMPTS,
    ENV_LOCK_MAX_BACKOFF,
    ENV_LOCK_TIMEOUT,
    ENV_MAX_ROWS,
    ENV_OUTPUT_MODE,
    ENV_PUBLISH_MAX_ATTEMPTS,
    ENV_RETRY_BASE,
    ENV_RETRY_MAX,
    ENV_RUN_GRACE,
    ENV_RUN_TABLE,
    ENV_TOPIC_ARN,
    OUTPUT_MODE_FENCED,
    OUTPUT_MODES,
)
from pipeline.spec import AlarmSpec, DeploymentSpec, LockSpec, OutputSpec, QueueSpec

_TOPIC_ARN = re.compile(r"^arn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w-]{1,256}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_TABLE = re.compile(r"^[A-Za-z0-9_.-]{3,255}$")


class ConfigError(ValueError):
    """Raised when the environment does not describe a usable configuration."""


@dataclass(frozen=True)
class LockSettings:
    timeout_seconds: float = LockSpec.timeout_seconds
    max_attempts: int = LockSpec.max_attempts
    base_backoff_seconds: float = LockSpec.base_backoff_seconds
    jitter_factor: float = LockSpec.jitter_factor
    max_backoff_seconds: float = LockSpec.max_backoff_seconds


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
    retry_base_seconds: float = QueueSpec.retry_base_seconds
    retry_max_seconds: float = QueueSpec.retry_max_seconds


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
        timeout_seconds=_number(env, ENV_LOCK_TIMEOUT, LockSpec.timeout_seconds, float, 0.01),
        max_attempts=int(_number(env, ENV_LOCK_MAX_ATTEMPTS, LockSpec.max_attempts, int, 1)),
        base_backoff_seconds=_number(env, ENV_LOCK_BASE_BACKOFF, LockSpec.base_backoff_seconds, float, 0.0),
        jitter_factor=_number(env, ENV_LOCK_JITTER, LockSpec.jitter_factor, float, 0.0),
        max_backoff_seconds=_number(env, ENV_LOCK_MAX_BACKOFF, LockSpec.max_backoff_seconds, float, 0.0),
    )
    return Settings(
        bucket=bucket,
        topic_arn=topic,
        run_table=table,
        output_mode=mode,
        max_rows_per_file=int(_number(env, ENV_MAX_ROWS, OutputSpec.rows_per_file, int, 1)),
        publish_max_attempts=int(_number(env, ENV_PUBLISH_MAX_ATTEMPTS, DeploymentSpec.publish_max_attempts, int, 1)),
        run_grace_seconds=_number(env, ENV_RUN_GRACE, AlarmSpec.run_grace_seconds, float, 0.0),
        lock=lock,
        retry_base_seconds=_number(env, ENV_RETRY_BASE, QueueSpec.retry_base_seconds, float, 0.0),
        retry_max_seconds=_number(env, ENV_RETRY_MAX, QueueSpec.retry_max_seconds, float, 0.0),
    )
