"""Alarm messages for chat: real SNS-wrapped CloudWatch alarm JSON in, every link checked in each format."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from monitoring import build_monitoring
from monitoring.alarm_links import routing_table
from pipeline.alarm_message import (
    CHAT_FORMATS,
    AlarmMessageError,
    DlqSummary,
    Routing,
    build_message,
    parse_alarm,
    render,
)
from pipeline.spec import build_spec
from queries import load_query

FIXTURES = Path(__file__).parent / "fixtures"
REGION = "eu-west-1"
CONSOLE = f"https://{REGION}.console.aws.amazon.com/cloudwatch/home?region={REGION}"
RUNBOOK_BASE = "https://github.com/example/cidb/blob/main/docs/runbook.md"


def sns_message(fixture: str) -> str:
    return json.loads((FIXTURES / fixture).read_text())["Records"][0]["Sns"]["Message"]


def routing() -> Routing:
    spec = build_spec("tuned")
    return Routing(routing_table(spec, build_monitoring(spec)))


def urls(payload: Any) -> list[str]:
    """Every URL anywhere in a rendered payload (Slack's <url|label> included)."""
    return re.findall(r"https://[^\s|>\"]+", json.dumps(payload))


def decode_logs_insights(url: str) -> dict[str, Any]:
    """Undo the console's queryDetail notation: $ -> %, twice percent-decoded, strings '*XX."""
    base, fragment = url.split("#logsV2:logs-insights", 1)
    assert base == CONSOLE, url
    outer = unquote(fragment.replace("$", "%"))
    assert outer.startswith("?queryDetail="), outer
    detail = unquote(outer.removeprefix("?queryDetail="))
    assert detail.startswith("~(") and detail.endswith(")"), detail

    def value(raw: str) -> str:
        assert raw.startswith("'"), raw
        return unquote(raw[1:].replace("*", "%"))

    start_source = detail.index("~source~(")
    head = detail[2:start_source].split("~")
    fields = {head[i]: head[i + 1] for i in range(0, len(head), 2)}
    sources = detail[start_source + len("~source~(") : -2].split("~")
    return {
        **{k: value(v) if v.startswith("'") else v for k, v in fields.items()},
        "source": [value(s) for s in sources if s],
    }


def link(message_links: tuple[tuple[str, str], ...], prefix: str) -> str:
    [url] = [u for label, u in message_links if label.startswith(prefix)]
    return url


def test_metric_alarm_links_runbook_dashboard_and_query_over_its_window():
    # GIVEN the DLQ-depth alarm's ALARM notification as SNS delivers it to Lambda
    event = parse_alarm(sns_message("sns-alarm-dlq-depth.json"))
    # WHEN it becomes a message
    message = build_message(event, routing().route(event.name), runbook_base=RUNBOOK_BASE)
    # THEN it names the alarm, its severity, state and reason, and links the right places
    assert message.title == "ALARM: cidb-dev-dlq-depth-critical (critical)"
    assert message.previous_state == "OK"
    assert message.reason.startswith("Threshold Crossed: 1 out of the last 1 datapoints")
    assert link(message.links, "Runbook") == f"{RUNBOOK_BASE}#dlq-depth"
    assert link(message.links, "Dashboard") == f"{CONSOLE}#dashboards/dashboard/cidb-dev-queue"
    assert link(message.links, "Alarm") == f"{CONSOLE}#alarmsV2:alarm/cidb-dev-dlq-depth-critical"
    detail = decode_logs_insights(link(message.links, "Logs Insights: cidb-dev/reporter-errors"))
    # period 60 s x 1 evaluation period before the change, 5 minutes after it
    assert detail["start"] == "2026-12-02T02:09:05.000Z"
    assert detail["end"] == "2026-12-02T02:15:05.000Z"
    assert (detail["timeType"], detail["tz"]) == ("ABSOLUTE", "UTC")
    assert detail["editorString"] == load_query("reporter-errors").text
    assert detail["source"] == [f"/aws/lambda/cidb-dev-{role}" for role in ("collector", "reporter", "verifier")]


def test_composite_alarm_names_its_children_and_looks_back_half_an_hour():
    event = parse_alarm(sns_message("sns-alarm-composite.json"))
    assert event.composite and event.triggering_children == ("cidb-dev-dlq-depth-critical",)
    assert not parse_alarm(sns_message("sns-alarm-dlq-depth.json")).composite
    message = build_message(event, routing().route(event.name))
    assert message.title == "ALARM: cidb-dev-pipeline-unhealthy-page (page)"
    assert message.reason.endswith("Triggered by: cidb-dev-dlq-depth-critical.")
    assert link(message.links, "Runbook") == "docs/runbook.md#pipeline-unhealthy"
    assert link(message.links, "Dashboard") == f"{CONSOLE}#dashboards/dashboard/cidb-dev-summary"
    detail = decode_logs_insights(link(message.links, "Logs Insights: cidb-dev/trace-run"))
    assert (detail["start"], detail["end"]) == ("2026-12-02T01:40:06.000Z", "2026-12-02T02:15:06.000Z")
    assert detail["editorString"] == load_query("trace-run").text
    assert detail["source"] == [f"/aws/lambda/cidb-dev-{role}" for role in ("collector", "reporter", "verifier")]


def test_errors_alarm_of_the_collector_queries_the_collector_log_group():
    event = parse_alarm(
        sns_message("sns-alarm-dlq-depth.json").replace("dlq-depth-critical", "collector-errors-critical")
    )
    message = build_message(event, routing().route(event.name))
    detail = decode_logs_insights(link(message.links, "Logs Insights"))
    assert detail["source"] == ["/aws/lambda/cidb-dev-collector"]
    assert link(message.links, "Runbook") == "docs/runbook.md#lambda-errors"


@pytest.mark.parametrize("chat_format", CHAT_FORMATS)
@pytest.mark.parametrize("fixture", ["sns-alarm-dlq-depth.json", "sns-alarm-composite.json"])
def test_every_format_carries_title_reason_links_and_dlq_errors(chat_format, fixture):
    event = parse_alarm(sns_message(fixture))
    dlq = DlqSummary(groups=(("message body is not JSON: Expecting value at position 0", 5, 3),))
    message = build_message(event, routing().route(event.name), runbook_base=RUNBOOK_BASE, dlq=dlq)
    payload = render(chat_format, message)
    text = json.dumps(payload, ensure_ascii=False)
    assert message.title in text, f"{chat_format}: title missing"
    assert message.reason.split(" (")[0] in text.replace("&gt;", ">"), f"{chat_format}: reason missing"
    assert "3 messages: message body is not JSON: Expecting value at position 0 (received 5 times)" in text
    assert sorted(urls(payload)) == sorted(u for _, u in message.links), f"{chat_format}: links differ"


def test_slack_shape_and_escaping():
    event = parse_alarm(sns_message("sns-alarm-dlq-depth.json"))
    payload = render("slack", build_message(event, routing().route(event.name)))
    assert payload["text"] == "ALARM: cidb-dev-dlq-depth-critical (critical)"
    assert [b["type"] for b in payload["blocks"]] == ["section", "section", "context"]
    assert "OK -&gt; ALARM" in payload["blocks"][1]["text"]["text"], "Slack reads a bare > as markup"


def test_teams_is_an_adaptive_card_with_open_url_actions():
    event = parse_alarm(sns_message("sns-alarm-dlq-depth.json"))
    payload = render("teams", build_message(event, routing().route(event.name)))
    [attachment] = payload["attachments"]
    assert payload["type"] == "message"
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert {a["type"] for a in card["actions"]} == {"Action.OpenUrl"}
    assert card["body"][0]["color"] == "Attention"


def test_ok_state_and_dlq_read_failure_are_said():
    body = json.loads(sns_message("sns-alarm-dlq-depth.json"))
    body.update(NewStateValue="OK", OldStateValue="ALARM")
    event = parse_alarm(json.dumps(body))
    message = build_message(event, routing().route(event.name), dlq=DlqSummary(error="AccessDenied"))
    payload = render("json", message)
    assert payload["state"] == "OK" and payload["previous_state"] == "ALARM"
    assert payload["dlq"] == ["Top DLQ errors unavailable: AccessDenied"]
    assert event.changed_at == datetime(2026, 12, 2, 2, 10, 5, 123000, tzinfo=UTC)


def test_alarm_missing_from_the_routing_table_still_links_the_alarm():
    body = json.loads(sns_message("sns-alarm-dlq-depth.json"))
    body["AlarmName"] = "made-by-hand"
    message = build_message(parse_alarm(json.dumps(body)), routing().route("made-by-hand"))
    assert [label for label, _ in message.links] == ["Alarm"]
    assert message.severity == "unknown"


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("not json", "not JSON"),
        ("[1]", "not an object"),
        ('{"AlarmName": "x"}', "lacks ['NewStateValue', 'StateChangeTime', 'AlarmArn']"),
    ],
)
def test_not_an_alarm_says_what_is_wrong(raw, says):
    with pytest.raises(AlarmMessageError, match=re.escape(says)):
        parse_alarm(raw)


