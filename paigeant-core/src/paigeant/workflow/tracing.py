"""W3C trace context: every hop carries a ``traceparent`` continued from the previous one."""

from __future__ import annotations

import random
import re

__all__ = ["TRACEPARENT", "child_traceparent", "new_traceparent", "trace_id"]

TRACEPARENT = "traceparent"
_PATTERN = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")


def _random_hex(bits: int) -> str:
    """A random, non-zero id of ``bits`` bits as lowercase hex.

    Trace and span ids need uniqueness, not secrecy (OpenTelemetry's SDK draws them the same
    way), so this skips the system CSPRNG and its syscall on every hop.
    """
    return f"{random.getrandbits(bits) or 1:0{bits // 4}x}"


def new_traceparent() -> str:
    """Start a new trace: a fresh trace id and span id, sampled."""
    return f"00-{_random_hex(128)}-{_random_hex(64)}-01"


def child_traceparent(parent: str | None) -> str:
    """Continue ``parent``'s trace with a new span id; start a new trace if it is missing or bad."""
    match = _PATTERN.fullmatch(parent or "")
    if match is None:
        return new_traceparent()
    return f"00-{match.group(1)}-{_random_hex(64)}-{match.group(3)}"


def trace_id(traceparent: str | None) -> str | None:
    """Return the trace id of ``traceparent``, or None if it is not valid."""
    match = _PATTERN.fullmatch(traceparent or "")
    return match.group(1) if match else None
