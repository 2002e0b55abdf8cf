"""The workflows list (filters, counts, cursor paging) and one workflow's page."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from paigeant import WORKFLOW_STATUSES, WorkflowRecord, activity_queue

from ..context import dashboard_of
from ..render import BLANK_ROW, summary_row
from ..timeline import WIDTH, build_timeline

__all__ = ["home", "trace_page", "workflow_page", "workflows_page"]

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
_ACTIVITY = re.compile(r"[A-Za-z0-9_-]+")
_FINAL = ("completed", "faulted", "terminated", "compensation_failed")


async def home(request: Request) -> Response:
    """``/``: the workflows list."""
    return RedirectResponse(dashboard_of(request).url(request, "workflows"), status_code=303)


def _choice(request: Request, name: str) -> str | None:
    value = request.query_params.get(name, "").strip()
    return value or None


async def workflows_page(request: Request) -> Response:
    """Workflows newest first, filtered by status and activity, with counts and a cursor."""
    dashboard = dashboard_of(request)
    store = dashboard.store()
    status, activity, cursor = (_choice(request, n) for n in ("status", "activity", "cursor"))
    if status is not None and status not in WORKFLOW_STATUSES:
        raise HTTPException(
            400, f"unknown status {status!r}: use one of {', '.join(WORKFLOW_STATUSES)}"
        )
    try:
        page = await store.list(
            status=status, activity=activity, cursor=cursor, limit=dashboard.settings.page_size
        )
    except ValueError as exc:
        raise HTTPException(400, str(exc)) from None
    counts = await store.counts(activity=activity)
    rows = [
        summary_row(item, dashboard.url(request, "workflow", correlation_id=item.correlation_id))
        for item in page.items
    ]
    filters = {"status": status, "activity": activity}
    return dashboard.page(
        request,
        "workflows.html",
        nav="workflows",
        rows=rows,
        blank_row=BLANK_ROW,
        counts=counts,
        total=sum(counts.values()),
        statuses=WORKFLOW_STATUSES,
        activities=await store.activities(),
        status=status,
        activity=activity,
        cursor=cursor,
        filters=filters,
        next_url=(
            dashboard.url(request, "workflows", {**filters, "cursor": page.next_cursor})
            if page.next_cursor
            else None
        ),
        first_url=dashboard.url(request, "workflows", filters) if cursor else None,
        events_url=dashboard.url(request, "events", filters),
    )


async def workflow_page(request: Request) -> Response:
    """One workflow: timeline, steps with outputs and errors, compensations, revisions, variables."""
    dashboard = dashboard_of(request)
    store = dashboard.store()
    correlation_id = request.path_params["correlation_id"]
    record = await store.get(correlation_id)
    if record is None:
        raise HTTPException(
            404, f"no workflow {correlation_id!r} is recorded in {store.describe()}"
        )
    return dashboard.page(
        request,
        "workflow.html",
        nav="workflows",
        record=record,
        timeline=build_timeline(record, datetime.now(UTC)),
        width=WIDTH,
        finished=record.status in _FINAL,
        duration=_duration(record),
        trace_link=dashboard.settings.trace_link(record.trace_id),
        trace_url=(
            dashboard.url(request, "trace", trace_id=record.trace_id) if record.trace_id else None
        ),
        events_url=dashboard.url(request, "events", {"workflow": record.correlation_id}),
        queue_links={
            step.name: dashboard.url(request, "dead_letters", queue=activity_queue(step.name))
            for step in record.steps
            if step.status != "completed" and _ACTIVITY.fullmatch(step.name)
        },
    )


def _duration(record: WorkflowRecord) -> float:
    end = record.finished_at or record.updated_at
    return (end - record.created_at).total_seconds()


async def trace_page(request: Request) -> Response:
    """``/traces/<trace id>``: the workflow of a W3C trace, for links from a tracing tool."""
    dashboard = dashboard_of(request)
    trace_id = request.path_params["trace_id"].lower()
    if not _TRACE_ID.fullmatch(trace_id):
        raise HTTPException(400, f"{trace_id!r} is not a W3C trace id (32 hexadecimal digits)")
    record = await dashboard.store().get_by_trace(trace_id)
    if record is None:
        raise HTTPException(404, f"no recorded workflow belongs to trace {trace_id}")
    target = dashboard.url(request, "workflow", correlation_id=record.correlation_id)
    return RedirectResponse(target, status_code=303)
