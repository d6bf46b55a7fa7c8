"""Walk nested inputs (dicts, lists) for the strings in them, for tests that scan ARNs and names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string inside ``value``, with its path from ``where``."""
    if isinstance(value, str):
        yield where, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from strings(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from strings(item, f"{where}[{index}]")
