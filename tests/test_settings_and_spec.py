"""Bad configuration fails loudly: ConfigError / SpecError messages name what is wrong.

Pure unit tests: settings are read from an explicit mapping, specs are built in memory.
One test calls a real handler to show the error reaches the Lambda caller unchanged.
"""

from __future__ import annotations

import pytest
from emulated import lambda_context

from pipeline import env, reporter
from pipeline.settings import ConfigError, load_settings
from pipeline.spec import PROFILES, SpecError, build_spec

GOOD_ENV = {
    env.ENV_BUCKET: "cidb-dev-reports",
    env.ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:123456789012:cidb-dev-policies",
    env.ENV_RUN_TABLE: "cidb-dev-runs",
}


def _load(overrides: dict[str, str | None], *, need_bucket: bool = True, need_topic: bool = True):
    values = {**GOOD_ENV, **overrides}
    return load_settings(
        {k: v for k, v in values.items() if v is not None}, need_bucket=need_bucket, need_topic=need_topic
    )


# --------------------------------------------------------------------------- settings


def test_good_environment_loads_with_documented_defaults() -> None:
    # GIVEN only the three required variables WHEN loaded
    settings = _load({})
    # THEN every optional value has its documented default
    assert settings.bucket == GOOD_ENV[env.ENV_BUCKET], "bucket"
    assert settings.output_mode == env.OUTPUT_MODE_FENCED, "CIDB_OUTPUT_MODE default"
    assert settings.max_rows_per_file == 500, "MAX_ROWS_PER_FILE default"
    assert settings.lock.max_attempts == 5, "LOCK_MAX_ATTEMPTS default"
    assert settings.lock.timeout_seconds == 60.0, "LOCK_TIMEOUT_SECONDS default"


def test_numbers_are_parsed_from_the_environment() -> None:
    # GIVEN explicit numeric values WHEN loaded THEN they are used, with the right types
    settings = _load({env.ENV_MAX_ROWS: "3", env.ENV_LOCK_MAX_ATTEMPTS: "8", env.ENV_LOCK_BASE_BACKOFF: "0.25"})
    assert (settings.max_rows_per_file, settings.lock.max_attempts) == (3, 8), "MAX_ROWS_PER_FILE, LOCK_MAX_ATTEMPTS"
    assert settings.lock.base_backoff_seconds == 0.25, "LOCK_BASE_BACKOFF_SECONDS"


@pytest.mark.parametrize(
    ("overrides", "kwargs", "variable", "hint"),
    [
        pytest.param({env.ENV_BUCKET: None}, {}, "CIDB_BUCKET", "is not set", id="missing-bucket"),
        pytest.param({env.ENV_BUCKET: "Not_A_Bucket"}, {}, "CIDB_BUCKET", "not a valid", id="malformed-bucket"),
        pytest.param({env.ENV_TOPIC_ARN: None}, {}, "CIDB_TOPIC_ARN", "is not set", id="missing-topic"),
        pytest.param(
            {env.ENV_TOPIC_ARN: "arn:aws:sqs:us-east-1:123456789012:cidb-dev-policies"},
            {},
            "CIDB_TOPIC_ARN",
            "not a valid SNS topic ARN",
            id="topic-arn-of-a-queue",
        ),
        pytest.param(
            {env.ENV_TOPIC_ARN: "arn:aws:sns:us-east-1:12345:cidb"},
            {},
            "CIDB_TOPIC_ARN",
            "not a valid SNS topic ARN",
            id="topic-arn-short-account",
        ),
        pytest.param({env.ENV_RUN_TABLE: None}, {}, "CIDB_RUN_TABLE", "is not set", id="missing-table"),
        pytest.param({env.ENV_LOCK_MAX_ATTEMPTS: "abc"}, {}, "LOCK_MAX_ATTEMPTS", "not a valid int", id="attempts-abc"),
        pytest.param(
            {env.ENV_LOCK_MAX_ATTEMPTS: "0"},
            {},
            "LOCK_MAX_ATTEMPTS",
            "must be a finite number >= 1",
            id="attempts-zero",
        ),
        pytest.param({env.ENV_MAX_ROWS: "2.5"}, {}, "MAX_ROWS_PER_FILE", "not a valid int", id="rows-float"),
        pytest.param({env.ENV_LOCK_TIMEOUT: "soon"}, {}, "LOCK_TIMEOUT_SECONDS", "not a valid float", id="timeout"),
        pytest.param({env.ENV_OUTPUT_MODE: "append"}, {}, "CIDB_OUTPUT_MODE", "must be one of", id="output-mode"),
    ],
)
def test_bad_variable_raises_config_error_naming_it(overrides, kwargs, variable, hint) -> None:
    # GIVEN an environment with one bad or missing variable
    # WHEN the settings are loaded
    with pytest.raises(ConfigError) as caught:
        _load(overrides, **kwargs)
    # THEN the error names the variable and says what is wrong with it
    message = str(caught.value)
    assert variable in message, f"ConfigError must name {variable}: {message!r}"
    assert hint in message, f"ConfigError for {variable} must say {hint!r}: {message!r}"


