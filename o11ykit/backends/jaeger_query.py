"""A Jaeger API v3 client for the local store and a real Jaeger alike (stdlib only).

Everything that reads traces (labs, solvers, drills, the `o11ykit traces` command) goes
through this one client, so a lab passes against Jaeger exactly as it does against the
embedded store. The o11ykit endpoints (breakdown, compare) exist only in the local store.
Time and duration texts follow the Jaeger HTTP API: RFC 3339 with nanoseconds, Go durations.
"""

from __future__ import annotations

import base64
import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from o11ykit.loopback import opener_for
from o11ykit.settings_parsers import without_secrets
from o11ykit.timeformats import datetime_ns, format_time

KINDS = ("unspecified", "internal", "server", "client", "producer", "consumer")
STATUSES = ("unset", "ok", "error")


class QueryError(Exception):
    """The query API refused or could not be reached; the message is the server's or a diagnosis."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


# --------------------------------------------------------------------------------------------
# Traces as simple values
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    name: str
    time_ns: int
    attributes: dict[str, Any]


@dataclass(frozen=True)
class SpanView:
    trace_id: str
    span_id: str
    parent_span_id: str | None
    service: str
    name: str
    kind: str  # KINDS
    start_ns: int
    end_ns: int
    duration_ms: float
    status: str  # "ok", "error" or "unset"
    status_message: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class Trace:
    trace_id: str
    spans: list[SpanView]  # by start time

    @property
    def root(self) -> SpanView:
        """The earliest span whose parent is not in the trace (the root, or an orphan)."""
        present = {s.span_id for s in self.spans}
        orphans = [s for s in self.spans if s.parent_span_id not in present]
        return (orphans or self.spans)[0]

    @property
    def start_ns(self) -> int:
        return min(s.start_ns for s in self.spans)

    @property
    def end_ns(self) -> int:
        return max(s.end_ns for s in self.spans)

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1_000_000

    @property
    def errors(self) -> int:
        return sum(s.status == "error" for s in self.spans)

    def in_tree_order(self) -> list[tuple[int, SpanView]]:
        """(depth, span) in tree order: children by start time under their parent."""
        present = {s.span_id for s in self.spans}
        children: dict[str | None, list[SpanView]] = {}
        for span in self.spans:  # already by start time
            parent = span.parent_span_id if span.parent_span_id in present else None
            children.setdefault(parent, []).append(span)
        ordered: list[tuple[int, SpanView]] = []
        stack = [(0, span) for span in reversed(children.get(None, []))]
        while stack:
            depth, span = stack.pop()
            ordered.append((depth, span))
            stack += [(depth + 1, child) for child in reversed(children.get(span.span_id, []))]
        return ordered


@dataclass(frozen=True)
class Operation:
    name: str
    span_kind: str


def any_value(value: Mapping[str, Any]) -> Any:
    """An OTLP JSON AnyValue as a plain Python value."""
    if "stringValue" in value:
        return value["stringValue"]
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "intValue" in value:
        return int(value["intValue"])  # a string in OTLP JSON: int64 does not fit a double
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values", []))
    if "bytesValue" in value:
        return base64.b64decode(value["bytesValue"]).hex()
    return None


def attributes(pairs: list[Mapping[str, Any]] | None) -> dict[str, Any]:
    return {kv["key"]: any_value(kv.get("value", {})) for kv in pairs or []}


def _hex_id(raw: str | None) -> str:
    """OTLP JSON ids are hex; protobuf's own JSON mapping writes base64. Accept both."""
    if not raw:
        return ""
    if re.fullmatch(r"[0-9a-fA-F]{16}|[0-9a-fA-F]{32}", raw):
        return raw.lower()
    return base64.b64decode(raw).hex()


def _enum(raw: Any, names: tuple[str, ...], prefix: str) -> str:
    """An enum given as a number or as its OTLP name ("SPAN_KIND_SERVER") -> our label."""
    if isinstance(raw, int) or (isinstance(raw, str) and raw.isdigit()):
        index = int(raw)
        return names[index] if 0 <= index < len(names) else str(raw)
    if isinstance(raw, str):
        return raw.lower().removeprefix(prefix)
    return names[0]


