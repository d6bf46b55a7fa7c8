"""Configuration: stack config values reach the spec and the resources; bad values name their key."""

from __future__ import annotations

import json
import re
from functools import reduce
from pathlib import Path
from typing import Any

import pulumi
import pulumi_mocks
import pytest
import yaml
from pulumi_mocks import deploy

from pipeline.spec import OVERRIDES, PROFILES, build_spec
from stack.config import CONFIG_KEYS, FROM_PROFILE, NAMESPACE, OVERRIDE_KEYS, StackConfigError, read_settings

ROOT = Path(__file__).resolve().parent.parent
PROJECT = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())

# One valid, non-default value per override key, as `pulumi config set` would store it.
OVERRIDE_SAMPLES = {
    "batchSize": ("7", 7),
    "batchingWindowSeconds": ("3", 3),
    "maxConcurrency": ("7", 7),
    "visibilityTimeoutSeconds": ("6000", 6000),
    "maxReceiveCount": ("7", 7),
    "collectorTimeoutSeconds": ("600", 600),
    "collectorMemoryMb": ("2048", 2048),
    "reporterTimeoutSeconds": ("600", 600),
    "reporterMemoryMb": ("2048", 2048),
    "lockTimeoutSeconds": ("90", 90),
    "lockMaxAttempts": ("7", 7),
    "lockBaseBackoffSeconds": ("0.5", 0.5),
    "lockJitterFactor": ("0.25", 0.25),
    "lockMaxBackoffSeconds": ("4", 4.0),
    "rowsPerFile": ("100", 100),
    "heartbeatHours": ("30", 30),
    "runbookUrl": (
        "https://github.com/acme/cidb/blob/0123abc/docs/runbook.md",
        "https://github.com/acme/cidb/blob/0123abc/docs/runbook.md",
    ),
}


def settings_from(config: dict[str, str]) -> Any:
    pulumi.runtime.set_all_config({f"{NAMESPACE}:{key}": value for key, value in config.items()})
    return read_settings()


def spec_value(spec: Any, override: str) -> Any:
    return reduce(getattr, override.split("."), spec)


def test_config_table_covers_exactly_the_spec_overrides() -> None:
    assert sorted(OVERRIDE_KEYS.values()) == sorted(OVERRIDES), "stack.config.OVERRIDE_KEYS vs pipeline.spec.OVERRIDES"
    assert set(OVERRIDE_SAMPLES) == set(OVERRIDE_KEYS), "every override key needs a sample in this test"


@pytest.mark.parametrize("key", sorted(OVERRIDE_KEYS))
def test_each_override_key_sets_its_spec_field(key: str) -> None:
    raw, expected = OVERRIDE_SAMPLES[key]
    spec = settings_from({key: raw}).spec
    assert spec_value(spec, OVERRIDE_KEYS[key]) == expected, f"{NAMESPACE}:{key}={raw} must set {OVERRIDE_KEYS[key]}"


def test_config_values_reach_the_resources() -> None:
    deployment = deploy({"batchSize": "10", "batchingWindowSeconds": "5", "reporterTimeoutSeconds": "120"})
    esm = deployment.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    queue = deployment.one("aws:sqs/queue:Queue", "-queue")
    assert esm.state["batchSize"] == 10, f"{esm.urn}: cidb:batchSize=10 must reach the mapping"
    assert esm.state["maximumBatchingWindowInSeconds"] == 5, f"{esm.urn}: cidb:batchingWindowSeconds"
    assert deployment.function("reporter").state["timeout"] == 120, (
        "cidb:reporterTimeoutSeconds must reach the reporter"
    )
    assert queue.state["visibilityTimeoutSeconds"] == 6 * 120 + 5, f"{queue.urn} must follow the 6x rule"


def test_max_concurrency_off_removes_the_scaling_config() -> None:
    deployment = deploy({"maxConcurrency": "off"})
    esm = deployment.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert "scalingConfig" not in esm.state, f"{esm.urn}: cidb:maxConcurrency=off must drop the cap"


def test_schedule_off_removes_only_the_collector_schedule() -> None:
    deployment = deploy({"schedule": "off"})
    rules = [r.name for r in deployment.of_type("aws:cloudwatch/eventRule:EventRule")]
    assert not [n for n in rules if "-collector-" in n], f"cidb:schedule=off left collector rules {rules}"
    assert [n for n in rules if "-verifier-" in n], "the verifier schedule must stay"


def test_tracing_false_turns_tracing_off() -> None:
    deployment = deploy({"tracing": "false"})
    for key in ("collector", "reporter", "verifier"):
        function = deployment.function(key)
        assert "tracingConfig" not in function.state, f"{function.urn}: cidb:tracing=false must not trace"


