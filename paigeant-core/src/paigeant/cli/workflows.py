"""``paigeant workflows list`` and ``paigeant workflows show CID``: what the monitor recorded."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from ..store.base import MAX_LIST_LIMIT
from ..store.records import STATUSES, StepRecord, WorkflowRecord, WorkflowSummary
from ._shared import JsonFlag, StoreOption, console, fail, open_store, print_json

__all__ = ["STATUS_STYLES", "duration_text", "time_text", "workflows_app"]

workflows_app = typer.Typer(
    name="workflows",
    help="Workflows recorded by a monitor: list them, show one.",
    no_args_is_help=True,
)

#: Colours of workflow and step statuses.
STATUS_STYLES = {
    "running": "yellow",
    "retrying": "yellow",
    "compensating": "magenta",
    "completed": "green",
    "compensated": "cyan",
    "faulted": "red",
    "failed": "red",
    "terminated": "blue",
    "compensation_failed": "bold red",
    "pending": "dim",
}


def time_text(moment: datetime | None) -> str:
    """A timestamp in local time, to the second."""
    return "" if moment is None else moment.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def duration_text(seconds: float | None) -> str:
    """``0.125s``, ``12.5s``, ``3m 05s``."""
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.3f}s" if seconds < 10 else f"{seconds:.1f}s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m {rest:02d}s"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _short(value: Any, width: int = 60) -> str:
    """A one-line summary of a JSON value."""
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@workflows_app.command("list")
def list_workflows(
    status: Annotated[
        str | None, typer.Option(help=f"Only this status: {', '.join(STATUSES)}.")
    ] = None,
    activity: Annotated[str | None, typer.Option(help="Only workflows with this activity.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=MAX_LIST_LIMIT, help="Rows to show.")] = 20,
    cursor: Annotated[
        str | None, typer.Option(help="Start after this point (a previous page's next cursor).")
    ] = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List recorded workflows, newest first."""
    if status is not None and status not in STATUSES:
        fail(f"unknown status {status!r}; use one of {', '.join(STATUSES)}", 2)

    async def run() -> None:
        async with open_store(store) as opened:
            try:
                page = await opened.list(
                    status=status, activity=activity, limit=limit, cursor=cursor
                )
            except ValueError as exc:
                fail(str(exc), 2)
            counts = await opened.counts(activity=activity)
            where = opened.describe()
        if as_json:
            print_json(
                {
                    "items": [item.model_dump(mode="json") for item in page.items],
                    "next_cursor": page.next_cursor,
                    "counts": counts,
                }
            )
            return
        _print_page(page.items, page.next_cursor, counts, where)

    asyncio.run(run())


def _print_page(
    items: list[WorkflowSummary], next_cursor: str | None, counts: dict[str, int], where: str
) -> None:
    if not items:
        console.print(f"No workflows recorded in {where} match.", highlight=False)
        console.print(
            "[dim]Workflows are recorded when dispatched with monitoring on "
            "(PAIGEANT_MONITOR=1) and a monitor runs (paigeant monitor).[/dim]"
        )
        return
    table = Table(title="workflows", title_justify="left")
    for column in (
        "correlation id",
        "status",
        "activities",
        "steps",
        "started",
        "duration",
        "error",
    ):
        table.add_column(column, overflow="fold" if column == "correlation id" else "ellipsis")
    for item in items:
        names = [
            f"[bold]{name}[/bold]" if name == item.current else name for name in item.activities
        ]
        finished = item.finished_at or item.updated_at
        table.add_row(
            item.correlation_id,
            _status(item.status),
            " → ".join(names),
            f"{item.steps_completed}/{item.steps_total}",
            time_text(item.created_at),
            duration_text((finished - item.created_at).total_seconds()),
            _short(item.error, 50),
        )
    console.print(table)
    console.print(
        " · ".join(f"{status} {n}" for status, n in counts.items() if n) or "no workflows",
        style="dim",
    )
    if next_cursor:
        console.print(f"[dim]more: --cursor {next_cursor}[/dim]")


