"""Playing the planned visits against a gateway: concurrent visitors, one shared rate.

`concurrency` visitors each take the next visit of the plan and make its requests one
after the other; every request waits for a token from the one bucket first. The run ends
at the first of: the time limit, the request cap, the stop event. Then no request starts,
the ones in flight get DRAIN_S to finish, and whatever is left is cancelled and journaled
as such. A request that gets no answer is an outcome to count, never an exception.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from sample_app.traffic.config import TrafficConfig
from sample_app.traffic.journal import CANCELLED, Journal, Outcome
from sample_app.traffic.limiter import TokenBucket
from sample_app.traffic.personas import Step
from sample_app.traffic.planner import Planner, Visit
from sample_app.traffic.progress import showing_progress
from sample_app.traffic.summary import Tally, TrafficSummary

if TYPE_CHECKING:
    import httpx

DRAIN_S = 1.0
USER_AGENT = "o11ykit-traffic"  # lets a gateway, or a person reading traces, tell it apart


async def run_traffic(
    config: TrafficConfig, *, stop: asyncio.Event | None = None
) -> TrafficSummary:
    """Runs the traffic `config` describes until it is done or `stop` is set."""
    # httpx is imported here, not with the package, so the seeder can import the
    # vocabulary and the planner without the HTTP client.
    import httpx

    tally = Tally()
    started = time.monotonic()
    client = httpx.AsyncClient(
        base_url=config.base_url,
        timeout=config.timeout_s,
        # Each visitor has at most one request in flight, so no request waits for the pool.
        limits=httpx.Limits(
            max_connections=config.concurrency, max_keepalive_connections=config.concurrency
        ),
        headers={"User-Agent": USER_AGENT},
        trust_env=False,  # a proxy from the environment must never carry loopback traffic
    )
    with Journal(config.journal) as journal:
        async with client, showing_progress(config.progress, tally):
            playing = _Run(config, client, journal, tally, stop or asyncio.Event(), started)
            await playing.until_done()
    return tally.freeze(time.monotonic() - started)


def run(config: TrafficConfig) -> TrafficSummary:
    """`run_traffic` for callers without an event loop (the lab runner, scripts)."""
    return asyncio.run(run_traffic(config))


class _Run:
    def __init__(
        self,
        config: TrafficConfig,
        client: httpx.AsyncClient,
        journal: Journal,
        tally: Tally,
        stop: asyncio.Event,
        started: float,
    ) -> None:
        self._config = config
        self._client = client
        self._journal = journal
        self._tally = tally
        self._stop = stop
        self._deadline = started + config.time_limit_s
        self._visits = Planner(config).visits()
        self._bucket = TokenBucket(config.rate)
        self._requests_left = config.max_requests
        self._in_flight: set[asyncio.Task[None]] = set()

    def _open(self) -> bool:
        return not self._stop.is_set() and time.monotonic() < self._deadline

    async def _admit(self) -> bool:
        """Whether one more request may start, after waiting for its token."""
        if self._requests_left is not None:
            if self._requests_left <= 0:
                return False
            self._requests_left -= 1
        await self._bucket.acquire()
        return self._open()

    async def _visitor(self) -> None:
        while self._open():
            visit = next(self._visits)
            for number, step in enumerate(visit.steps):
                if not await self._admit():
                    return
                if number == 0:
                    self._tally.visits += 1
                request = asyncio.create_task(self._send(visit, step))
                self._in_flight.add(request)
                request.add_done_callback(self._in_flight.discard)
                # Shielded: stopping the visitors must not cancel a request mid-flight;
                # in-flight requests get DRAIN_S of their own.
                await asyncio.shield(request)

    async def until_done(self) -> None:
        visitors = [asyncio.create_task(self._visitor()) for _ in range(self._config.concurrency)]
        stopped = asyncio.create_task(self._stop.wait())
        try:
            await self._wait_for_the_end(set(visitors), stopped)
        finally:
            for task in (*visitors, stopped):
                task.cancel()
            ended = await asyncio.gather(*visitors, stopped, return_exceptions=True)
            await self._drain()
        bugs = [result for result in ended if isinstance(result, Exception)]
        if bugs:
            raise bugs[0]  # a bug in a visitor, not a failed request: those are outcomes

    async def _wait_for_the_end(
        self, visitors: set[asyncio.Task[None]], stopped: asyncio.Task[bool]
    ) -> None:
        """Until every visitor is done (request cap), one fails, `stop` or the deadline."""
        while visitors and not stopped.done():
            remaining = self._deadline - time.monotonic()
            if remaining <= 0:
                return
            done, visitors = await asyncio.wait(
                visitors | {stopped}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
            visitors.discard(stopped)
            if any(task is not stopped and task.exception() for task in done):
                return

    async def _drain(self) -> None:
        if not self._in_flight:
            return
        _, late = await asyncio.wait(set(self._in_flight), timeout=DRAIN_S)
        for request in late:
            request.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _send(self, visit: Visit, step: Step) -> None:
        import httpx

        headers = {"X-Tenant-ID": visit.tenant, "X-User-ID": visit.user}
        began_at, began = time.time(), time.perf_counter()

        def record(status: int | None, error: str | None) -> None:
            elapsed_ms = round((time.perf_counter() - began) * 1000, 2)
            outcome = Outcome(
                began_at,
                visit.index,
                visit.persona,
                step.method,
                step.path,
                step.route,
                visit.tenant,
                visit.user,
                status,
                elapsed_ms,
                error,
            )
            self._journal.write(outcome)
            self._tally.record(outcome)

        request = self._client.request(
            step.method, step.path, params=step.params, json=step.body, headers=headers
        )
        try:
            # httpx's timeout bounds each phase; this bounds the whole request.
            response = await asyncio.wait_for(request, self._config.timeout_s)
        except asyncio.CancelledError:
            record(None, CANCELLED)
            raise
        except asyncio.TimeoutError:
            record(None, f"timeout after {self._config.timeout_s:g} s")
        except httpx.HTTPError as exc:
            record(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
        else:
            record(response.status_code, None)