def test_names_come_from_prefix_and_environment() -> None:
    spec = settings_from({"prefix": "acme", "environment": "prod"}).spec
    assert spec.collector.name == "acme-prod-collector", "cidb:prefix and cidb:environment name the functions"


def test_environment_defaults_to_the_stack_name() -> None:
    assert settings_from({}).spec.environment == pulumi_mocks.STACK, "empty cidb:environment means the stack name"


def test_notification_settings_are_read() -> None:
    settings = settings_from(
        {"alarmEmails": '["oncall@example.com"]', "alarmWebhookUrl": "https://hooks.example.com/x"}
    )
    assert settings.notifications.emails == ("oncall@example.com",), "cidb:alarmEmails"
    assert settings.notifications.webhook_url == "https://hooks.example.com/x", "cidb:alarmWebhookUrl"


def test_alarm_routes_and_enabled_severities_are_read() -> None:
    settings = settings_from({"pageEmails": '["pager@example.com"]', "alarmActions": '["critical", "warning"]'})
    assert settings.notifications.page_emails == ("pager@example.com",), "cidb:pageEmails"
    assert settings.notifications.severities == ("critical", "warning"), "cidb:alarmActions"
    assert settings_from({}).notifications.severities == ("page", "critical", "warning"), "unset: every severity"
    assert settings_from({"alarmActions": "[]"}).notifications.severities == (), "an empty list silences all"


def test_load_test_principals_are_read() -> None:
    arns = [
        "arn:aws:iam::123456789012:role/cidb-operator",
        "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Admin_0123abcd",
        "arn:aws-cn:iam::123456789012:user/load.tester@example.com",
    ]
    settings = settings_from({"loadTestPrincipalArns": json.dumps(arns)})
    assert settings.load_test_principal_arns == tuple(arns), "cidb:loadTestPrincipalArns"
    assert settings_from({}).load_test_principal_arns == (), "unset cidb:loadTestPrincipalArns means none"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("batchSize", "ten"),
        ("batchSize", "0"),
        ("batchSize", "2.5"),
        ("lockJitterFactor", "lots"),
        ("maxReceiveCount", "2"),
        ("maxConcurrency", "1"),
        ("reporterTimeoutSeconds", "1000"),
        ("profile", "fast"),
        ("prefix", "CIDB"),
        ("environment", "a-very-long-environment-name"),
        ("schedule", "daily"),
        ("tracing", "yes"),
        ("alarmEmails", '["not-an-address"]'),
        ("alarmEmails", "oncall@example.com"),
        ("alarmWebhookUrl", "http://hooks.example.com/x"),
        ("pageEmails", '["pager"]'),
        ("alarmActions", '["pager"]'),
        ("alarmActions", "page"),
        ("heartbeatHours", "a day"),
        ("heartbeatHours", "0"),
        ("heartbeatHours", "200"),
        ("runbookUrl", "http://github.com/acme/cidb/blob/main/docs/runbook.md"),
        ("loadTestPrincipalArns", "arn:aws:iam::123456789012:role/cidb-operator"),
        ("loadTestPrincipalArns", '["cidb-operator"]'),
        ("loadTestPrincipalArns", '["arn:aws:sts::123456789012:assumed-role/cidb-operator/me"]'),
        ("loadTestPrincipalArns", '["arn:aws:iam::12345:role/cidb-operator"]'),
        ("loadTestPrincipalArns", '["arn:aws:iam::123456789012:group/operators"]'),
    ],
)
def test_bad_value_fails_with_an_error_naming_its_key(key: str, value: str) -> None:
    with pytest.raises(StackConfigError) as error:
        settings_from({key: value})
    assert f"{NAMESPACE}:{key}" in str(error.value), f"error for {NAMESPACE}:{key}={value!r} must name the key"


def test_project_file_declares_every_key_with_a_description_and_a_default() -> None:
    declared = PROJECT["config"]
    assert set(declared) == set(CONFIG_KEYS), "Pulumi.yaml config keys vs stack.config.CONFIG_KEYS"
    for key, schema in declared.items():
        assert schema.get("description") and "default" in schema and "type" in schema, f"Pulumi.yaml {key}"


def test_deploy_guide_shows_every_key_with_a_config_set_example() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    example = "pulumi config set (--path ')?{}:{}\\b"
    missing = sorted(key for key in CONFIG_KEYS if not re.search(example.format(NAMESPACE, key), guide))
    assert not missing, f"docs/deploy.md lacks a `pulumi config set` example for {missing}"


def test_project_file_uses_the_pip_virtualenv() -> None:
    runtime = PROJECT["runtime"]
    assert runtime == {"name": "python", "options": {"toolchain": "pip", "virtualenv": ".venv"}}, "Pulumi.yaml runtime"


