"""Reuse an emulator floor measured earlier on the same machine, emulator version and size.

Measuring the floor costs about as long as the run itself, and it depends only on the
machine, moto's version, Python's, the number of policies (and their sizes, fixed by the
seed), the number of consumers and the latency profile (under ``aws`` the floor's own calls wait as the
run's do). So the first run of a size measures it and stores it; later runs reuse it and
the summary says so (``floor_source``). ``--measure-floor`` measures it again.

Environment variables: ``CIDB_CACHE_DIR`` (default ``~/.cache/cidb``).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path


def cache_file() -> Path:
    return Path(os.environ.get("CIDB_CACHE_DIR") or Path.home() / ".cache" / "cidb") / "emulator-floor.json"


def floor_key(policies: int, seed: int, consumers: int, latency: str = "none") -> str:
    moto = importlib.metadata.version("moto")
    return (
        f"{platform.node()}|moto {moto}|python {platform.python_version()}|{policies} policies|seed {seed}"
        f"|{consumers} consumers|latency {latency}"
    )


def cached_floor(
    policies: int,
    seed: int,
    consumers: int,
    measure: Callable[[], dict[str, float]],
    *,
    remeasure: bool = False,
    latency: str = "none",
) -> dict[str, object]:
    """The floor for this size and latency profile on this machine: from the cache, or measured now and stored."""
    path, key = cache_file(), floor_key(policies, seed, consumers, latency)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if not remeasure and key in cache:
        entry = cache[key]
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(entry["measured_at"]))
        return {**entry["floor"], "floor_source": f"cached: measured {when} on this machine ({key})"}
    floor = measure()
    cache[key] = {"floor": floor, "measured_at": time.time()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, indent=2))
    except OSError:
        pass  # an unwritable cache only costs the next run a measurement
    return {**floor, "floor_source": "measured in this run"}