@pytest.mark.parametrize(
    ("variable", "raw"),
    [
        (env.ENV_LOCK_TIMEOUT, "nan"),
        (env.ENV_LOCK_BASE_BACKOFF, "inf"),
        (env.ENV_RUN_GRACE, "inf"),
    ],
)
def test_non_finite_numbers_are_rejected(variable: str, raw: str) -> None:
    """NaN/inf pass a plain ``value < minimum`` check, and would silently break the pipeline.

    LOCK_TIMEOUT_SECONDS=nan makes every live lock look stale (``age <= nan`` is False);
    RUN_GRACE_SECONDS=inf means the verifier never reconciles a run, so data loss never alarms.
    """
    # GIVEN a non-finite number WHEN loaded THEN ConfigError names the variable
    with pytest.raises(ConfigError, match=variable):
        _load({variable: raw})


def test_bucket_optional_for_a_function_that_does_not_need_it() -> None:
    # GIVEN no bucket WHEN a function that does not need one loads settings THEN it gets None, not an error
    settings = _load({env.ENV_BUCKET: None}, need_bucket=False, need_topic=False)
    assert settings.bucket is None, "bucket must be None when not required and not set"
    assert settings.topic_arn is None, "topic must not be read when not required"


@pytest.mark.filterwarnings("ignore:No application metrics")
def test_reporter_handler_fails_with_the_config_message(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a reporter environment without CIDB_BUCKET
    monkeypatch.delenv(env.ENV_BUCKET, raising=False)
    monkeypatch.setenv(env.ENV_RUN_TABLE, "cidb-dev-runs")
    # WHEN the handler is invoked THEN the caller sees the ConfigError naming the variable, before any AWS call
    with pytest.raises(ConfigError, match="CIDB_BUCKET is not set"):
        reporter.handler({"Records": []}, lambda_context())


# --------------------------------------------------------------------------- spec


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_are_valid(profile: str) -> None:
    # GIVEN a shipped profile WHEN built THEN it passes its own rules
    spec = build_spec(profile)
    assert spec.problems() == [], f"profile {profile} must be valid: {spec.problems()}"


def test_tuned_visibility_follows_the_six_times_timeout_rule() -> None:
    spec = build_spec("tuned")
    needed = 6 * spec.reporter.timeout_seconds + spec.queue.batching_window_seconds
    assert spec.queue.visibility_timeout_seconds >= needed, "tuned visibility timeout vs 6 x timeout + window"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        pytest.param(
            {"queue.visibility_timeout_seconds": 900},
            ["queue.visibility_timeout_seconds=900", "6 x reporter timeout + batching window = 5405"],
            id="visibility-below-6x-timeout-plus-window",
        ),
        pytest.param(
            {"queue.batch_size": 25, "queue.batching_window_seconds": 0},
            ["queue.batch_size=25", "batching_window_seconds >= 1"],
            id="batch-over-10-without-window",
        ),
        pytest.param(
            {"queue.max_receive_count": 2},
            ["queue.max_receive_count=2", "at least 5"],
            id="max-receive-count-below-5-in-tuned",
        ),
        pytest.param(
            {"output.rows_per_file": 0},
            ["output.rows_per_file=0"],
            id="rows-per-file-zero",
        ),
        pytest.param(
            {"queue.max_concurrency": 1},
            ["queue.max_concurrency=1", "2..1000"],
            id="max-concurrency-one",
        ),
    ],
)
def test_spec_rule_violation_raises_spec_error_listing_it(overrides: dict, expected: list[str]) -> None:
    # GIVEN the tuned profile with an override that breaks a rule
    # WHEN the spec is built
    with pytest.raises(SpecError) as caught:
        build_spec("tuned", overrides=overrides)
    # THEN SpecError lists the problem with the offending value
    message = str(caught.value)
    for fragment in expected:
        assert fragment in message, f"SpecError for {overrides} must mention {fragment!r}: {message!r}"


