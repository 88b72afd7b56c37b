"""Closed-loop HTTP/1.1 load generator over keep-alive sockets (asyncio, raw bytes).

Used because ``wrk`` is not installed; raw pre-built requests keep the client's CPU
cost per request far below an HTTP client library's, which matters because client
and server share the machine's cores. Each of N connections sends a request, waits
for the full response, and sends the next one. Requests started during the warm-up
are not measured. Hard bounds: the run stops at ``warmup + seconds`` (plus a grace
period for in-flight responses) or after ``--max-requests`` responses, whichever
comes first.

Prints one JSON object on stdout: measured request count, requests/s, latency
percentiles (ms), errors, and the total number of responses (warm-up included),
which the runner needs to compute spans per request at the sink.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from dataclasses import dataclass, field

TENANTS = 50
USERS = 1000
ITEMS = 10_000
# Distinct pre-built requests; cycled through, so every variant sends the same sequence.
DISTINCT_REQUESTS = 4096
GRACE_SECONDS = 5.0


def build_requests(host: str, port: int, seed: int, count: int = DISTINCT_REQUESTS) -> list[bytes]:
    """Pre-encode requests: tenant/user headers and a query string holding a secret."""
    rng = random.Random(seed)
    built = []
    for _ in range(count):
        item = rng.randint(1, ITEMS)
        token = f"{rng.getrandbits(48):012x}"
        built.append(
            (
                f"GET /items/{item}?token={token}&q=shoes HTTP/1.1\r\n"
                f"Host: {host}:{port}\r\n"
                f"X-Tenant-ID: shop-{rng.randrange(TENANTS)}\r\n"
                f"X-User-ID: user-{rng.randrange(USERS)}\r\n"
                "Accept: application/json\r\n"
                "\r\n"
            ).encode("ascii")
        )
    return built


@dataclass
class Totals:
    measure_from: float
    measure_until: float
    max_requests: int
    responses: int = 0
    errors: int = 0
    latencies_ns: list[int] = field(default_factory=list)


def _content_length(head: bytes) -> int:
    lowered = head.lower()
    start = lowered.find(b"\r\ncontent-length:")
    if start < 0:
        raise ValueError("response without Content-Length")
    start += len(b"\r\ncontent-length:")
    return int(lowered[start : lowered.index(b"\r\n", start)])


async def _connection(
    host: str, port: int, requests: list[bytes], offset: int, totals: Totals
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    index = offset
    clock = time.perf_counter_ns
    until_ns = int(totals.measure_until * 1e9)
    from_ns = int(totals.measure_from * 1e9)
    try:
        while totals.responses < totals.max_requests:
            started = clock()
            if started >= until_ns:
                break
            writer.write(requests[index % len(requests)])
            index += 1
            head = await reader.readuntil(b"\r\n\r\n")
            await reader.readexactly(_content_length(head))
            finished = clock()
            totals.responses += 1
            if head[9:12] != b"200":
                totals.errors += 1
            elif started >= from_ns and finished <= until_ns:
                totals.latencies_ns.append(finished - started)
    finally:
        writer.close()


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, round(fraction * len(sorted_values)))
    return float(sorted_values[min(rank, len(sorted_values)) - 1])


async def run(
    host: str,
    port: int,
    connections: int,
    warmup: float,
    seconds: float,
    max_requests: int,
    seed: int,
) -> dict[str, object]:
    requests = build_requests(host, port, seed)
    now = time.perf_counter()
    totals = Totals(now + warmup, now + warmup + seconds, max_requests)
    # Spread the connections over the request list so they do not send in lockstep.
    step = len(requests) // connections
    tasks = [
        asyncio.ensure_future(_connection(host, port, requests, i * step, totals))
        for i in range(connections)
    ]
    done, pending = await asyncio.wait(tasks, timeout=warmup + seconds + GRACE_SECONDS)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    failures = [repr(t.exception()) for t in done if t.exception() is not None]
    latencies = sorted(totals.latencies_ns)
    return {
        "connections": connections,
        "seconds": seconds,
        "measured_requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50_ms": percentile(latencies, 0.50) / 1e6,
        "p90_ms": percentile(latencies, 0.90) / 1e6,
        "p99_ms": percentile(latencies, 0.99) / 1e6,
        "max_ms": (latencies[-1] / 1e6) if latencies else float("nan"),
        "responses_total": totals.responses,
        "errors": totals.errors,
        "connection_failures": failures
        + [f"{len(pending)} connection(s) timed out"] * bool(pending),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)
    result = asyncio.run(
        run(
            args.host,
            args.port,
            args.connections,
            args.warmup,
            args.seconds,
            args.max_requests,
            args.seed,
        )
    )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
