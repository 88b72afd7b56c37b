"""The five generic kinds every FastAPI service gets; services add their own next to them.

The middleware carries these out (pool_hold with the pool holder); a custom kind is only
a name and its params here, and the service's own code asks the engine about it.
"""

from __future__ import annotations

from types import MappingProxyType

from o11ykit.faults.spec import KindSpec, ParamSpec

_TEN_MINUTES_MS = 600_000

LATENCY = KindSpec(
    "latency",
    {
        "ms": ParamSpec(int, 500, 0, _TEN_MINUTES_MS, "added to each matching request"),
        "jitter_ms": ParamSpec(int, 0, 0, _TEN_MINUTES_MS, "up to this much more, at random"),
    },
    "matching requests wait before they are handled; a ramp grows the wait from 0",
)
ERROR = KindSpec(
    "error",
    {"status": ParamSpec(int, 500, 500, 599, "the HTTP status answered")},
    "matching requests are answered with a 5xx without being handled",
)
EXCEPTION = KindSpec(
    "exception",
    {"message": ParamSpec(str, "internal error", help="the RuntimeError's message")},
    "matching requests raise a RuntimeError, as an unhandled bug would",
)
TIMEOUT = KindSpec(
    "timeout",
    {"after_s": ParamSpec(float, 30.0, 0, 600, "how long the request hangs before the 504")},
    "matching requests hang, then are answered 504",
)
POOL_HOLD = KindSpec(
    "pool_hold",
    {
        "connections": ParamSpec(
            int, 1, 1, 1000, "pool connections each matching request takes and does not return"
        ),
        "hold_s": ParamSpec(float, 30.0, 0, 3600, "how long each is held before it returns"),
    },
    "a connection leak: matching requests keep database connections, later ones wait for "
    "the pool's timeout",
)

GENERIC_KINDS: MappingProxyType[str, KindSpec] = MappingProxyType(
    {kind.name: kind for kind in (LATENCY, ERROR, EXCEPTION, TIMEOUT, POOL_HOLD)}
)
