"""``paigeant dead-letters list|show|redrive`` and ``paigeant queues``: operating on the broker."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer
from rich.panel import Panel
from rich.pretty import Pretty
from rich.table import Table
from rich.text import Text

from ..errors import PaigeantError
from ..store.base import WorkflowStore
from ..store.dead_letters import DeadLetter, DeadLetters
from ..transports.base import QueueStats, Transport
from ..transports.queues import (
    ACTIVITY_NAME_PATTERN,
    activity_queue,
    compensate_queue,
    dead_letter_queue,
    monitor_queue,
)
from ._shared import (
    JsonFlag,
    StoreOption,
    TransportOption,
    TransportOptions,
    console,
    fail,
    make_store,
    make_transport,
    print_json,
    refuse_in_memory,
)

__all__ = ["dead_letters_app", "queues", "resolve_queue"]

dead_letters_app = typer.Typer(
    name="dead-letters",
    help="Dead letters of a queue: list them, show one, redrive them to their queue.",
    no_args_is_help=True,
)

QueueArgument = Annotated[
    str, typer.Argument(help="An activity name (its queue) or a full queue name.", metavar="QUEUE")
]


def resolve_queue(value: str) -> str:
    """The full queue name for an activity name or a queue name (a dead-letter queue's source)."""
    if ACTIVITY_NAME_PATTERN.fullmatch(value):
        return activity_queue(value)
    marker = dead_letter_queue("")
    source = value[: -len(marker)] if marker and value.endswith(marker) else value
    return source if dead_letter_queue(source) == value else value


async def _known_queues(store: WorkflowStore) -> dict[str, bool]:
    """Every activity queue the store's workflows use (True: a compensation queue), and the monitor's."""
    known = {monitor_queue(): False}
    for name in await store.activities():
        known[activity_queue(name)] = False
        known[compensate_queue(name)] = True
    return known


async def _stats(transport: Transport, queue: str) -> QueueStats | None:
    try:
        return await transport.stats(queue)
    except NotImplementedError:
        return None


async def _check_known(transport: Transport, queue: str, store_name: str | None) -> None:
    """Exit with one line for a queue nobody knows: no recorded workflow uses it, and it is empty."""
    store = make_store(store_name)
    try:
        await store.connect()
    except PaigeantError:
        return  # no store to ask: trust the name
    try:
        known = await _known_queues(store)
    finally:
        await store.close()
    if queue in known:
        return
    stats = await _stats(transport, queue)
    if stats is not None and (stats.ready or stats.in_flight or stats.delayed or stats.dead):
        return
    names = ", ".join(sorted(known))
    fail(
        f"unknown queue {queue!r}: no recorded workflow uses it"
        + (" and it holds no messages" if stats is not None else "")
        + f" (known queues: {names})"
    )


def _open_dead_letters(
    queue: str, transport: str | None, option: list[str] | None, command: str
) -> tuple[Transport, str]:
    chosen = make_transport(transport, option)
    refuse_in_memory(chosen, command)
    return chosen, resolve_queue(queue)


@dead_letters_app.command("list")
def list_dead_letters(
    queue: QueueArgument,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most dead letters to read.")] = 100,
    transport: TransportOption = None,
    option: TransportOptions = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """List the dead letters of QUEUE, oldest first (they stay where they are)."""
    chosen, source = _open_dead_letters(queue, transport, option, "dead-letters list")

    async def run() -> list[DeadLetter]:
        async with chosen:
            await _check_known(chosen, source, store)
            return await DeadLetters(chosen, source).list(limit)

    letters = asyncio.run(run())
    if as_json:
        print_json([_without_body(letter) for letter in letters])
        return
    if not letters:
        console.print(f"No dead letters in {dead_letter_queue(source)}.", highlight=False)
        return
    table = Table(title=f"dead letters of {source}", title_justify="left")
    for column in ("id", "correlation id", "reason", "attempt", "dead-lettered at", "bytes"):
        table.add_column(column, overflow="fold")
    for letter in letters:
        table.add_row(
            letter.id,
            letter.correlation_id or "",
            Text(letter.reason, style="red"),
            "" if letter.attempt is None else str(letter.attempt),
            letter.dead_lettered_at or "",
            str(len(letter.body)),
        )
    console.print(table)
    console.print(f"[dim]redrive: paigeant dead-letters redrive {queue} ID | --all[/dim]")


def _without_body(letter: DeadLetter) -> dict[str, object]:
    data = letter.to_dict()
    data.pop("body")
    return data


@dead_letters_app.command("show")
def show_dead_letter(
    queue: QueueArgument,
    dead_letter_id: Annotated[str, typer.Argument(help="The dead letter's id.", metavar="ID")],
    transport: TransportOption = None,
    option: TransportOptions = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show one dead letter: reason, headers and body (an on-behalf-of token is redacted)."""
    chosen, source = _open_dead_letters(queue, transport, option, "dead-letters show")

    async def run() -> DeadLetter | None:
        async with chosen:
            await _check_known(chosen, source, store)
            return await DeadLetters(chosen, source).get(dead_letter_id)

    letter = asyncio.run(run())
    if letter is None:
        fail(f"no dead letter {dead_letter_id!r} in {dead_letter_queue(source)}")
    if as_json:
        print_json(letter.to_dict())
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for label, value in letter.to_dict().items():
        if label not in ("headers", "body"):
            grid.add_row(label.replace("_", " "), "" if value is None else str(value))
    console.print(grid)
    console.print(Panel(Pretty(dict(letter.headers)), title="headers", title_align="left"))
    console.print(Panel(Pretty(letter.content()), title="body", title_align="left"))


@dead_letters_app.command("redrive")
def redrive_dead_letters(
    queue: QueueArgument,
    ids: Annotated[
        list[str] | None, typer.Argument(help="Dead letter ids.", metavar="[ID]...")
    ] = None,
    redrive_all: Annotated[bool, typer.Option("--all", help="Redrive every dead letter.")] = False,
    transport: TransportOption = None,
    option: TransportOptions = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Send dead letters back to their queue as new messages (attempt 1); workers verify them again."""
    if bool(ids) == redrive_all:
        fail("give the ids of the dead letters to redrive, or --all (not both)", 2)
    chosen, source = _open_dead_letters(queue, transport, option, "dead-letters redrive")

    async def run() -> list[DeadLetter]:
        async with chosen:
            await _check_known(chosen, source, store)
            return await DeadLetters(chosen, source).redrive(
                None if redrive_all else set(ids or [])
            )

    redriven = asyncio.run(run())
    missing = sorted(set(ids or []) - {letter.id for letter in redriven})
    if as_json:
        print_json({"redriven": [_without_body(letter) for letter in redriven], "missing": missing})
    else:
        for letter in redriven:
            console.print(f"redriven {letter.id} → {letter.source_queue}", highlight=False)
        console.print(f"{len(redriven)} dead letter(s) redriven from {dead_letter_queue(source)}.")
    if missing:
        fail(f"no dead letter {', '.join(map(repr, missing))} in {dead_letter_queue(source)}")


def queues(
    names: Annotated[
        list[str] | None,
        typer.Argument(
            help="Activity or queue names (default: every activity recorded).", metavar="[QUEUE]..."
        ),
    ] = None,
    transport: TransportOption = None,
    option: TransportOptions = None,
    store: StoreOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Show depth, in flight, delayed and dead per queue (where the transport reports them)."""
    chosen = make_transport(transport, option)
    refuse_in_memory(chosen, "queues")

    async def run() -> list[tuple[str, QueueStats | None]]:
        explicit = [resolve_queue(name) for name in names or []]
        if not explicit:
            opened = make_store(store)
            try:
                await opened.connect()
                known = await _known_queues(opened)
            except PaigeantError as exc:
                fail(f"{exc}; or name the queues: paigeant queues ACTIVITY...")
            finally:
                await opened.close()
        async with chosen:
            if explicit:
                return [(queue, await _stats(chosen, queue)) for queue in explicit]
            rows = []
            for queue, compensation in sorted(known.items()):
                stats = await _stats(chosen, queue)
                if compensation and (stats is None or not any(_counts(stats))):
                    continue  # compensation queues only when they hold something
                rows.append((queue, stats))
            return rows

    rows = asyncio.run(run())
    if as_json:
        print_json(
            [
                {
                    "queue": queue,
                    **(
                        dict(zip(_COLUMNS, _counts(stats), strict=True))
                        if stats
                        else {"supported": False}
                    ),
                }
                for queue, stats in rows
            ]
        )
        return
    table = Table(title=f"queues on {type(chosen).__name__}", title_justify="left")
    table.add_column("queue")
    for column in _COLUMNS:
        table.add_column(column.replace("_", " "), justify="right")
    for queue, stats in rows:
        if stats is None:
            table.add_row(queue, Text("not supported", style="dim"), "", "", "")
        else:
            table.add_row(queue, *(str(n) for n in _counts(stats)))
    console.print(table)


_COLUMNS = ("ready", "in_flight", "delayed", "dead")


def _counts(stats: QueueStats) -> tuple[int, int, int, int]:
    return (stats.ready, stats.in_flight, stats.delayed, stats.dead)
