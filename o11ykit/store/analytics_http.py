"""`/api/o11ykit/breakdown`, `/compare` and `/status`: parameters in, JSON-ready answers out.

The query server routes `/api/o11ykit/*` here with the query string already split. Errors
are google.rpc.Status objects like the Jaeger API's own (3 invalid argument, 5 not found),
and a 400 always names the parameter and what it accepts. See docs/store-api.md.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Mapping

from o11ykit.argtypes import whole_number
from o11ykit.attribute_text import search_text
from o11ykit.store import analytics, status
from o11ykit.store.analytics import AnalyticsError, Selection
from o11ykit.store.http_base import rpc_status
from o11ykit.timeformats import clamp_ns, parse_duration, parse_time

PREFIX = "/api/o11ykit/"
DEFAULT_LOOKBACK_NS = 3600 * 10**9
MAX_LIMIT = 1000

Answer = tuple[int, dict]


class BadParameter(ValueError):
    pass


def handle(
    method: str, path: str, params: Mapping[str, str], connection: sqlite3.Connection
) -> Answer:
    endpoint = (
        ENDPOINTS.get(path.rstrip("/").removeprefix(PREFIX)) if path.startswith(PREFIX) else None
    )
    if endpoint is None:
        known = ", ".join(PREFIX + name for name in ENDPOINTS)
        return 404, rpc_status(404, f"no such endpoint {path}; known: {known}")
    if method.upper() not in ("GET", "HEAD"):  # HEAD: as every other path of the query port
        return 405, rpc_status(405, f"{path} answers GET (and HEAD) only")
    name = path.rstrip("/").removeprefix(PREFIX)
    unknown = sorted(set(params) - set(PARAMETERS[name]))
    if unknown:
        # This API is o11ykit's own: a misspelt name (serviceName, since) would otherwise
        # answer for the whole store over the last hour, as if it had been understood.
        accepted = PARAMETERS[name]
        return 400, rpc_status(
            400,
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(unknown)};"
            f" {PREFIX}{name} "
            + (f"accepts {', '.join(accepted)}" if accepted else "takes no parameters"),
        )
    try:
        return 200, endpoint(params, connection)
    except (BadParameter, AnalyticsError) as exc:
        return 400, rpc_status(400, str(exc))
    except sqlite3.Error as exc:
        return 500, rpc_status(500, f"the store could not answer: {exc}")


def _breakdown(params: Mapping[str, str], connection: sqlite3.Connection) -> dict:
    group_by = (params.get("groupBy") or "").strip()
    if not group_by:
        raise BadParameter(
            "groupBy is required: an attribute key (e.g. tenant.id, service.version) "
            "or service.name, name, status, kind"
        )
    start_ns, end_ns = _window(params)
    result = analytics.breakdown(
        connection,
        group_by=group_by,
        start_ns=start_ns,
        end_ns=end_ns,
        service=params.get("service") or None,
        operation=params.get("operation") or None,
        where=_where(params),
        limit=_limit(params, 50),
    )
    return result.to_dict()


def _compare(params: Mapping[str, str], connection: sqlite3.Connection) -> dict:
    start_ns, end_ns = _window(params)
    keys = [k.strip() for k in params.get("keys", "").split(",") if k.strip()] or None
    result = analytics.compare(
        connection,
        start_ns=start_ns,
        end_ns=end_ns,
        selection=_selection(params.get("selection", "")),
        service=params.get("service") or None,
        operation=params.get("operation") or None,
        where=_where(params),
        keys=keys,
        limit=_limit(params, 20),
    )
    return result.to_dict()


def _status(params: Mapping[str, str], connection: sqlite3.Connection) -> dict:
    return status.store_status(connection)


ENDPOINTS: dict[str, Callable[[Mapping[str, str], sqlite3.Connection], dict]] = {
    "breakdown": _breakdown,
    "compare": _compare,
    "status": _status,
}
# The parameters each endpoint reads (docs/store-api.md); any other is refused.
_COMMON = ("start", "end", "service", "operation", "where", "limit")
PARAMETERS = {
    "breakdown": ("groupBy", *_COMMON),
    "compare": ("selection", "keys", *_COMMON),
    "status": (),
}


def _window(params: Mapping[str, str]) -> tuple[int, int]:
    """start/end as RFC 3339; the end defaults to now, the start to an hour before the end."""
    end_ns = _time(params, "end") if params.get("end") else time.time_ns()
    start_ns = _time(params, "start") if params.get("start") else end_ns - DEFAULT_LOOKBACK_NS
    start_ns = clamp_ns(start_ns)  # an hour before an end in 1677
    if end_ns <= start_ns:
        raise BadParameter("end must be after start")
    return start_ns, end_ns


def _time(params: Mapping[str, str], name: str) -> int:
    try:
        return parse_time(params[name])
    except ValueError as exc:
        raise BadParameter(f"{name}: {exc}") from None


def _selection(raw: str) -> Selection:
    accepted = "accepted: errors, origin-errors, slower:<duration> (e.g. slower:250ms)"
    text = raw.strip()
    if text == "errors":
        return Selection.errors()
    if text == "origin-errors":
        return Selection.origin_errors()
    if text.startswith("slower:"):
        try:
            return Selection.slower_than(parse_duration(text.removeprefix("slower:")) / 1e6)
        except ValueError as exc:
            raise BadParameter(f"selection: {exc}; {accepted}") from None
    raise BadParameter(f"selection {raw!r} is not understood; {accepted}")


def _where(params: Mapping[str, str]) -> dict[str, str] | None:
    raw = params.get("where")
    if not raw:
        return None
    accepted = 'a JSON object of attribute key to value, e.g. {"tenant.id":"acme"}'
    try:
        parsed = json.loads(raw)
    except ValueError:
        raise BadParameter(f"where is not JSON; expected {accepted}") from None
    if not isinstance(parsed, dict) or any(
        isinstance(v, (dict, list)) or v is None for v in parsed.values()
    ):
        raise BadParameter(f"where must be {accepted}")
    # Values compare as the text the store keeps, as a search's do: true, 2 for 2.0, 100000.
    return {key: search_text(value) for key, value in parsed.items()}


def _limit(params: Mapping[str, str], default: int) -> int:
    raw = params.get("limit")
    if not raw:
        return default
    limit = whole_number(raw)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise BadParameter(f"limit must be a whole number from 1 to {MAX_LIMIT}; got {raw!r}")
    return limit
