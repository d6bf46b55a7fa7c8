"""The Lambda artifact as Pulumi inputs: the function archive and the dependency layer.

Both come from :func:`artifact.build_artifact`, built from ``lambda/requirements.lock``:
exactly the bytes that the embedded emulator runs in every load test. Pulumi passes a zip
``FileArchive`` through unchanged, and ``source_code_hash`` makes a new build a change (for
functions, ``code_sha256`` also shows code changed outside Pulumi as drift).
"""

from __future__ import annotations

import base64
import functools
from pathlib import Path

import pulumi

from artifact import Artifact, ArtifactError, build_artifact


@functools.cache
def lambda_artifact() -> Artifact:
    """The artifact for this program run; built once, shared by every function and the layer."""
    try:
        return build_artifact()
    except ArtifactError as exc:
        raise pulumi.RunError(f"cannot build the Lambda artifact: {exc}") from None


def zip_archive(path: Path) -> pulumi.FileArchive:
    return pulumi.FileArchive(str(path))


def source_code_hash(sha256_hex: str) -> str:
    """Lambda's CodeSha256 form (base64 of the raw digest), so the provider can compare it."""
    return base64.b64encode(bytes.fromhex(sha256_hex)).decode()
