"""Workflow hop throughput: N workflows of K no-op steps through real workers.

    uv run python benchmarks/hops.py --transport inmemory --workflows 2000 --steps 5 --concurrency 64
    uv run python benchmarks/hops.py --signer none --signer hmac --signer ed25519 --rounds 5
    uv run python benchmarks/hops.py --envelope
    uv run --group bench python benchmarks/hops.py --transport redis --baselines
    uv run --group bench python benchmarks/hops.py --transport nats --baselines
    uv run --group bench python benchmarks/hops.py --transport nats --baselines \
        --broker-pid $(pgrep -x nats-server)
    uv run --group bench python benchmarks/hops.py --transport nats --baselines \
        --completion wait --completion count

Prints JSON (hops/s, workflows/s, this process's CPU per hop, with ``--broker-pid`` the
broker's too, p50/p99 per-hop latency, peak RSS) and one summary line per configuration; with
several ``--signer`` (or ``--completion``) values, also each one's ratio to the first; with
``--baselines``, each paigeant configuration's ratio to each baseline within rounds (the
targets: at least 0.7 of the raw loop, ahead of FastStream), both completions by default.
``--completion count`` measures what the baselines measure: five messages per five-step
workflow, dispatched with ``results=False`` and counted in the last step; the default ``wait``
also sends each workflow's WorkflowCompleted back to the dispatcher (a sixth message).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import importlib
import os
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from _common import peak_rss_mib, percentile, process_cpu_seconds, report

from paigeant import (
    ActivityContext,
    ActivitySpec,
    Worker,
    WorkflowDispatcher,
    activity,
    get_transport,
)
from paigeant.security.signer import Signer
from paigeant.workflow.codec import encode_message
from paigeant.workflow.messages import PaigeantMessage, RoutingSlip, hop_message_id


def make_signer(name: str) -> Signer | str:
    """Return the signer for ``name`` with throwaway keys (``none`` turns signing off)."""
    if name == "none":
        return "none"
    if name == "hmac":
        from paigeant.security.hmac_signer import HmacSigner

        return HmacSigner(secrets.token_hex(32), key_id="bench")
    if name == "ed25519":
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from paigeant import get_signer

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return get_signer("ed25519", private_key=pem.decode(), key_id="bench")
    raise SystemExit(f"unknown signer {name!r}: use none, hmac or ed25519")


def no_op_activities(steps: int, on_last: Callable[[], None] | None = None) -> list[Any]:
    """K distinct no-op activities, so every hop crosses queues; ``on_last`` runs in the last."""
    activities = []
    for i in range(steps):
        last = on_last if i == steps - 1 else None

        async def step(ctx: ActivityContext, last: Callable[[], None] | None = last) -> None:
            if last is not None:
                last()

        activities.append(activity(f"step-{i}")(step))
    return activities


class Finishes:
    """Counts workflows reaching their last step; ``done`` is set at ``expected`` of them."""

    def __init__(self) -> None:
        self.expected: int | None = None
        self.count = 0
        self.done = asyncio.Event()

    def expect(self, workflows: int) -> None:
        """Start counting ``workflows`` from zero."""
        self.expected, self.count = workflows, 0
        self.done.clear()

    def __call__(self) -> None:
        self.count += 1
        if self.count == self.expected:
            self.done.set()


#: How the timed part learns that the workflows finished (``--completion``).
COMPLETIONS = {
    # every workflow's WorkflowCompleted comes back to the dispatcher: 6 messages for 5 steps
    "wait": "dispatcher.wait_for(cid) for every workflow",
    # dispatched with results=False; the last step counts, as the raw loops do: 5 for 5 steps
    "count": "results=False, completions counted in the last step (as the baselines count)",
}


async def run(
    transport_name: str,
    signer_name: str,
    workflows: int,
    steps: int,
    concurrency: int,
    completion: str = "wait",
) -> dict[str, Any]:
    """Run ``workflows`` workflows of ``steps`` steps and return the measurements.

    ``completion="wait"`` waits for each workflow's result; ``"count"`` dispatches with
    ``results=False`` (no sixth message) and counts completions in the last step, then stops
    the worker, which drains the last acks: the time includes them.
    """
    transport = get_transport(transport_name)
    signer = make_signer(signer_name)
    itinerary = [ActivitySpec(name=f"step-{i}") for i in range(steps)]
    finishes = Finishes()
    async with transport:
        worker = Worker(
            transport,
            no_op_activities(steps, finishes if completion == "count" else None),
            concurrency=concurrency,
            signer=signer,
            handle_signals=False,
        )
        worker_task = asyncio.ensure_future(worker.run())
        dispatcher = WorkflowDispatcher(transport, signer=signer)
        warm_up = await dispatcher.dispatch_workflow(itinerary)  # start-up stays out of the timing
        await dispatcher.wait_for(warm_up, timeout=60)
        results = []
        started, cpu_started = time.perf_counter(), time.process_time()
        if completion == "count":
            finishes.expect(workflows)
            for _ in range(workflows):
                await dispatcher.dispatch_workflow(itinerary, results=False)
            await asyncio.wait_for(finishes.done.wait(), 600)
            worker.stop()
            await worker_task  # drains the steps still in flight: their acks are timed too
        else:
            cids = [await dispatcher.dispatch_workflow(itinerary) for _ in range(workflows)]
            results = await asyncio.gather(*(dispatcher.wait_for(c, timeout=600) for c in cids))
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        worker.stop()
        await worker_task
        await dispatcher.close()
    failed = [r for r in results if r.status != "completed"]
    if failed:
        raise SystemExit(f"{len(failed)} workflows did not complete: {failed[0].error}")
    hop_latencies = [
        (later.finished_at - earlier.finished_at).total_seconds()
        for result in results
        for earlier, later in zip(result.activity_log, result.activity_log[1:], strict=False)
    ]
    hops = workflows * steps
    return {
        "transport": transport_name,
        "signer": signer_name,
        "completion": completion,
        "workflows": workflows,
        "steps": steps,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "hops_per_second": round(hops / elapsed, 1),
        "workflows_per_second": round(workflows / elapsed, 1),
        # This process's CPU (workers, dispatcher, in-memory broker): steadier than hops/s on
        # a loaded machine; on a broker transport the broker's own CPU is not in it.
        "cpu_us_per_hop": round(cpu / hops * 1e6, 1),
        # Latencies come from the results' logs: "count" has none.
        "hop_latency_p50_ms": _ms(percentile(hop_latencies, 50)) if hop_latencies else None,
        "hop_latency_p99_ms": _ms(percentile(hop_latencies, 99)) if hop_latencies else None,
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _median_run(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """The sample with the median hops/s, annotated with every round's figure."""
    ordered = sorted(samples, key=lambda sample: sample["hops_per_second"])
    median = dict(ordered[len(ordered) // 2])
    median["rounds_hops_per_second"] = [sample["hops_per_second"] for sample in samples]
    if all("cpu_us_per_hop" in sample for sample in samples):
        cpu = sorted(sample["cpu_us_per_hop"] for sample in samples)
        median["median_cpu_us_per_hop"] = cpu[len(cpu) // 2]
    if all("broker_cpu_us_per_hop" in sample for sample in samples):
        broker = sorted(sample["broker_cpu_us_per_hop"] for sample in samples)
        median["median_broker_cpu_us_per_hop"] = broker[len(broker) // 2]
    return median


#: Baseline module of each broker transport: ``runners(workflows, steps, concurrency, body)``
#: returns ``{name: coroutine factory}`` for the raw client loop and FastStream on the same broker.
BASELINES: dict[str, str] = {
    "redis": "_redis_baselines",
    "nats": "_nats_baselines",
    "rabbitmq": "_rabbitmq_baselines",
}


def run_baselines(
    transport: str, workflows: int, steps: int, concurrency: int, broker_pid: int | None
) -> dict[str, dict[str, Any]]:
    """Run ``transport``'s baselines with the same shape and paigeant's own hop size."""
    module_name = BASELINES.get(transport)
    if module_name is None:
        raise SystemExit(
            f"--baselines: no baselines for {transport!r} (known: {', '.join(sorted(BASELINES))})"
        )
    module = importlib.import_module(module_name)
    body = envelope_growth(steps).get("step_1_bytes", 1500)
    return {
        name: with_broker_cpu(broker_pid, workflows * steps, factory)
        for name, factory in module.runners(workflows, steps, concurrency, body).items()
    }


def with_broker_cpu(
    broker_pid: int | None, hops: int, measure: Callable[[], Awaitable[dict[str, Any]]]
) -> dict[str, Any]:
    """Run ``measure()`` to its result, plus the broker's CPU per hop when its pid is known."""
    if broker_pid is None:
        return asyncio.run(_result(measure))
    before = process_cpu_seconds(broker_pid)
    result = asyncio.run(_result(measure))
    result["broker_cpu_us_per_hop"] = round(
        (process_cpu_seconds(broker_pid) - before) / hops * 1e6, 1
    )
    return result


async def _result(measure: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    return await measure()


def envelope_growth(total_steps: int = 100) -> dict[str, int]:
    """Bytes of the message at steps 1, 10 and 100 of a ``total_steps``-step workflow."""
    from paigeant.workflow.messages import ActivityLogEntry, utcnow

    now = utcnow()
    message = PaigeantMessage(
        message_id=hop_message_id("c" * 36, 0),
        correlation_id="c" * 36,
        routing_slip=RoutingSlip(
            itinerary=[ActivitySpec(name=f"step-{i}") for i in range(total_steps)]
        ),
        headers={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"},
    )
    sizes: dict[str, int] = {}
    for step in range(1, total_steps + 1):
        if step in (1, 10, 100) and step <= total_steps:
            sizes[f"step_{step}_bytes"] = len(encode_message(message))
        spec = message.routing_slip.itinerary.pop(0)
        message.routing_slip.activity_log.append(
            ActivityLogEntry(
                name=spec.name,
                output=None,
                started_at=now,
                finished_at=now,
                attempt=1,
                worker="host:1234:abcdef",
            )
        )
        message.hop = step
        message.message_id = hop_message_id(message.correlation_id, step)
    return sizes


def versus_baselines(runs: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    """Each paigeant configuration's hops/s over each baseline's, taken within each round.

    What the targets compare: at least 0.7 of the raw client loop and ahead of FastStream.
    Keys are ``signer/completion`` and the baseline's name; values the median, min and max of
    the per-round ratios.
    """
    mine = [r for r in runs if "completion" in r]
    theirs = [r for r in runs if "completion" not in r]
    table: dict[str, dict[str, dict[str, float]]] = {}
    for run_ in mine:
        key = f"{run_['signer']}/{run_['completion']}"
        table[key] = {}
        for other in theirs:
            ratios = sorted(
                a / b
                for a, b in zip(
                    run_["rounds_hops_per_second"], other["rounds_hops_per_second"], strict=True
                )
            )
            table[key][other["transport"]] = {
                "median": round(ratios[len(ratios) // 2], 2),
                "min": round(ratios[0], 2),
                "max": round(ratios[-1], 2),
            }
    return table


def main() -> None:
    """Parse arguments, run each configuration and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default=os.environ.get("PAIGEANT_TRANSPORT", "inmemory"))
    parser.add_argument("--workflows", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--signer", action="append", choices=["none", "hmac", "ed25519"])
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="run every configuration (and baseline) interleaved this many times; report medians",
    )
    parser.add_argument("--envelope", action="store_true", help="also report envelope growth")
    parser.add_argument(
        "--baselines",
        action="store_true",
        help="broker transports: also run the raw client loop and FastStream on the same broker",
    )
    parser.add_argument(
        "--broker-pid",
        type=int,
        help="also report the broker's CPU per hop (setup included), read from /proc/PID/stat; "
        "for example $(pgrep -x nats-server), $(pgrep -f beam.smp), $(pgrep -x redis-server)",
    )
    parser.add_argument(
        "--completion",
        action="append",
        choices=sorted(COMPLETIONS),
        help="how the run learns workflows finished (repeat to compare): "
        + "; ".join(f"{name}: {what}" for name, what in COMPLETIONS.items())
        + " (default wait; with --baselines both)",
    )
    args = parser.parse_args()
    signers = args.signer or ["none"]
    completions = args.completion or (["wait", "count"] if args.baselines else ["wait"])
    configurations = [(signer, completion) for completion in completions for signer in signers]
    samples: dict[str, list[dict[str, Any]]] = {f"{s}/{c}": [] for s, c in configurations}
    for _ in range(args.rounds):
        # Interleaved, so machine noise hits every configuration alike.
        for signer, completion in configurations:
            samples[f"{signer}/{completion}"].append(
                with_broker_cpu(
                    args.broker_pid,
                    args.workflows * args.steps,
                    functools.partial(
                        run,
                        args.transport,
                        signer,
                        args.workflows,
                        args.steps,
                        args.concurrency,
                        completion,
                    ),
                )
            )
        if args.baselines:
            for name, result in run_baselines(
                args.transport, args.workflows, args.steps, args.concurrency, args.broker_pid
            ).items():
                samples.setdefault(name, []).append(result)
    runs = [_median_run(configuration) for configuration in samples.values()]
    baseline = runs[0]["hops_per_second"]
    first_rounds = runs[0]["rounds_hops_per_second"]
    for result in runs:
        result["ratio_to_first"] = round(result["hops_per_second"] / baseline, 3)
        # The same ratio taken within each round (less exposed to drift across rounds).
        per_round = sorted(
            mine / first
            for mine, first in zip(result["rounds_hops_per_second"], first_rounds, strict=True)
        )
        result["median_round_ratio_to_first"] = round(per_round[len(per_round) // 2], 3)
    output: dict[str, Any] = {"runs": runs}
    if args.baselines:
        output["versus_baselines"] = versus_baselines(runs)
    if args.envelope:
        output["envelope"] = envelope_growth()
    summary = "; ".join(
        f"{r['transport']}/{r['signer']}"
        + (f"/{r['completion']}" if "completion" in r else "")
        + f": {r['hops_per_second']:,.0f} hops/s "
        f"({r['workflows_per_second']:,.0f} workflows/s, p50 {r['hop_latency_p50_ms']} ms, "
        f"p99 {r['hop_latency_p99_ms']} ms, "
        + (f"{r['median_cpu_us_per_hop']} us CPU/hop, " if "median_cpu_us_per_hop" in r else "")
        + (
            f"broker {r['median_broker_cpu_us_per_hop']} us CPU/hop, "
            if "median_broker_cpu_us_per_hop" in r
            else ""
        )
        + f"x{r['ratio_to_first']} of the first, "
        f"x{r['median_round_ratio_to_first']} within rounds)"
        for r in runs
    )
    if args.envelope:
        summary += f"; envelope {output['envelope']}"
    if args.baselines:
        summary += "".join(
            f"\npaigeant {mine} vs {theirs}: median {ratio['median']}x "
            f"(rounds {ratio['min']}-{ratio['max']})"
            for mine, against in output["versus_baselines"].items()
            for theirs, ratio in against.items()
        )
    report(output, summary)


if __name__ == "__main__":
    main()
