"""``/events``: server-sent events that keep an open page current without reloading it.

A workflows page (``?status=&activity=``) gets ``workflow`` events (the changed row as plain
text fields, and whether it still matches the page's filters) and ``counts`` events; a workflow's
page (``?workflow=<cid>``) gets ``changed`` when that workflow changes. The page's script puts
the text in with ``textContent``: event data never becomes HTML.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from paigeant import WorkflowRecord, WorkflowSummary

from ..context import Dashboard, dashboard_of
from ..live import sse_event
from ..render import summary_row

__all__ = ["KEEPALIVE_SECONDS", "events"]

#: Seconds between comments on an idle stream (keeps proxies from closing it, finds dead clients).
KEEPALIVE_SECONDS = 15.0
#: Seconds a stream gathers changes before it sends them (and new counts) together.
COALESCE_SECONDS = 0.25


class _Filter:
    def __init__(self, request: Request) -> None:
        params = request.query_params
        self.status = params.get("status") or None
        self.activity = params.get("activity") or None
        self.workflow = params.get("workflow") or None

    def matches(self, item: WorkflowSummary) -> bool:
        if self.status is not None and item.status != self.status:
            return False
        return self.activity is None or self.activity in item.activities


async def events(request: Request) -> Response:
    """The event stream of one open page."""
    dashboard = dashboard_of(request)
    dashboard.store()  # a store that is down is an error page, not a stream that says nothing
    return StreamingResponse(
        _stream(dashboard, request, _Filter(request)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream(dashboard: Dashboard, request: Request, wanted: _Filter) -> AsyncIterator[bytes]:
    yield b"retry: 3000\n\n"
    with dashboard.hub.subscribe() as subscription:
        yield sse_event("ready", {})
        while True:
            batch = await subscription.batch(KEEPALIVE_SECONDS)
            if batch is None:
                return  # the server is stopping
            if subscription.overflowed:
                yield sse_event("reload", {"reason": "too many changes at once"})
                return
            if not batch:
                yield b": keepalive\n\n"
                continue
            for chunk in await _changes(dashboard, request, wanted, batch):
                yield chunk
            await asyncio.sleep(COALESCE_SECONDS)


async def _changes(
    dashboard: Dashboard, request: Request, wanted: _Filter, batch: list[WorkflowRecord]
) -> list[bytes]:
    if wanted.workflow is not None:
        changed = [r for r in batch if r.correlation_id == wanted.workflow]
        return [sse_event("changed", {"status": changed[-1].status})] if changed else []
    chunks = []
    for record in batch:
        summary = record.summary()
        href = dashboard.url(request, "workflow", correlation_id=record.correlation_id)
        row = summary_row(summary, href)
        chunks.append(sse_event("workflow", {"match": wanted.matches(summary), "row": row}))
    try:
        counts = await dashboard.store().counts(activity=wanted.activity)
    except Exception:  # the store went away: the rows still go out, the counts next time
        return chunks
    chunks.append(sse_event("counts", {"counts": counts, "total": sum(counts.values())}))
    return chunks
