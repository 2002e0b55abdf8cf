"""Queues (depth, in flight, delayed, dead), a queue's dead letters, and redrive with a confirmation.

Reading dead letters uses ``paigeant.DeadLetters``, as ``paigeant dead-letters`` does: nothing is
moved or lost by looking, and a redrive republishes to the source queue for the worker to verify
again.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from paigeant import (
    DeadLetter,
    DeadLetters,
    QueueStats,
    dead_letter_queue,
    holds_messages,
    known_queues,
    queue_overview,
    queue_stats,
)

from ..context import Dashboard, dashboard_of
from ..render import time_text
from ..security import check_csrf

__all__ = ["confirm_redrive", "dead_letters_page", "queues_page", "redrive"]

logger = logging.getLogger(__name__)

#: Most dead letters one page reads (oldest first).
LIST_LIMIT = 200


async def queues_page(request: Request) -> Response:
    """Every known queue with what it holds, where the transport can tell."""
    dashboard = dashboard_of(request)
    store = dashboard.store()
    if dashboard.transport is None:
        return dashboard.page(
            request, "queues.html", nav="queues", rows=[], note=dashboard.transport_note
        )
    transport = await dashboard.queue_transport()
    rows = await queue_overview(transport, await known_queues(store))
    return dashboard.page(
        request,
        "queues.html",
        nav="queues",
        note=None,
        transport_name=type(transport).__name__,
        rows=[_queue_row(dashboard, request, queue, stats) for queue, stats in rows],
    )


def _queue_row(
    dashboard: Dashboard, request: Request, queue: str, stats: QueueStats | None
) -> dict[str, Any]:
    return {
        "queue": queue,
        "stats": stats,
        "dead_letters_url": dashboard.url(request, "dead_letters", queue=queue),
    }


async def _known_queue(dashboard: Dashboard, queue: str) -> QueueStats | None:
    """The stats of ``queue``; 404 when no recorded workflow uses it and it holds nothing."""
    transport = await dashboard.queue_transport()
    stats = await queue_stats(transport, queue)
    if queue not in await known_queues(dashboard.store()) and not holds_messages(stats):
        raise HTTPException(
            404, f"unknown queue {queue!r}: no recorded workflow uses it and it holds nothing"
        )
    return stats


def _letter_row(
    letter: DeadLetter, queue: str, dashboard: Dashboard, request: Request
) -> dict[str, Any]:
    # The message signature is no secret, but it is noise here (and records never show it).
    headers = {k: v for k, v in letter.headers.items() if "signature" not in k.lower()}
    return {
        "letter": letter,
        "dead_lettered_at": _moment(letter.dead_lettered_at),
        "headers": headers,
        "body": letter.content(),  # an on-behalf-of token in the body is redacted
        "workflow_url": (
            dashboard.url(request, "workflow", correlation_id=letter.correlation_id)
            if letter.correlation_id
            else None
        ),
        "redrive_url": dashboard.url(request, "confirm_redrive", {"id": letter.id}, queue=queue),
    }


def _moment(raw: str | None) -> str:
    """A dead-letter time header as the pages show times (UTC), or as it came if not ISO 8601."""
    if not raw:
        return ""
    try:
        return time_text(datetime.fromisoformat(raw))
    except ValueError:
        return raw


async def dead_letters_page(request: Request) -> Response:
    """The dead letters of one queue, oldest first, each with a redrive button."""
    dashboard = dashboard_of(request)
    queue = request.path_params["queue"]
    stats = await _known_queue(dashboard, queue)
    letters = await DeadLetters(await dashboard.queue_transport(), queue).list(LIST_LIMIT)
    return dashboard.page(
        request,
        "dead_letters.html",
        nav="queues",
        queue=queue,
        dead_letter_queue=dead_letter_queue(queue),
        stats=stats,
        limit=LIST_LIMIT,
        letters=[_letter_row(letter, queue, dashboard, request) for letter in letters],
        flash=request.session.pop("flash", None),
        redrive_all_url=dashboard.url(request, "confirm_redrive", {"all": "1"}, queue=queue),
    )


async def confirm_redrive(request: Request) -> Response:
    """The confirmation step: what would be redriven, and the button (a POST) that does it."""
    dashboard = dashboard_of(request)
    queue = request.path_params["queue"]
    await _known_queue(dashboard, queue)
    everything = request.query_params.get("all") == "1"
    wanted = set(request.query_params.getlist("id"))
    if not everything and not wanted:
        raise HTTPException(400, "choose the dead letters to redrive (id=...) or all=1")
    letters = await DeadLetters(await dashboard.queue_transport(), queue).list(LIST_LIMIT)
    chosen = [letter for letter in letters if everything or letter.id in wanted]
    return dashboard.page(
        request,
        "confirm_redrive.html",
        nav="queues",
        queue=queue,
        everything=everything,
        letters=[_letter_row(letter, queue, dashboard, request) for letter in chosen],
        missing=sorted(wanted - {letter.id for letter in chosen}),
        action=dashboard.url(request, "redrive", queue=queue),
        cancel=dashboard.url(request, "dead_letters", queue=queue),
    )


async def redrive(request: Request) -> Response:
    """POST: republish the chosen dead letters (or all) to their queue, then show the queue."""
    dashboard = dashboard_of(request)
    form = await check_csrf(request)
    queue = request.path_params["queue"]
    await _known_queue(dashboard, queue)
    everything = form.get("all") == "1"
    ids = {value for value in form.getlist("id") if isinstance(value, str)}
    if not everything and not ids:
        raise HTTPException(400, "choose the dead letters to redrive (id=...) or all=1")
    transport = await dashboard.queue_transport()
    redriven = await DeadLetters(transport, queue).redrive(None if everything else ids)
    missing = sorted(ids - {letter.id for letter in redriven})
    logger.info(
        "dashboard redrove %d dead letter(s) of %s: %s",
        len(redriven),
        queue,
        ", ".join(letter.id for letter in redriven),
    )
    message = f"Redrove {len(redriven)} dead letter{'s' if len(redriven) != 1 else ''} to {queue}."
    if missing:
        message += f" Not found (redriven or read by someone else meanwhile): {', '.join(missing)}."
    request.session["flash"] = message
    return RedirectResponse(dashboard.url(request, "dead_letters", queue=queue), status_code=303)
