"""Shared helpers for the benchmark scripts: percentiles, peak memory, JSON + summary output."""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
from typing import Any

__all__ = ["baseline_result", "peak_rss_mib", "percentile", "process_cpu_seconds", "report"]


def percentile(values: list[float], pct: float) -> float:
    """Return the ``pct`` percentile of ``values`` (0 for an empty list)."""
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(int(pct), 99) - 1]


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def process_cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds process ``pid`` has used so far (Linux ``/proc``)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def report(result: dict[str, Any], summary: str) -> None:
    """Print the JSON result on stdout and a one-line summary on stderr."""
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    print()
    print(summary, file=sys.stderr)


def baseline_result(
    name: str, workflows: int, steps: int, concurrency: int, elapsed: float, cpu: float
) -> dict[str, Any]:
    """A baseline's result in ``hops.py``'s shape (no signer, no per-hop latencies).

    ``cpu`` is this process's CPU time over ``elapsed`` (``time.process_time``).
    """
    return {
        "transport": name,
        "signer": "n/a",
        "workflows": workflows,
        "steps": steps,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "hops_per_second": round(workflows * steps / elapsed, 1),
        "workflows_per_second": round(workflows / elapsed, 1),
        "cpu_us_per_hop": round(cpu / (workflows * steps) * 1e6, 1),
        "hop_latency_p50_ms": None,
        "hop_latency_p99_ms": None,
    }
