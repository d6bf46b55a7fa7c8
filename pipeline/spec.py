"""One typed description of a CIDB deployment.

The Pulumi program, the embedded emulator and the monitoring all read their numbers
from a :class:`DeploymentSpec`, so a setting exists in exactly one place. The AWS rules
that relate these numbers live here too, in :meth:`DeploymentSpec.problems`.

Example::

    >>> from pipeline.spec import build_spec
    >>> spec = build_spec("tuned", environment="dev")
    >>> spec.queue.batch_size, spec.queue.visibility_timeout_seconds
    (25, 5430)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipeline import env as env_names

PROFILES = ("tuned", "seed")
DEFAULT_PROFILE = "tuned"
RUNTIME = "python3.12"
ARCHITECTURE = "x86_64"
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
SNS_MESSAGE_LIMIT_BYTES = 256 * 1024
SNS_BATCH_ENTRIES = 10


def min_visibility_seconds(reporter_timeout_seconds: int, batching_window_seconds: int) -> int:
    """AWS's rule for an SQS event source: visibility >= 6 x function timeout + batching window."""
    return 6 * reporter_timeout_seconds + batching_window_seconds


class SpecError(ValueError):
    """A deployment spec that breaks an AWS rule; the message lists every problem."""


@dataclass(frozen=True)
class FunctionSpec:
    name: str
    handler: str
    timeout_seconds: int
    memory_mb: int

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class QueueSpec:
    batch_size: int
    batching_window_seconds: int
    max_concurrency: int | None
    visibility_timeout_seconds: int
    max_receive_count: int
    retention_seconds: int = 4 * 24 * 3600
    dlq_retention_seconds: int = DLQ_RETENTION_SECONDS
    # A message the reporter fails comes back after base * 2^(receives-1) seconds, capped, instead
    # of after the whole visibility timeout (see pipeline.reporter._return_later).
    # 20, 40, 80, 160 s: with maxReceiveCount 5, about 5 minutes of failures before the DLQ, enough
    # to ride out an S3 throttling episode, and far short of the 90-minute visibility timeout.
    retry_base_seconds: int = 20
    retry_max_seconds: int = 300
    # Without ReportBatchItemFailures Lambda ignores the reporter's batchItemFailures and deletes the
    # whole batch when the invocation succeeds: a failed record would be lost. The stack and the
    # emulator's mapping both read this one value.
    function_response_types: tuple[str, ...] = ("ReportBatchItemFailures",)


@dataclass(frozen=True)
class LockSpec:
    enabled: bool = True
    timeout_seconds: int = 60
    max_attempts: int = 5
    base_backoff_seconds: float = 2.0
    jitter_factor: float = 1.0
    max_backoff_seconds: float = 30.0


@dataclass(frozen=True)
class OutputSpec:
    rows_per_file: int = 500
    mode: str = env_names.OUTPUT_MODE_FENCED


@dataclass(frozen=True)
class AlarmSpec:
    """Thresholds the monitoring derives its alarms from."""

    # None: derived by the monitoring as batching window + reporter timeout + a margin, the longest
    # a healthy batch keeps a message in flight (monitoring.thresholds).
    oldest_message_age_seconds: int | None = None
    backlog_messages: int = 1000
    dlq_messages: int = 1
    duration_fraction_of_timeout: float = 0.8
    concurrency_fraction_of_max: float = 0.9
    run_grace_seconds: int = 900
    # None: derived by the monitoring from the schedule (its longest gap between runs plus slack, in
    # hours; monitoring.schedule). Set it for schedules it cannot derive, or to page sooner or later.
    heartbeat_hours: int | None = None
    # None: alarm descriptions and dashboards name the relative path docs/runbook.md. Set a URL pinned
    # to a commit (https://github.com/ORG/REPO/blob/<commit>/docs/runbook.md) so on-call can click it.
    runbook_url: str | None = None


