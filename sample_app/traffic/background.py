"""Traffic in a background thread for as long as a block runs, stopped on demand.

Short runs one after another are not the same thing: a run stops admitting requests at its
deadline, so a visit whose checkout is its fourth step never gets there in a one-second
run. Whoever watches a signal while traffic flows (contract tests, labs, drills) wants
this instead.
"""

from __future__ import annotations

import asyncio
import threading

from sample_app.traffic.config import TrafficConfig
from sample_app.traffic.runner import run_traffic
from sample_app.traffic.summary import TrafficSummary


class BackgroundTraffic:
    def __init__(self, config: TrafficConfig) -> None:
        self.config = config
        self.summary: TrafficSummary | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            self.summary = await run_traffic(self.config, stop=self._stop)

        asyncio.run(main())

    def __enter__(self) -> BackgroundTraffic:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._loop is not None and self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)
