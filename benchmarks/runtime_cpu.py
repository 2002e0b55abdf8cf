"""CPU per hop of paigeant's runtime alone: the step runner on a transport that does nothing.

    uv run python benchmarks/runtime_cpu.py --signer none --signer hmac --hops 20000 --rounds 5

Each hop is what a worker does for one delivery (verify and decode the slip, run a no-op
step, record it, re-encode, sign and forward), driven in one coroutine with no broker, no
event loop wake-ups and no other tasks: what is left is the runtime's own CPU, the part
``hops.py`` cannot separate from its transport. Workflows have ``--steps`` steps and end
with their WorkflowCompleted event, as in ``hops.py``. Prints microseconds of CPU
(``time.process_time``) per hop, the median over ``--rounds`` interleaved rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Mapping, Sequence
from typing import Any

from _common import report
from hops import make_signer, no_op_activities

from paigeant import ActivitySpec, WorkflowDispatcher, get_transport
from paigeant.runtime.signer_choice import resolve_signer
from paigeant.runtime.step import StepRunner
from paigeant.transports.base import Delivery, Outgoing
from paigeant.transports.queues import activity_queue
from paigeant.workflow.codec import serialize_message
from paigeant.workflow.messages import PaigeantMessage, RoutingSlip, hop_message_id
from paigeant.workflow.tracing import TRACEPARENT, new_traceparent
from paigeant.workflow.wire import Wire


class _Delivery(Delivery):
    """A delivery whose settling only records what it would have forwarded."""

    def __init__(self, out: Outgoing) -> None:
        self.body = out.body
        self.message_id = out.message_id
        self.headers: Mapping[str, str] = out.headers
        self.queue = out.queue
        self.attempt = 1
        self.forwarded: Sequence[Outgoing] = ()

    async def ack(self, *, forward: Sequence[Outgoing] = ()) -> None:
        self._settlement = "ack"
        self.forwarded = forward

    async def nack(self, *, delay: float = 0.0) -> None:
        raise AssertionError("a no-op step never fails")

    async def dead_letter(self, reason: str) -> None:
        raise AssertionError(f"dead-lettered: {reason}")

    async def extend(self) -> None:
        return None


def first_hop(wire: Wire, dispatcher: WorkflowDispatcher, steps: int) -> Outgoing:
    """The sealed first hop of a workflow, as the dispatcher would publish it."""
    cid = "0" * 36
    traceparent = new_traceparent()
    message = PaigeantMessage(
        message_id=hop_message_id(cid, 0),
        correlation_id=cid,
        routing_slip=RoutingSlip(
            itinerary=[ActivitySpec(name=f"step-{i}") for i in range(steps)],
            subscriptions=dispatcher._subscriptions(),
        ),
        headers={TRACEPARENT: traceparent},
    )
    return wire.seal(
        activity_queue("step-0"),
        serialize_message(message),
        message_id=message.message_id,
        correlation_id=cid,
        traceparent=traceparent,
    )


async def measure(signer_name: str, hops: int, steps: int) -> float:
    """Run ``hops`` hops through a StepRunner and return the CPU microseconds per hop."""
    transport = get_transport("inmemory")
    wire = Wire(resolve_signer(transport, make_signer(signer_name)))
    activities = {act.name: act for act in no_op_activities(steps)}
    runner = StepRunner(transport, activities, wire, worker_id="bench:1:abcdef")
    dispatcher = WorkflowDispatcher(transport, signer="none")
    start = first_hop(wire, dispatcher, steps)
    started = time.process_time()
    done = 0
    while done < hops:
        out = start  # every workflow is the same one again: the runner keeps no state
        for _ in range(steps):
            delivery = _Delivery(out)
            await runner.handle(delivery, out.queue)
            out = delivery.forwarded[0]
        done += steps
    return (time.process_time() - started) / done * 1e6


def main() -> None:
    """Parse arguments, run the rounds interleaved and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signer", action="append", choices=["none", "hmac", "ed25519"])
    parser.add_argument("--hops", type=int, default=20_000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    signers = args.signer or ["none"]
    samples: dict[str, list[float]] = {name: [] for name in signers}
    for _ in range(args.rounds):
        for name in signers:
            samples[name].append(asyncio.run(measure(name, args.hops, args.steps)))
    runs: list[dict[str, Any]] = [
        {
            "signer": name,
            "hops": args.hops,
            "steps": args.steps,
            "cpu_us_per_hop": round(statistics.median(values), 1),
            "rounds_cpu_us_per_hop": [round(v, 1) for v in values],
        }
        for name, values in samples.items()
    ]
    summary = "; ".join(f"{r['signer']}: {r['cpu_us_per_hop']} us CPU per hop" for r in runs)
    report({"runs": runs}, summary)


if __name__ == "__main__":
    main()
