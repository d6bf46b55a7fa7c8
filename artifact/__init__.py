"""The Lambda artifact: the function archive and its dependency layer, built from exact pins.

The Pulumi program deploys it and the embedded emulator runs it, so a library that differs
on Lambda fails in the load test first.

Example::

    >>> artifact = build_artifact()
    >>> artifact.versions["aws-lambda-powertools"]
    '3.37.0'
"""

from artifact.build import DEFAULT_LOCK, Artifact, ArtifactError, build_artifact
from artifact.lockfile import LockedPackage, LockError, read_lock

__all__ = [
    "DEFAULT_LOCK",
    "Artifact",
    "ArtifactError",
    "LockError",
    "LockedPackage",
    "build_artifact",
    "read_lock",
]
