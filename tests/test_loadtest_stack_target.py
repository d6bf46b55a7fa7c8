"""`cidb loadtest --target stack` against a "deployed" stack that lives in the emulator.

GIVEN the stack provisioned in moto from the spec, with the local runtime acting as the deployed reporter
WHEN the load test reads the stack outputs from a file and publishes to the topic
THEN it watches the queues and bucket until drained and reconciles exactly as in local mode.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from emulated import Deployment

from loadtest.emulator.esm import EventSourceMapping, MappingSettings
from loadtest.run.job import run_loadtest
from loadtest.run.local_target import function_configs
from loadtest.run.options import LoadTestOptions


def test_stack_target_publishes_watches_and_reconciles(deployment: Deployment, tmp_path: Path) -> None:
    spec, outputs, aws = deployment.spec, deployment.outputs, deployment.aws
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(outputs.to_json())
    _, reporter, _ = function_configs(spec, outputs, aws, tmp_path / "deployed-logs")
    deployed = EventSourceMapping(
        aws.client("sqs"),
        aws.counter,
        queue_url=outputs.queue_url,
        queue_arn=outputs.queue_arn,
        function=reporter,
        settings=replace(MappingSettings.from_spec(spec, concurrency=2), window_seconds=2),
    ).start()
    try:
        run = run_loadtest(
            LoadTestOptions(
                policies=120,
                target="stack",
                outputs_file=outputs_file,
                endpoint_url=aws.endpoint_url,
                out=tmp_path / "report",
                idle_seconds=2,
                deadline_seconds=300,
            )
        )
    finally:
        deployed.stop()
    s = json.loads((run.report_dir / "summary.json").read_text())
    assert (s["target"], s["policies"], s["published"]) == ("stack", 120, 120), s
    assert (s["lost"], s["duplicates"], s["unique_rows"]) == (0, 0, 120), s["missing_keys"]
    assert sum(i.batch_size - i.failed for i in deployed.state.invocations) >= 120, "the deployed reporter did the work"
    assert s["api_calls"]["by_component"]["collector"]["sns.PublishBatch"] == 12, "published with PublishBatch of 10"
    assert (run.report_dir / "report.html").is_file()


def test_missing_outputs_are_named(tmp_path: Path) -> None:
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({"topic_arn": "arn:aws:sns:us-east-1:123456789012:t"}))
    try:
        run_loadtest(LoadTestOptions(target="stack", outputs_file=outputs_file, out=tmp_path / "r"))
    except ValueError as exc:
        assert "queue_url" in str(exc) and str(outputs_file) in str(exc)
    else:
        raise AssertionError("outputs without queue_url must be rejected")
