"""What a benchmark records per run, and which of those numbers a baseline gates on.

The gate uses ratios and counts only (e2e over the emulator floor measured in the same run,
API calls per policy, S3 bytes written per output byte, invocations per policy): absolute
seconds differ between machines, and CI has two noisy cores.
"""

from __future__ import annotations

from typing import Any

# Measure -> the direction that is worse. Each is a ratio, so runs on different machines compare.
GATED: dict[str, str] = {
    "e2e_over_floor": "higher",
    "api_calls_per_policy": "higher",
    "bytes_per_output_byte": "higher",
    "invocations_per_policy": "higher",
}


def measures(summary: dict[str, Any], peak_rss_mb: float) -> dict[str, Any]:
    policies = summary["policies"]
    e2e, floor = summary["e2e_seconds"], summary.get("emulator_floor_seconds")
    return {
        "profile": summary["profile"],
        "policies": policies,
        "latency": summary.get("latency", "none"),
        "e2e_seconds": e2e,
        "floor_seconds": floor,
        "floor_source": summary.get("floor_source"),
        "e2e_over_floor": round(e2e / floor, 3) if floor else None,
        "records_per_second": round(summary["unique_rows"] / e2e, 1) if e2e else None,
        "api_calls_per_policy": summary["api_calls"]["per_policy"],
        "bytes_per_output_byte": summary["s3_bytes_written_per_output_byte"],
        "lock_wait_p50_ms": summary["lock"]["wait_ms_p50"],
        "lock_wait_p99_ms": summary["lock"]["wait_ms_p99"],
        "reporter_invocations": summary["reporter_invocations"],
        "invocations_per_policy": round(summary["reporter_invocations"] / policies, 4),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "lost": summary["lost"],
        "duplicates": summary["duplicates"],
        "dlq": summary["dlq"],
    }