@dataclass(frozen=True)
class DeploymentSpec:
    prefix: str
    environment: str
    profile: str
    collector: FunctionSpec
    reporter: FunctionSpec
    verifier: FunctionSpec
    queue: QueueSpec
    lock: LockSpec
    output: OutputSpec
    alarms: AlarmSpec = field(default_factory=AlarmSpec)
    publish_max_attempts: int = 8
    schedule_expression: str | None = "rate(1 day)"
    verify_schedule_expression: str = "rate(15 minutes)"
    tracing: bool = True
    log_retention_days: int = 30
    metrics_namespace: str = "CIDB"
    # Lambda's application log level (with JSON logs) and Powertools' own level; set both
    # explicitly, or AWS fills one in and every `pulumi up` shows a diff.
    log_level: str = "INFO"
    # platform.report and platform.initReport are INFO-level system logs; the queries read them.
    system_log_level: str = "INFO"

    @property
    def base_name(self) -> str:
        return f"{self.prefix}-{self.environment}"

    @property
    def lock_wait_p99_alarm_ms(self) -> int:
        """Half the lease: a compaction waiting that long is close to running out of tries and lease."""
        return int(self.lock.timeout_seconds * 1000 // 2)

    @property
    def layer_name(self) -> str:
        return f"{self.base_name}-deps"

    @property
    def topic_name(self) -> str:
        return f"{self.base_name}-policies"

    @property
    def queue_name(self) -> str:
        return f"{self.base_name}-policies"

    @property
    def dlq_name(self) -> str:
        return f"{self.base_name}-policies-dlq"

    @property
    def bucket_name(self) -> str:
        return f"{self.base_name}-reports"

    @property
    def run_table_name(self) -> str:
        return f"{self.base_name}-runs"

    @property
    def functions(self) -> tuple[FunctionSpec, ...]:
        return (self.collector, self.reporter, self.verifier)

    def problems(self) -> list[str]:
        """Every way this spec breaks an AWS rule or a CIDB safety rule."""
        q, out = self.queue, []
        if self.profile not in PROFILES:
            out.append(f"profile={self.profile!r} must be one of {PROFILES}")
        for fn in self.functions:
            if not 1 <= fn.timeout_seconds <= 900:
                out.append(f"{fn.name}: timeout_seconds={fn.timeout_seconds} must be within 1..900")
            if not 128 <= fn.memory_mb <= 10240:
                out.append(f"{fn.name}: memory_mb={fn.memory_mb} must be within 128..10240")
        if not 1 <= q.batch_size <= 10000:
            out.append(f"queue.batch_size={q.batch_size} must be within 1..10000")
        if not 0 <= q.batching_window_seconds <= 300:
            out.append(f"queue.batching_window_seconds={q.batching_window_seconds} must be within 0..300")
        if q.batch_size > 10 and q.batching_window_seconds < 1:
            out.append(
                f"queue.batch_size={q.batch_size} is above 10, which AWS allows only with "
                f"batching_window_seconds >= 1 (got {q.batching_window_seconds})"
            )
        needed = min_visibility_seconds(self.reporter.timeout_seconds, q.batching_window_seconds)
        if q.visibility_timeout_seconds < needed:
            out.append(
                f"queue.visibility_timeout_seconds={q.visibility_timeout_seconds} must be >= "
                f"6 x reporter timeout + batching window = {needed}"
            )
        if q.visibility_timeout_seconds > 43200:
            out.append(f"queue.visibility_timeout_seconds={q.visibility_timeout_seconds} exceeds the SQS maximum 43200")
        if q.max_concurrency is not None and not 2 <= q.max_concurrency <= 1000:
            out.append(f"queue.max_concurrency={q.max_concurrency} must be within 2..1000")
        if not 1 <= q.max_receive_count <= 1000:
            out.append(f"queue.max_receive_count={q.max_receive_count} must be within 1..1000")
        elif self.profile != "seed" and q.max_receive_count < 5:
            out.append(
                f"queue.max_receive_count={q.max_receive_count} sends records to the DLQ after too few "
                "tries; use at least 5 (only the 'seed' profile reproduces the old value 2)"
            )
        if self.alarms.heartbeat_hours is not None and not 1 <= self.alarms.heartbeat_hours <= 168:
            out.append(
                f"alarms.heartbeat_hours={self.alarms.heartbeat_hours} must be within 1..168 "
                "(CloudWatch evaluates hourly alarms over at most 7 days)"
            )
        url = self.alarms.runbook_url
        if url is not None and not (url.startswith("https://") and url.endswith(".md")):
            out.append(
                f"alarms.runbook_url={url!r} must be an https:// URL of the runbook file, e.g. "
                "https://github.com/ORG/REPO/blob/<commit>/docs/runbook.md"
            )
        if self.output.rows_per_file < 1:
            out.append(f"output.rows_per_file={self.output.rows_per_file} must be >= 1")
        if self.output.mode not in env_names.OUTPUT_MODES:
            out.append(f"output.mode={self.output.mode!r} must be one of {env_names.OUTPUT_MODES}")
        if self.output.mode == env_names.OUTPUT_MODE_FENCED and not self.lock.enabled:
            out.append("lock.enabled=False is only allowed with the seed output mode")
        if self.lock.max_attempts < 1 or self.lock.timeout_seconds < 1:
            out.append("lock.max_attempts and lock.timeout_seconds must be >= 1")
        return out

    def validated(self) -> DeploymentSpec:
        problems = self.problems()
        if problems:
            raise SpecError("invalid CIDB deployment spec:\n  - " + "\n  - ".join(problems))
        return self

    def collector_environment(self, *, topic_arn: Any, run_table: Any, bucket: Any) -> dict[str, Any]:
        """Lambda environment of the collector; values may be Pulumi Outputs."""
        return {
            **self._common_environment(self.collector),
            env_names.ENV_TOPIC_ARN: topic_arn,
            env_names.ENV_RUN_TABLE: run_table,
            env_names.ENV_BUCKET: bucket,
            env_names.ENV_PUBLISH_MAX_ATTEMPTS: str(self.publish_max_attempts),
        }

    def reporter_environment(self, *, run_table: Any, bucket: Any) -> dict[str, Any]:
        """Lambda environment of the reporter; values may be Pulumi Outputs."""
        return {
            **self._common_environment(self.reporter),
            **self._compaction_environment(run_table=run_table, bucket=bucket),
            env_names.ENV_RETRY_BASE: str(self.queue.retry_base_seconds),
            env_names.ENV_RETRY_MAX: str(self.queue.retry_max_seconds),
        }

    def verifier_environment(self, *, run_table: Any, bucket: Any) -> dict[str, Any]:
        """Lambda environment of the verifier, which flushes a run's last segments before it checks the run."""
        return {
            **self._common_environment(self.verifier),
            **self._compaction_environment(run_table=run_table, bucket=bucket),
            env_names.ENV_RUN_GRACE: str(self.alarms.run_grace_seconds),
        }

    def _compaction_environment(self, *, run_table: Any, bucket: Any) -> dict[str, Any]:
        """What every function that folds segments into parts under the lock needs."""
        return {
            env_names.ENV_RUN_TABLE: run_table,
            env_names.ENV_BUCKET: bucket,
            env_names.ENV_OUTPUT_MODE: self.output.mode,
            env_names.ENV_MAX_ROWS: str(self.output.rows_per_file),
            env_names.ENV_LOCK_TIMEOUT: str(self.lock.timeout_seconds),
            env_names.ENV_LOCK_MAX_ATTEMPTS: str(self.lock.max_attempts),
            env_names.ENV_LOCK_BASE_BACKOFF: str(self.lock.base_backoff_seconds),
            env_names.ENV_LOCK_JITTER: str(self.lock.jitter_factor),
            env_names.ENV_LOCK_MAX_BACKOFF: str(self.lock.max_backoff_seconds),
        }

    def _common_environment(self, fn: FunctionSpec) -> dict[str, str]:
        return {
            "POWERTOOLS_SERVICE_NAME": fn.name,
            "POWERTOOLS_METRICS_NAMESPACE": self.metrics_namespace,
            "POWERTOOLS_LOG_LEVEL": self.log_level,
        }


def _tuned(prefix: str, environment: str) -> DeploymentSpec:
    base = f"{prefix}-{environment}"
    return DeploymentSpec(
        prefix=prefix,
        environment=environment,
        profile="tuned",
        collector=FunctionSpec(f"{base}-collector", "pipeline.collector.handler", 900, 1024),
        reporter=FunctionSpec(f"{base}-reporter", "pipeline.reporter.handler", 900, 1024),
        verifier=FunctionSpec(f"{base}-verifier", "pipeline.verifier.handler", 300, 512),
        queue=QueueSpec(
            batch_size=25,
            # Each of the max_concurrency pollers fills its own batch, so a long window mostly delays
            # the run's last batches; with lock-free commits a smaller batch costs little.
            batching_window_seconds=5,
            # Reporters commit lock-free segments; only compaction (about once per part) takes the
            # run's lock, so instances add throughput (see docs/design.md for the measurements).
            max_concurrency=10,
            visibility_timeout_seconds=min_visibility_seconds(900, 30),  # room for a 30 s window
            max_receive_count=5,
        ),
        # All writers of a run append to the same part, so they queue for its lock; each
        # holds it for one read-append-write cycle (about a second on the emulator). The
        # seed's uncapped 2 s base backoff makes unlucky writers sleep through free slots and
        # give up after 5 tries, which on AWS costs the batch a whole visibility timeout.
        # Short, capped waits and a budget of tries covering the 60 s lease serve better.
        lock=LockSpec(base_backoff_seconds=0.2, max_backoff_seconds=2.0, max_attempts=40),
        output=OutputSpec(),
    )


def _seed(prefix: str, environment: str) -> DeploymentSpec:
    """The pipeline before the fixes: batch 1, short reporter timeout, one unlocked CSV."""
    base = f"{prefix}-{environment}"
    return DeploymentSpec(
        prefix=prefix,
        environment=environment,
        profile="seed",
        collector=FunctionSpec(f"{base}-collector", "pipeline.collector.handler", 300, 512),
        reporter=FunctionSpec(f"{base}-reporter", "pipeline.reporter.handler", 20, 512),
        verifier=FunctionSpec(f"{base}-verifier", "pipeline.verifier.handler", 300, 512),
        queue=QueueSpec(
            batch_size=1,
            batching_window_seconds=0,
            max_concurrency=None,
            visibility_timeout_seconds=min_visibility_seconds(20, 0),
            max_receive_count=2,
        ),
        lock=LockSpec(enabled=False),
        output=OutputSpec(mode=env_names.OUTPUT_MODE_SEED),
        alarms=AlarmSpec(oldest_message_age_seconds=600),  # the seed notes' alarm
    )


_BUILDERS = {"tuned": _tuned, "seed": _seed}

# Overrides accepted by build_spec, as "section.field" -> type; shared by the Pulumi
# config reader and the CLI so both accept exactly the same keys.
OVERRIDES: dict[str, type] = {
    "queue.batch_size": int,
    "queue.batching_window_seconds": int,
    "queue.max_concurrency": int,
    "queue.visibility_timeout_seconds": int,
    "queue.max_receive_count": int,
    "collector.timeout_seconds": int,
    "collector.memory_mb": int,
    "reporter.timeout_seconds": int,
    "reporter.memory_mb": int,
    "lock.timeout_seconds": int,
    "lock.max_attempts": int,
    "lock.base_backoff_seconds": float,
    "lock.jitter_factor": float,
    "lock.max_backoff_seconds": float,
    "output.rows_per_file": int,
    "alarms.heartbeat_hours": int,
    "alarms.runbook_url": str,
}

# Overrides for which "off" means "no value" (no concurrency cap).
OFF = "off"
OFF_MEANS_NONE = frozenset({"queue.max_concurrency"})
_KIND_NAMES = {int: "a whole number", float: "a number", str: "text"}


def parse_override(key: str, raw: str) -> Any:
    """One override from text (stack config, ``--set``); the error says what the value must be."""
    if key not in OVERRIDES:
        raise SpecError(f"unknown spec override {key!r}; known keys: {sorted(OVERRIDES)}")
    if raw == OFF and key in OFF_MEANS_NONE:
        return None
    kind = OVERRIDES[key]
    try:
        return kind(raw)
    except ValueError:
        allowed = _KIND_NAMES[kind] + (f" or {OFF!r}" if key in OFF_MEANS_NONE else "")
        raise SpecError(f"{raw!r} must be {allowed}") from None


def build_spec(
    profile: str = DEFAULT_PROFILE,
    *,
    prefix: str = "cidb",
    environment: str = "dev",
    overrides: dict[str, Any] | None = None,
    **top_level: Any,
) -> DeploymentSpec:
    """Build a profile, apply overrides and validate the result.

    When the reporter timeout or batching window is overridden but the visibility timeout
    is not, the visibility timeout follows the 6 x timeout + window rule.
    """
    if profile not in _BUILDERS:
        raise SpecError(f"unknown profile {profile!r}; choose one of {PROFILES}")
    spec = _BUILDERS[profile](prefix, environment)
    overrides = dict(overrides or {})
    sections: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        if key not in OVERRIDES:
            raise SpecError(f"unknown spec override {key!r}; known keys: {sorted(OVERRIDES)}")
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    changed = {s: replace(getattr(spec, s), **values) for s, values in sections.items()}
    spec = replace(spec, **changed, **top_level)
    if "queue.visibility_timeout_seconds" not in overrides and (
        "reporter.timeout_seconds" in overrides or "queue.batching_window_seconds" in overrides
    ):
        needed = min_visibility_seconds(spec.reporter.timeout_seconds, spec.queue.batching_window_seconds)
        spec = replace(spec, queue=replace(spec.queue, visibility_timeout_seconds=needed))
    return spec.validated()
