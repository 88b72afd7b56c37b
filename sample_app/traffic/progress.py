"""Showing a run as it goes: a Rich live line on a terminal, a plain line every few seconds
in a log, or nothing (the default for programmatic runs: tests and the lab runner)."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TextIO

from sample_app.traffic.summary import Tally, status_line

LIVE_REFRESH_S = 0.25
PLAIN_INTERVAL_S = 5.0


def resolve_mode(mode: str, stream: TextIO) -> str:
    if mode != "auto":
        return mode
    return "live" if stream.isatty() else "none"


async def _every(interval_s: float, show: Callable[[], None]) -> None:
    while True:
        await asyncio.sleep(interval_s)
        show()


@contextlib.asynccontextmanager
async def showing_progress(
    mode: str, tally: Tally, *, stream: TextIO | None = None
) -> AsyncIterator[None]:
    """Shows `tally` while the body runs. The updates run on the event loop, never in a
    thread of their own, so they read the counts between two requests, never during one."""
    stream = stream or sys.stdout
    started = time.monotonic()

    def line() -> str:
        return status_line(tally, time.monotonic() - started)

    resolved = resolve_mode(mode, stream)
    if resolved == "none":
        yield
        return
    if resolved == "plain":

        def show() -> None:
            print(line(), file=stream, flush=True)

        async with _running(_every(PLAIN_INTERVAL_S, show)):
            yield
        return
    # Rich comes with the workshop extra; it is imported only when a terminal shows it.
    from rich.console import Console
    from rich.live import Live
    from rich.text import Text

    with Live(Text(line()), console=Console(file=stream), auto_refresh=False) as live:

        def refresh() -> None:
            live.update(Text(line()), refresh=True)

        async with _running(_every(LIVE_REFRESH_S, refresh)):
            yield
        refresh()


@contextlib.asynccontextmanager
async def _running(coroutine: Coroutine[Any, Any, None]) -> AsyncIterator[None]:
    task = asyncio.create_task(coroutine)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
