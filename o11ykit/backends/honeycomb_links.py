"""A QuerySpec as Honeycomb's query JSON, and as a query-template link that runs it in the UI.

Formats followed:
- query specification (calculations, filters, breakdowns, orders, limit, time_range,
  end_time, filter_combination; filter ops):
  https://docs.honeycomb.io/reference/query-specification
  https://docs.honeycomb.io/api/query-specification/
- query template links (a dataset URL plus `?query=<the JSON, URL-encoded>`; the UI runs it):
  https://docs.honeycomb.io/investigate/collaborate/share-query
  https://docs.honeycomb.io/api/query-template-links
- the dataset URL shape, `https://ui.honeycomb.io/<team>/environments/<env>/datasets/<dataset>`
  (EU: ui.eu1.honeycomb.io), as the direct trace links document it:
  https://docs.honeycomb.io/investigate/collaborate/share-trace
Column names are those Honeycomb's OTLP receiver writes (honeycombio/husky, otlp/traces.go):
`name`, `service.name`, `duration_ms`, `span.kind`, `status_code`, and `error` = true on spans
whose status is ERROR; span events and links become events of their own with
`meta.annotation_type` set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from o11ykit.backends.honeycomb import UI
from o11ykit.backends.query_spec import QuerySpec, parse_calculation

# Where labs find the slugs a link needs; they are not o11ykit settings (docs/honeycomb.md).
TEAM_VARIABLE = "O11YKIT_HONEYCOMB_TEAM"
ENVIRONMENT_VARIABLE = "O11YKIT_HONEYCOMB_ENVIRONMENT"
# Span columns in the spec's (the local store's) spelling -> Honeycomb's column.
COLUMNS = {"status": "status_code", "kind": "span.kind"}
_INTEGER = re.compile(r"-?(0|[1-9][0-9]*)")
_DECIMAL = re.compile(r"-?[0-9]+\.[0-9]+")


def column(key: str) -> str:
    return COLUMNS.get(key, key)


def filter_value(text: str) -> bool | int | float | str:
    """Spec values are text; Honeycomb compares typed values, as its examples send them
    (`"value": 400`, `"value": true`). "0042" stays text: it is not a number's spelling."""
    if text in ("true", "false"):
        return text == "true"
    if _INTEGER.fullmatch(text):
        return int(text)
    if _DECIMAL.fullmatch(text):
        return float(text)
    return text


def _number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _calculation(text: str) -> dict[str, str]:
    op, name = parse_calculation(text)
    return {"op": op} if name is None else {"op": op, "column": column(name)}


def _filters(spec: QuerySpec, spans_only: bool) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    if spec.service:
        filters.append({"column": "service.name", "op": "=", "value": spec.service})
    if spec.operation:
        filters.append({"column": "name", "op": "=", "value": spec.operation})
    for key, op, value in spec.where:
        condition: dict[str, Any] = {"column": key, "op": op}
        if op != "exists":
            condition["value"] = filter_value(value)
        filters.append(condition)
    if spec.errors_only:
        filters.append({"column": "error", "op": "=", "value": True})
    if spec.min_duration_ms is not None:
        # >=, as Jaeger's minDuration and the local store's durationMin count.
        filters.append(
            {"column": "duration_ms", "op": ">=", "value": _number(spec.min_duration_ms)}
        )
    if spans_only:
        # A recorded exception is a span event, and Honeycomb stores it as an event of its own
        # carrying error=true and the resource's attributes: without this, COUNT would count
        # each failed request twice where the local store and Jaeger count it once.
        filters.append({"column": "meta.annotation_type", "op": "does-not-exist"})
    return filters


def _order(term: str, direction: str, spec: QuerySpec) -> dict[str, str]:
    if term in spec.group_by:
        return {"column": column(term), "order": direction}
    return {**_calculation(term), "order": direction}


def honeycomb_query_json(
    spec: QuerySpec, *, now: datetime | None = None, spans_only: bool = True
) -> dict[str, Any]:
    """The spec as a Honeycomb query specification.

    Without `now` the time range is relative (the last since_s seconds whenever it runs);
    with it, the window is pinned to end at `now`, the same window as the Jaeger link's. A
    spec with a `start` is pinned at both ends: from `start` to `now` (or to the moment the
    query is made).
    `spans_only` leaves out span events and links (see _filters).
    """
    query: dict[str, Any] = {
        "calculations": [_calculation(c) for c in spec.calculations],
        "filters": _filters(spec, spans_only),
        "filter_combination": "AND",
        "breakdowns": [column(key) for key in spec.group_by],
        "orders": [_order(term, direction, spec) for term, direction in spec.order_by],
        "time_range": spec.since_s,
    }
    if spec.limit is not None:
        query["limit"] = spec.limit
    if spec.start is not None:
        # A fixed start: start_time and end_time (all three of start, end and range is an
        # error), ending at `now` or when the link is made.
        del query["time_range"]
        query["start_time"] = int(spec.start.timestamp())
        query["end_time"] = int((now or datetime.now(timezone.utc)).timestamp())
    elif now is not None:
        # end_time with time_range is documented; all three of start, end and range is an error.
        query["end_time"] = int(now.timestamp())
    return query


def honeycomb_link(
    spec: QuerySpec,
    *,
    team: str,
    environment: str,
    dataset: str,
    region: str,
    now: datetime | None = None,
    spans_only: bool = True,
) -> str:
    """The query-template link: opening it runs the spec's query in the Honeycomb UI.

    `team` and `environment` are the slugs in the UI's own URLs; `dataset` is the dataset's
    slug (with OpenTelemetry, the service name). The JSON is percent-encoded throughout, so
    it reads back the same whether the page decodes it as a form value or a URI component.
    """
    if region not in UI:
        raise ValueError(f"region must be one of {', '.join(UI)}, not {region!r}")
    for name, slug in (("team", team), ("environment", environment), ("dataset", dataset)):
        if not slug:
            raise ValueError(f"a Honeycomb link needs the {name} slug")
    query = json.dumps(
        honeycomb_query_json(spec, now=now, spans_only=spans_only), separators=(",", ":")
    )
    path = "/".join(
        quote(part, safe="") for part in (team, "environments", environment, "datasets", dataset)
    )
    return f"{UI[region]}/{path}?query={quote(query, safe='')}"


def link_slugs(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """(team, environment) from O11YKIT_HONEYCOMB_TEAM and O11YKIT_HONEYCOMB_ENVIRONMENT, if both
    are set: labs print Honeycomb links only then. The mapping is passed in (os.environ in a lab)
    so tests and callers decide what the environment is."""
    team = (environ.get(TEAM_VARIABLE) or "").strip()
    environment = (environ.get(ENVIRONMENT_VARIABLE) or "").strip()
    return (team, environment) if team and environment else None
