"""Store a benchmark as a baseline, and compare a later one with it, measure by measure."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loadtest.bench.measures import GATED

DEFAULT_TOLERANCE = 0.20


class BaselineError(ValueError):
    """A baseline file that cannot be read; the message names the file and what is wrong."""


def load_baseline(path: Path) -> dict[str, dict[str, Any]]:
    try:
        data = json.loads(path.read_text())
        return {name: dict(entry) for name, entry in data["cases"].items()}
    except FileNotFoundError:
        raise BaselineError(
            f"{path}: no such baseline file; make one with `cidb bench --save-baseline {path}`"
        ) from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BaselineError(f"{path}: not a cidb bench baseline ({type(exc).__name__}: {exc})") from None


def baseline_entry(path: Path, case: str) -> dict[str, Any] | None:
    """The baseline's entry for one case (``tuned-1500``), or None if it has none."""
    return load_baseline(path).get(case)


def save_baseline(path: Path, cases: dict[str, dict[str, Any]], machine: dict[str, Any]) -> None:
    """Write ``cases`` into the baseline, keeping the entries of cases that this run did not make."""
    kept = load_baseline(path) if path.exists() else {}
    kept.update(cases)
    body = {"saved": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine, "cases": kept}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(body, indent=2, sort_keys=True) + "\n")


def compare(
    baseline: dict[str, dict[str, Any]], current: dict[str, dict[str, Any]], tolerance: float = DEFAULT_TOLERANCE
) -> list[dict[str, Any]]:
    """One row per gated measure of every case in both; ``regressed`` when worse by more than ``tolerance``."""
    rows = []
    for name, now in current.items():
        before = baseline.get(name)
        if before is None:
            continue
        for measure, worse in GATED.items():
            old, new = before.get(measure), now.get(measure)
            if old is None or new is None:
                continue
            change = (new - old) / old if old else 0.0
            signed = change if worse == "higher" else -change
            rows.append(
                {
                    "case": name,
                    "measure": measure,
                    "baseline": old,
                    "current": new,
                    "change": round(change, 3),
                    "regressed": signed > tolerance,
                }
            )
    return rows