def _span(raw: Mapping[str, Any], resource: dict[str, Any]) -> SpanView:
    start, end = int(raw.get("startTimeUnixNano", 0)), int(raw.get("endTimeUnixNano", 0))
    status = raw.get("status") or {}
    return SpanView(
        trace_id=_hex_id(raw.get("traceId")),
        span_id=_hex_id(raw.get("spanId")),
        parent_span_id=_hex_id(raw.get("parentSpanId")) or None,
        service=str(resource.get("service.name", "")),
        name=raw.get("name", ""),
        kind=_enum(raw.get("kind", 0), KINDS, "span_kind_"),
        start_ns=start,
        end_ns=end,
        # A span ending before it starts (a clock step) lasted 0, as the store counts it.
        duration_ms=max(0, end - start) / 1_000_000,
        status=_enum(status.get("code", 0), STATUSES, "status_code_"),
        status_message=status.get("message", ""),
        attributes=attributes(raw.get("attributes")),
        resource=resource,
        events=[
            Event(e.get("name", ""), int(e.get("timeUnixNano", 0)), attributes(e.get("attributes")))
            for e in raw.get("events") or []
        ],
    )


def parse_traces(body: Mapping[str, Any]) -> list[Trace]:
    """`{"result": {"resourceSpans": [...]}}` (or bare TracesData) -> traces, first seen first."""
    data = body.get("result", body)
    by_trace: dict[str, list[SpanView]] = {}
    for resource_spans in data.get("resourceSpans") or []:
        resource = attributes((resource_spans.get("resource") or {}).get("attributes"))
        for scope_spans in resource_spans.get("scopeSpans") or []:
            for raw in scope_spans.get("spans") or []:
                span = _span(raw, resource)
                by_trace.setdefault(span.trace_id, []).append(span)
    return [
        Trace(trace_id, sorted(spans, key=lambda s: s.start_ns))
        for trace_id, spans in by_trace.items()
    ]


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class JaegerQuery:
    def __init__(self, base_url: str, timeout: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        # How messages name it: a password or key in the address stays out of them.
        self.shown_url = without_secrets(self.base_url)
        self.timeout = timeout
        self._opener = opener_for(self.base_url)

    def services(self) -> list[str]:
        path = "/api/v3/services"
        services = self._get(path).get("services") or []
        if not isinstance(services, list) or not all(isinstance(s, str) for s in services):
            raise self._not_an_answer(path, "services is not a list of names")
        return sorted(services)

    def operations(self, service: str, span_kind: str | None = None) -> list[Operation]:
        params = {"service": service, "spanKind": span_kind}
        body = self._get("/api/v3/operations", params)
        with self._answer_of("/api/v3/operations"):
            return [
                Operation(o.get("name", ""), o.get("spanKind", ""))
                for o in body.get("operations") or []
            ]

    def find_traces(
        self,
        service: str | None = None,
        operation: str | None = None,
        *,
        start: datetime,
        end: datetime,
        attributes: Mapping[str, str] | None = None,
        duration_min: str | None = None,
        duration_max: str | None = None,
        search_depth: int = 20,
    ) -> list[Trace]:
        """Traces with at least one span matching every condition (Jaeger's FindTraces)."""
        params = {
            "query.serviceName": service,
            "query.operationName": operation,
            "query.startTimeMin": format_time(start),
            "query.startTimeMax": format_time(end),
            "query.attributes": json.dumps(dict(attributes)) if attributes else None,
            "query.durationMin": duration_min,
            "query.durationMax": duration_max,
            "query.searchDepth": str(search_depth),
        }
        try:
            body = self._get("/api/v3/traces", params)
        except QueryError as exc:
            if _nothing_found(exc):  # Jaeger answers "no traces" with 404
                return []
            raise
        with self._answer_of("/api/v3/traces"):
            return parse_traces(body)

    def get_trace(self, trace_id: str) -> Trace | None:
        # safe="": a base64 id's "/" is part of the id, not of the path.
        path = f"/api/v3/traces/{quote(trace_id, safe='')}"
        try:
            body = self._get(path)
        except QueryError as exc:
            if _nothing_found(exc):
                return None
            raise
        with self._answer_of(path):
            traces = parse_traces(body)
        return traces[0] if traces else None

    def breakdown(
        self,
        group_by: str,
        *,
        start: datetime,
        end: datetime,
        service: str | None = None,
        operation: str | None = None,
        where: Mapping[str, str] | None = None,
        limit: int = 50,
    ) -> dict[str, Any]:
        """The local store's breakdown (docs/store-api.md), as its JSON answer."""
        params = {"groupBy": group_by, "limit": str(limit)}
        answer = self._o11ykit("breakdown", params, start, end, service, operation, where)
        self._check_fields("breakdown", answer, _BREAKDOWN_FIELDS, "groups", _GROUP_FIELDS)
        return answer

    def compare(
        self,
        selection: str,
        *,
        start: datetime,
        end: datetime,
        service: str | None = None,
        operation: str | None = None,
        where: Mapping[str, str] | None = None,
        limit: int = 20,
    ) -> dict[str, Any]:
        """The local store's compare; `selection` is "errors", "origin-errors" or
        "slower:<duration>"."""
        params = {"selection": selection, "limit": str(limit)}
        answer = self._o11ykit("compare", params, start, end, service, operation, where)
        self._check_fields("compare", answer, _COMPARE_FIELDS, "pairs", _PAIR_FIELDS)
        return answer

    def _o11ykit(
        self,
        endpoint: str,
        params: dict[str, str | None],
        start: datetime,
        end: datetime,
        service: str | None,
        operation: str | None,
        where: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        params.update(
            start=format_time(start),
            end=format_time(end),
            service=service,
            operation=operation,
            where=json.dumps(dict(where)) if where else None,
        )
        return self._local_store_only(endpoint, params)

    def status(self) -> dict[str, Any]:
        """What the local store holds (docs/store-api.md), as its JSON answer."""
        answer = self._local_store_only("status", {})
        wrong = _wrong_fields(answer, _STATUS_FIELDS)
        if wrong:
            raise self._not_an_answer(
                "/api/o11ykit/status", f"no {', '.join(wrong)} as the store sends it"
            )
        return answer

    def _local_store_only(self, endpoint: str, params: dict[str, str | None]) -> dict[str, Any]:
        try:
            return self._get(f"/api/o11ykit/{endpoint}", params)
        except QueryError as exc:
            # Jaeger has no such endpoint: a 404, or its UI's HTML page in place of JSON. So
            # does a wrong address (the store's OTLP port): only a server that answers the
            # Jaeger API is a Jaeger.
            if exc.status in (404, 200) and self._speaks_jaeger_api():
                raise QueryError(
                    f"{self.shown_url} has no /api/o11ykit/{endpoint}: breakdown, compare and"
                    " status exist only in o11ykit's local store, not in Jaeger",
                    exc.status,
                ) from None
            raise

    def _check_fields(
        self,
        endpoint: str,
        answer: dict[str, Any],
        fields: Mapping[str, tuple[type, ...]],
        items: str,
        item_fields: Mapping[str, tuple[type, ...]],
    ) -> None:
        """QueryError unless `answer` has `fields` and each of its `items` has `item_fields`,
        each of its type."""
        wrong = _wrong_fields(answer, fields)
        for row in [] if wrong else answer[items]:
            if wrong := _wrong_fields(row, item_fields):
                break
        if wrong:
            raise self._not_an_answer(
                f"/api/o11ykit/{endpoint}", f"no {', '.join(wrong)} as the store sends it"
            )

    @contextmanager
    def _answer_of(self, path: str) -> Iterator[None]:
        """Reading an answer of `path`: JSON of another shape is a QueryError, not a crash."""
        try:
            yield
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise self._not_an_answer(path, f"{type(exc).__name__}: {exc}") from None

    def _not_an_answer(self, path: str, what: str) -> QueryError:
        """Another program on the port can answer 200 with JSON of its own."""
        return QueryError(
            f"{self.shown_url}{path} answered JSON that is not an answer of Jaeger's query API or"
            f" o11ykit's store ({what}): is that the query address?",
            200,
        )

    def _speaks_jaeger_api(self) -> bool:
        try:
            self._get("/api/v3/services")
        except QueryError:
            return False
        return True

    def _get(self, path: str, params: Mapping[str, str | None] | None = None) -> dict[str, Any]:
        query = urlencode({k: v for k, v in (params or {}).items() if v is not None})
        url = f"{self.base_url}{path}" + (f"?{query}" if query else "")
        try:
            with self._opener.open(url, timeout=self.timeout) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            raise QueryError(
                _error_message(exc.code, exc.read(), without_secrets(url)), exc.code
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise QueryError(
                f"cannot reach the query API at {self.shown_url}: {reason} (is the store or Jaeger"
                " running, and is that its query address?)"
            ) from None
        except http.client.HTTPException as exc:  # what answered is not HTTP/1.x: gRPC, say
            raise QueryError(
                f"what answers at {self.shown_url} does not speak HTTP/1.1"
                f" ({type(exc).__name__}): is that the query address? (the store's query port"
                " is 16686 by default; 4317 is its OTLP/gRPC port)"
            ) from None
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise QueryError(f"{without_secrets(url)} did not answer with a JSON object", status)
        return body


# What Jaeger's query API says, with a 404, when it holds nothing that matches: "No traces
# found" (v2's HTTP gateway, for a search and for a trace id alike), or its storage's
# ErrTraceNotFound, "trace not found", possibly wrapped in more words (v1's gateway, and
# v2 when a storage returns it). Any other 404 is a wrong address.
_NOTHING_FOUND = ("no traces found", "trace not found")
# What `o11ykit traces` reads of the store's breakdown and compare answers (docs/store-api.md),
# with the JSON types it reads them as.
_NUMBER = (int, float)
_TEXT = (str,)
_TEXT_OR_NULL = (str, type(None))
_BREAKDOWN_FIELDS = {"total": _NUMBER, "groupBy": _TEXT, "source": _TEXT, "groups": (list,)}
_GROUP_FIELDS = {
    "value": _TEXT_OR_NULL,
    **dict.fromkeys(("count", "errors", "errorRate", "p50Ms", "p95Ms", "p99Ms"), _NUMBER),
}
_STATUS_FIELDS = {
    **dict.fromkeys(
        ("spans", "services", "evictedSpans", "droppedSpans", "databaseBytes", "walBytes"), _NUMBER
    ),
    "oldestSpanStart": _TEXT_OR_NULL,
    "newestSpanStart": _TEXT_OR_NULL,
}
_COMPARE_FIELDS = {
    "selection": _TEXT,
    "selectionCount": _NUMBER,
    "baselineCount": _NUMBER,
    "pairs": (list,),
}
_PAIR_FIELDS = {
    "key": _TEXT,
    "value": _TEXT_OR_NULL,
    **dict.fromkeys(
        ("selectionPct", "selectionCount", "baselinePct", "baselineCount", "differencePct"),
        _NUMBER,
    ),
}


def _wrong_fields(document: object, fields: Mapping[str, tuple[type, ...]]) -> list[str]:
    """The names in `fields` that `document` lacks or holds as another type (a bool is not
    a number here, though Python counts it as one)."""
    if not isinstance(document, dict):
        return list(fields)
    return [
        name
        for name, types in fields.items()
        if name not in document
        or isinstance(document[name], bool)
        or not isinstance(document[name], types)
    ]


def _nothing_found(exc: QueryError) -> bool:
    """Whether a refusal is the API's "nothing matches", not a path that does not exist:
    a proxy or a wrong port answering 404 must not read as an empty store."""
    return exc.status == 404 and _says_nothing_found(str(exc))


def _says_nothing_found(message: str) -> bool:
    return any(words in message.lower() for words in _NOTHING_FOUND)


def _error_message(status: int, raw: bytes, url: str) -> str:
    """The server's own words: google.rpc.Status or the grpc-gateway envelope; else the status."""
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        detail = body.get("error", body)
        if isinstance(detail, dict) and detail.get("message"):
            message = str(detail["message"])
            if status == 404 and not _says_nothing_found(message):
                # Not "nothing matches" but a path the server lacks: say which path.
                return f"{message} (HTTP 404 for {urlsplit(url).path})"
            return message
    if status == 404:
        return f"{url} answered HTTP 404: is that Jaeger's query address (port 16686 by default)?"
    return f"{url} answered HTTP {status}"


# --------------------------------------------------------------------------------------------
# Jaeger UI links, for learners who would rather click
# --------------------------------------------------------------------------------------------


def ui_search_link(
    ui_base: str,
    service: str | None,
    operation: str | None = None,
    tags: Mapping[str, str] | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    min_duration: str | None = None,
    max_duration: str | None = None,
    limit: int = 20,
) -> str:
    """The Jaeger UI search page with the same conditions (times in microseconds)."""
    params: dict[str, str] = {}
    if service:
        params["service"] = service
    if operation:
        params["operation"] = operation
    if tags:
        params["tags"] = json.dumps(dict(tags), separators=(",", ":"))
    if min_duration:
        params["minDuration"] = min_duration
    if max_duration:
        params["maxDuration"] = max_duration
    if start is not None and end is not None:
        # The UI ignores start/end unless the lookback says they are custom. Its times are
        # unsigned: a window reaching back before 1970 starts there.
        params.update(
            lookback="custom",
            start=str(max(0, datetime_ns(start) // 1000)),
            end=str(datetime_ns(end) // 1000),
        )
    params["limit"] = str(limit)
    return f"{ui_base.rstrip('/')}/search?{urlencode(params)}"


def ui_trace_link(ui_base: str, trace_id: str) -> str:
    return f"{ui_base.rstrip('/')}/trace/{trace_id}"
