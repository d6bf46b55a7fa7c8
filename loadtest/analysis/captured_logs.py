"""The handlers' captured output: one JSON-lines file per function, as CloudWatch Logs would hold it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

EMF_KEY = "_aws"


def merge_instance_logs(log_dir: Path) -> list[Path]:
    """Fold ``<fn>/<instance>.jsonl`` files into ``<fn>.jsonl``, ordered by time."""
    merged = []
    for fn_dir in sorted(p for p in log_dir.iterdir() if p.is_dir()):
        lines = []
        for part in sorted(fn_dir.glob("*.jsonl")):
            lines += [(line_time(line), line) for line in part.read_text().splitlines() if line.strip()]
        target = log_dir / f"{fn_dir.name}.jsonl"
        target.write_text("".join(line + "\n" for _, line in sorted(lines, key=lambda item: item[0])))
        merged.append(target)
    return merged


def line_time(line: str) -> float:
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return 0.0
    if EMF_KEY in record:
        return record[EMF_KEY]["Timestamp"] / 1000
    stamp = record.get("timestamp") or record.get("time")
    return pd.Timestamp(stamp).timestamp() if stamp else 0.0


def iter_records(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


def function_lines(log_dir: Path, function_name: str) -> list[dict[str, Any]]:
    """One function's log lines from every instance's file, without its EMF metric blobs."""
    paths = sorted((log_dir / function_name).glob("*.jsonl"))
    return [record for path in paths for record in iter_records(path) if EMF_KEY not in record]


def emf_datapoints(paths: list[Path]) -> pd.DataFrame:
    """Every value of every EMF metric, with its dimensions, as CloudWatch would ingest it."""
    rows = []
    for path in paths:
        for record in iter_records(path):
            meta = record.get(EMF_KEY)
            if not meta:
                continue
            when = pd.Timestamp(meta["Timestamp"], unit="ms", tz="UTC")
            for directive in meta["CloudWatchMetrics"]:
                dims = {d: record[d] for group in directive["Dimensions"] for d in group}
                for metric in directive["Metrics"]:
                    values = record.get(metric["Name"], [])
                    for value in values if isinstance(values, list) else [values]:
                        rows.append(
                            {
                                "time": when,
                                "namespace": directive["Namespace"],
                                "metric_name": metric["Name"],
                                "dimensions": json.dumps(dims, sort_keys=True),
                                "value": float(value),
                                "request_id": record.get("request_id"),
                            }
                        )
    columns = ["time", "namespace", "metric_name", "dimensions", "value", "request_id"]
    return pd.DataFrame(rows, columns=columns)
