"""Read the hash-pinned lock of what the Lambda functions import (pip's requirements format)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)$")
_HASH = re.compile(r"^--hash=sha256:(?P<digest>[0-9a-f]{64})$")


class LockError(ValueError):
    """The lock file cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class LockedPackage:
    name: str
    version: str
    hashes: frozenset[str]

    @property
    def normalized(self) -> str:
        """The name as wheel file names spell it (PEP 503 / PEP 427)."""
        return normalize(self.name)


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations and drop comments; keep the starting line number."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip() if not raw.lstrip().startswith("--hash") else raw.rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            out.append((start, pending.strip()))
        pending = ""
    return out


def read_lock(path: Path) -> tuple[LockedPackage, ...]:
    """Every package of the lock, each pinned with ``==`` and at least one sha256 hash."""
    if not path.is_file():
        raise LockError(f"{path}: lock file not found")
    packages: list[LockedPackage] = []
    for number, line in _logical_lines(path.read_text()):
        requirement, *options = line.split()
        pin = _PIN.match(requirement)
        if not pin:
            raise LockError(f"{path}:{number}: {requirement!r} is not pinned as NAME==VERSION")
        hashes = set()
        for option in options:
            digest = _HASH.match(option)
            if not digest:
                raise LockError(f"{path}:{number}: {option!r} is not a --hash=sha256:<64 hex digits> option")
            hashes.add(digest["digest"])
        if not hashes:
            raise LockError(f"{path}:{number}: {pin['name']} has no --hash; regenerate the lock with hashes")
        packages.append(LockedPackage(pin["name"], pin["version"], frozenset(hashes)))
    if not packages:
        raise LockError(f"{path}: the lock lists no packages")
    names = [p.normalized for p in packages]
    if len(set(names)) != len(names):
        raise LockError(f"{path}: a package is listed twice: {sorted(n for n in names if names.count(n) > 1)}")
    return tuple(packages)