def test_spec_error_lists_every_problem_at_once() -> None:
    # GIVEN two independent violations WHEN built THEN both are listed, one per line
    with pytest.raises(SpecError) as caught:
        build_spec("tuned", overrides={"queue.max_receive_count": 2, "queue.visibility_timeout_seconds": 60})
    lines = [line for line in str(caught.value).splitlines() if line.strip().startswith("- ")]
    assert len(lines) == 2, f"SpecError must list both problems, one per line: {caught.value}"


def test_max_receive_count_two_is_allowed_only_in_seed() -> None:
    # GIVEN the seed profile (which reproduces the old maxReceiveCount 2) THEN it builds
    assert build_spec("seed").queue.max_receive_count == 2, "seed profile keeps maxReceiveCount 2"


def test_reporter_timeout_override_moves_the_visibility_timeout() -> None:
    # GIVEN a shorter reporter timeout and no explicit visibility WHEN built THEN visibility follows the rule
    spec = build_spec("tuned", overrides={"reporter.timeout_seconds": 120})
    assert spec.queue.visibility_timeout_seconds == 6 * 120 + 5, "visibility = 6 x 120 + window 5"


def test_unknown_override_key_is_named() -> None:
    with pytest.raises(SpecError, match=r"unknown spec override 'queue\.batchsize'"):
        build_spec("tuned", overrides={"queue.batchsize": 10})


def test_unknown_profile_is_named_with_the_choices() -> None:
    with pytest.raises(SpecError) as caught:
        build_spec("fast")
    assert "'fast'" in str(caught.value) and "tuned" in str(caught.value), f"names profile + choices: {caught.value}"


def test_spec_environment_round_trips_through_settings() -> None:
    """The variable names the spec writes are the ones the handlers read (one source of truth)."""
    spec = build_spec("tuned", overrides={"output.rows_per_file": 7, "lock.max_attempts": 3})
    environment = {
        **spec.reporter_environment(run_table="cidb-dev-runs", bucket="cidb-dev-reports"),
        **spec.collector_environment(
            topic_arn=GOOD_ENV[env.ENV_TOPIC_ARN], run_table="cidb-dev-runs", bucket="cidb-dev-reports"
        ),
    }
    settings = load_settings(environment, need_bucket=True, need_topic=True)
    assert settings.max_rows_per_file == 7, "output.rows_per_file -> MAX_ROWS_PER_FILE"
    assert settings.lock.max_attempts == 3, "lock.max_attempts -> LOCK_MAX_ATTEMPTS"
    assert settings.lock.base_backoff_seconds == spec.lock.base_backoff_seconds, "lock.base_backoff_seconds"
    assert settings.publish_max_attempts == spec.publish_max_attempts, "publish_max_attempts"