def test_google_chat_is_one_text_with_its_link_markup():
    event = parse_alarm(sns_message("sns-alarm-dlq-depth.json"))
    payload = render("googlechat", build_message(event, routing().route(event.name)))
    assert set(payload) == {"text"}
    assert payload["text"].startswith("*ALARM: cidb-dev-dlq-depth-critical (critical)*\n")
    assert "<docs/runbook.md#dlq-depth|Runbook>" in payload["text"]


def test_every_slack_text_stays_within_slacks_3000_characters():
    """The Logs Insights link is the long one; the longest query must still fit one block."""
    table = routing()
    body = json.loads(sns_message("sns-alarm-dlq-depth.json"))
    dlq = DlqSummary(groups=tuple((f"error {n} " + "x" * 150, 5, 1) for n in range(10)))
    for alarm in (table.table["prefix"] + name for name in table.table["alarms"]):
        event = parse_alarm(json.dumps({**body, "AlarmName": alarm}))
        payload = render("slack", build_message(event, table.route(alarm), runbook_base=RUNBOOK_BASE, dlq=dlq))
        for block in payload["blocks"]:
            for text in [block.get("text", {}).get("text", "")] + [e["text"] for e in block.get("elements", [])]:
                assert len(text) <= 3000, f"{alarm}: a Slack block of {len(text)} characters"