def _as_config(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def test_project_defaults_give_the_profile_unchanged() -> None:
    defaults = {key: _as_config(schema["default"]) for key, schema in PROJECT["config"].items()}
    assert settings_from(defaults).spec == build_spec("tuned", environment=pulumi_mocks.STACK), (
        "Pulumi.yaml defaults must not change the profile"
    )


def test_example_stack_file_builds() -> None:
    stack = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    config = {key.split(":", 1)[1]: _as_config(v) for key, v in stack.items() if key.startswith(f"{NAMESPACE}:")}
    assert set(config) <= set(CONFIG_KEYS), "Pulumi.dev.yaml uses an undeclared key"
    assert "aws:region" in stack, "Pulumi.dev.yaml must set aws:region"
    assert settings_from(config).spec.queue.batch_size == int(config["batchSize"]), "Pulumi.dev.yaml batch size"


# --- The configuration table in docs/deploy.md, checked against Pulumi.yaml and the spec ---
# A default cell reads "<Pulumi.yaml default>" optionally followed by " (<note>)". For keys whose
# default is "profile", the note lists the profile values: "(25)" claims 25 for every profile,
# "(tuned 40, seed 5)" names each one. `off` stands for no value (None).
GUIDE_ROW = re.compile(r"^\|\s*`(?P<key>[\w:]+)`\s*\|\s*(?P<default>[^|]*?)\s*\|")
PROFILE_NOTE = re.compile(r"^(?P<head>\S+)(?: \((?P<note>.*)\))?$")
PROFILE_SPEC_FIELDS = {
    **OVERRIDE_KEYS,
    "schedule": "schedule_expression",
    "tracing": "tracing",
}


def guide_table_defaults() -> dict[str, str]:
    """`cidb:<key>` -> its default cell, from the table under "## Configuration"."""
    guide = (ROOT / "docs" / "deploy.md").read_text()
    section = guide.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows = (GUIDE_ROW.match(line) for line in section.splitlines())
    return {m["key"]: m["default"].replace("`", "") for m in rows if m and m["key"].startswith(f"{NAMESPACE}:")}


def _yaml_default(value: Any) -> str:
    if value == "":
        return "empty"
    return value if isinstance(value, str) else json.dumps(value)


def _profile_values(note: str) -> list[tuple[tuple[str, ...], str]]:
    """Note -> (profiles, value): 'tuned 40, seed 5' gives each profile its own; '30' gives all of them 30."""
    out = []
    for part in re.split(r", (?=(?:" + "|".join(PROFILES) + r") )", note):
        name, _, rest = part.partition(" ")
        out.append(((name,), rest) if name in PROFILES and rest else (PROFILES, part))
    return out


def _same(stated: str, actual: Any) -> bool:
    if actual is None:
        return stated == "off"
    if isinstance(actual, bool):
        return stated == str(actual).lower()
    if isinstance(actual, int | float):
        try:
            return float(stated) == actual
        except ValueError:
            return False
    return stated == actual


def test_deploy_guide_table_lists_every_project_key_with_its_default() -> None:
    table = guide_table_defaults()
    declared = {f"{NAMESPACE}:{key}": schema["default"] for key, schema in PROJECT["config"].items()}
    assert set(table) == set(declared), (
        f"docs/deploy.md config table vs Pulumi.yaml: missing {sorted(set(declared) - set(table))}, "
        f"undeclared {sorted(set(table) - set(declared))}"
    )
    heads = {key: match["head"] if (match := PROFILE_NOTE.match(cell)) else cell for key, cell in table.items()}
    wrong = {
        key: (table[key], _yaml_default(default))
        for key, default in declared.items()
        if heads[key] != _yaml_default(default)
    }
    assert not wrong, f"docs/deploy.md config table defaults (table, Pulumi.yaml) differ: {wrong}"


def test_deploy_guide_table_profile_values_match_the_spec() -> None:
    problems = []
    for full_key, cell in guide_table_defaults().items():
        key = full_key.split(":", 1)[1]
        match = PROFILE_NOTE.match(cell)
        if match is None or match["head"] != FROM_PROFILE:
            continue
        if key not in PROFILE_SPEC_FIELDS or not match["note"]:
            problems.append(f"{full_key}: {cell!r} must name the profile value(s) of a spec field")
            continue
        for profiles, stated in _profile_values(match["note"]):
            for profile in profiles:
                actual = spec_value(build_spec(profile), PROFILE_SPEC_FIELDS[key])
                if not _same(stated, actual):
                    problems.append(
                        f"{full_key}: the table says {stated!r} for {profile}, "
                        f"pipeline.spec has {PROFILE_SPEC_FIELDS[key]}={actual!r}"
                    )
    assert not problems, "docs/deploy.md config table vs pipeline/spec.py:\n  " + "\n  ".join(problems)