@workflows_app.command("show")
def show_workflow(
    correlation_id: Annotated[str, typer.Argument(help="The workflow's correlation id.")],
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one workflow: steps, attempts, durations, outputs, errors, compensations."""

    async def run() -> None:
        async with open_store(store) as opened:
            record = await opened.get(correlation_id)
            where = opened.describe()
        if record is None:
            fail(f"no workflow {correlation_id!r} is recorded in {where}")
        if as_json:
            data = record.model_dump(mode="json")
            data["revised_itinerary"] = [
                s.model_dump(mode="json") for s in record.revised_itinerary
            ]
            data["pending"] = record.pending
            print_json(data)
            return
        console.print(render_workflow(record))

    asyncio.run(run())


def render_workflow(record: WorkflowRecord) -> Group:
    """The ``show`` view of a record: header, steps, compensations, revisions, variables."""
    parts: list[Any] = [_header(record), _steps(record)]
    if record.compensations:
        parts.append(_compensations(record))
    if record.revisions:
        lines = [
            f"after {r.after or '?'} (step {'?' if r.step is None else r.step + 1}): added "
            + ", ".join(spec.name for spec in r.added)
            for r in record.revisions
        ]
        lines.append("as dispatched: " + " → ".join(s.name for s in record.itinerary))
        lines.append("as revised:    " + " → ".join(s.name for s in record.revised_itinerary))
        parts.append(Panel("\n".join(lines), title="itinerary revisions", title_align="left"))
    parts.append(Panel(Pretty(record.variables), title="variables", title_align="left"))
    return Group(*parts)


def _header(record: WorkflowRecord) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    end = record.finished_at or record.updated_at
    grid.add_row("workflow", record.correlation_id)
    grid.add_row("status", _status(record.status))
    grid.add_row("dispatched by", record.dispatcher or "(dispatch not recorded)")
    grid.add_row("started", time_text(record.created_at))
    grid.add_row("finished" if record.finished_at else "last event", time_text(end))
    grid.add_row("duration", duration_text((end - record.created_at).total_seconds()))
    if record.error:
        grid.add_row("error", Text(record.error, style="red"))
    if record.reason:
        grid.add_row("reason", record.reason)
    return grid


def _steps(record: WorkflowRecord) -> Table:
    table = Table(title="steps", title_justify="left")
    for column in ("#", "activity", "status", "attempts", "duration", "worker", "output", "error"):
        table.add_column(
            column, justify="right" if column in ("#", "attempts", "duration") else "left"
        )
    for step in record.steps:
        table.add_row(
            str(step.index + 1),
            step.name,
            _status(step.status),
            str(step.attempts),
            duration_text(step.duration),
            step.worker or "",
            _short(step.output),
            _step_error(step),
        )
    first_pending = max((s.index for s in record.steps), default=-1) + 2
    for offset, name in enumerate(record.pending):
        table.add_row(str(first_pending + offset), name, _status("pending"), "", "", "", "", "")
    return table


def _step_error(step: StepRecord) -> Text:
    lines = [
        f"attempt {r.attempt}: {r.error} (retried in {duration_text(r.delay)})"
        for r in step.retries
    ]
    if step.error:
        lines.append(step.error)
    return Text("\n".join(lines), style="red" if step.status == "faulted" else "yellow")


def _compensations(record: WorkflowRecord) -> Table:
    table = Table(title="compensations (in the order they ran)", title_justify="left")
    for column in ("step", "activity", "status", "worker", "at", "error"):
        table.add_column(column)
    for comp in record.compensations:
        table.add_row(
            "" if comp.step is None else str(comp.step + 1),
            comp.name,
            _status(comp.status),
            comp.worker or "",
            time_text(comp.at),
            Text(comp.error or "", style="red"),
        )
    return table
