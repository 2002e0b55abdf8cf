"""Transport throughput: publish, consume and ack N messages with C concurrent consumers.

    uv run python benchmarks/transport_throughput.py --transport inmemory --messages 100000

Prints JSON (messages/s, p50/p99 publish-to-ack latency) and a one-line summary.
"""

from __future__ import annotations

import argparse
import asyncio
import struct
import time
import uuid
from typing import Any

from _common import peak_rss_mib, percentile, report

from paigeant import get_transport


async def run(transport_name: str, messages: int, consumers: int, prefetch: int) -> dict[str, Any]:
    """Publish and consume ``messages`` concurrently; return the measurements."""
    transport = get_transport(transport_name)
    queue = f"bench-throughput-{uuid.uuid4().hex[:8]}"
    latencies: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        async for delivery in transport.consume(queue, prefetch=prefetch):
            (sent,) = struct.unpack("d", delivery.body[:8])
            await delivery.ack()
            latencies.append(time.perf_counter() - sent)
            if len(latencies) >= messages:
                done.set()
                return

    async with transport:
        tasks = [asyncio.ensure_future(consume()) for _ in range(consumers)]
        started = time.perf_counter()
        for i in range(messages):
            body = struct.pack("d", time.perf_counter()) + b"x" * 56
            await transport.publish(queue, body, message_id=str(i))
            if i % 256 == 0:
                await asyncio.sleep(0)  # let consumers run while publishing
        await done.wait()
        elapsed = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await transport.delete_queue(queue)
    return {
        "transport": transport_name,
        "messages": messages,
        "consumers": consumers,
        "prefetch": prefetch,
        "seconds": round(elapsed, 4),
        "messages_per_second": round(messages / elapsed, 1),
        "latency_p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "latency_p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def main() -> None:
    """Parse arguments, run the benchmark and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", default="inmemory")
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--consumers", type=int, default=4)
    parser.add_argument("--prefetch", type=int, default=64)
    args = parser.parse_args()
    result = asyncio.run(run(args.transport, args.messages, args.consumers, args.prefetch))
    report(
        result,
        f"{result['transport']}: {result['messages_per_second']:,.0f} msg/s acked "
        f"({result['messages']} messages, {result['consumers']} consumers), "
        f"p50 {result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms",
    )


if __name__ == "__main__":
    main()
