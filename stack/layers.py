"""The dependency layer: the locked Powertools, boto3 and botocore, built by us, not a public layer.

A public layer's package versions are only known from its documentation, and a handler that
needs a newer argument fails at import on AWS alone. Our layer is built from the same lock
that the emulator runs and that ``pyproject.toml`` pins, so what deploys is what is tested.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from artifact import Artifact
from pipeline.spec import ARCHITECTURE, RUNTIME, DeploymentSpec
from stack.archive import source_code_hash, zip_archive


def dependency_layer(
    name: str, spec: DeploymentSpec, artifact: Artifact, opts: pulumi.ResourceOptions | None = None
) -> aws.lambda_.LayerVersion:
    versions = ", ".join(f"{k} {artifact.versions[k]}" for k in ("aws-lambda-powertools", "boto3", "botocore"))
    return aws.lambda_.LayerVersion(
        name,
        layer_name=spec.layer_name,
        # The layer's own hash, not the artifact's: a change to pipeline/ must not publish a new layer.
        description=f"CIDB runtime dependencies ({versions}); layer {artifact.layer_sha256[:12]}",
        code=zip_archive(artifact.layer_zip),
        source_code_hash=source_code_hash(artifact.layer_sha256),
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        opts=opts,
    )
