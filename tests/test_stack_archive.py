"""The stack deploys exactly the built artifact: its function zip, and its own layer."""

from __future__ import annotations

import pytest
from pulumi_mocks import Deployment, deploy

from pipeline.spec import ARCHITECTURE, RUNTIME
from stack.archive import lambda_artifact, source_code_hash

LAYER = "aws:lambda/layerVersion:LayerVersion"


@pytest.fixture(scope="module")
def tuned() -> Deployment:
    return deploy()


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_every_function_ships_the_built_function_zip(tuned: Deployment, key: str) -> None:
    artifact, function = lambda_artifact(), tuned.function(key)
    assert function.state["code"].path == str(artifact.function_zip), f"{function.urn} code archive"
    assert function.state["sourceCodeHash"] == source_code_hash(artifact.function_sha256), function.urn


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_every_function_uses_only_the_stacks_dependency_layer(tuned: Deployment, key: str) -> None:
    layer, function = tuned.one(LAYER), tuned.function(key)
    assert function.state["layers"] == [layer.state["arn"]], f"{function.urn} must use {layer.urn} and no other layer"


def test_the_layer_is_the_built_layer_zip_for_the_runtime(tuned: Deployment) -> None:
    artifact, layer = lambda_artifact(), tuned.one(LAYER)
    assert layer.state["code"].path == str(artifact.layer_zip), layer.urn
    assert layer.state["sourceCodeHash"] == source_code_hash(artifact.layer_sha256), layer.urn
    assert layer.state["compatibleRuntimes"] == [RUNTIME], layer.urn
    assert layer.state["compatibleArchitectures"] == [ARCHITECTURE], layer.urn
    assert artifact.versions["aws-lambda-powertools"] in layer.state["description"], layer.urn


@pytest.mark.parametrize("key", ["collector", "reporter", "verifier"])
def test_log_levels_are_explicit_so_a_second_up_shows_no_diff(tuned: Deployment, key: str) -> None:
    spec, function = tuned.settings.spec, tuned.function(key)
    logging = function.state["loggingConfig"]
    assert logging["logFormat"] == "JSON", function.urn
    assert (logging["applicationLogLevel"], logging["systemLogLevel"]) == (spec.log_level, spec.system_log_level), (
        f"{function.urn} must set both log levels explicitly"
    )
