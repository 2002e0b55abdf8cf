"""Turning records into text: the Jinja2 environment (autoescape always on) and the formatters that
the templates and the live updates share, so a row looks the same however it reached the page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2

from paigeant import WorkflowSummary

__all__ = [
    "BLANK_ROW",
    "Folded",
    "duration_text",
    "fold",
    "make_environment",
    "path_segment",
    "pretty",
    "short",
    "size_text",
    "summary_row",
    "time_text",
]

TEMPLATES = Path(__file__).parent / "templates"

#: A value longer than this many lines or characters is folded behind a <details>.
FOLD_LINES = 14
FOLD_CHARS = 1500
_PREVIEW_LINES = 6


def time_text(moment: datetime | None) -> str:
    """``2026-12-01 10:22:03`` in UTC (the zone the page's column headers name)."""
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def iso_text(moment: datetime | None) -> str:
    """The ISO 8601 form of ``moment`` for ``<time datetime=...>``."""
    return "" if moment is None else moment.astimezone(UTC).isoformat()


def duration_text(seconds: float | None) -> str:
    """``125 ms``, ``2.50 s``, ``12.5 s``, ``3m 05s``, ``2h 03m``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {rest:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def size_text(size: int) -> str:
    """``812 B``, ``4.2 kB``, ``1.3 MB``."""
    if size < 1000:
        return f"{size} B"
    if size < 1_000_000:
        return f"{size / 1000:.1f} kB"
    return f"{size / 1_000_000:.1f} MB"


def pretty(value: Any) -> str:
    """A value as people read it: text as itself, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


def short(value: Any, width: int = 80) -> str:
    """One line of at most ``width`` characters summing up ``value``."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@dataclass(frozen=True)
class Folded:
    """A value's text, and a preview of it when it is too long to show unfolded."""

    text: str
    preview: str | None
    lines: int

    @property
    def size(self) -> str:
        """The text's size for the fold's label."""
        return size_text(len(self.text.encode()))


def fold(value: Any) -> Folded:
    """``value`` as text, with a preview when it is longer than FOLD_LINES or FOLD_CHARS."""
    text = pretty(value)
    lines = text.splitlines() or [""]
    if len(lines) <= FOLD_LINES and len(text) <= FOLD_CHARS:
        return Folded(text, None, len(lines))
    preview = "\n".join(lines[:_PREVIEW_LINES])
    if len(preview) > 400:
        preview = preview[:400]
    return Folded(text, preview + " …", len(lines))


def path_segment(value: str) -> str:
    """``value`` percent-encoded as one URL path segment (``/``, ``?`` and ``#`` included)."""
    return quote(value, safe="")


def summary_row(item: WorkflowSummary, href: str) -> dict[str, Any]:
    """What the workflows table shows of ``item``, as plain text, for the template and live JSON.

    A workflow still running has run until now; any other until its last event.
    """
    active = item.finished_at is None and item.status in ("running", "compensating")
    finished = item.finished_at or (
        max(datetime.now(UTC), item.updated_at) if active else item.updated_at
    )
    return {
        "correlation_id": item.correlation_id,
        "href": href,
        "status": item.status,
        "activities": item.activities,
        "current": item.current,
        "steps": f"{item.steps_completed}/{item.steps_total}",
        "started": time_text(item.created_at),
        "started_iso": iso_text(item.created_at),
        "duration": duration_text((finished - item.created_at).total_seconds()),
        "error": short(item.error, 90),
        "error_full": item.error or "",
    }


#: The row the live script clones for a workflow that appears (filled in with textContent).
BLANK_ROW: dict[str, Any] = {
    "correlation_id": "",
    "href": "",
    "status": "running",
    "activities": [],
    "current": None,
    "steps": "",
    "started": "",
    "started_iso": "",
    "duration": "",
    "error": "",
    "error_full": "",
}


def make_environment() -> jinja2.Environment:
    """The templates' environment: autoescape on for every template, undefined names an error."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # not select_autoescape(): that escapes only *.html/*.htm/*.xml names
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        duration=duration_text,
        time=time_text,
        iso=iso_text,
        short=short,
        size=size_text,
        segment=path_segment,
    )
    env.globals.update(fold=fold)
    return env
