"""The Jaeger API v3 questions over the store: services, operations, trace search, one trace.

Search follows Jaeger's semantics: every condition (service, operation, time window, duration,
each attribute pair) must hold for ONE span, and the answer is the whole of each trace that has
such a span, most recent first. An attribute pair matches the span's own attributes or its
resource's; keys in span_attributes are index lookups, other keys are read from the stored
span bytes of the candidates the other conditions leave.
"""

from __future__ import annotations

import base64
import re
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit import timeformats
from o11ykit.store.batches import value_text
from o11ykit.store.schema import (
    ATTRIBUTE_BLOCKS,
    ATTRIBUTE_LOOKUP,
    SPANS_WITH_PAIR,
    stored_indexed_keys,
)

DEFAULT_SEARCH_DEPTH = 20
MAX_SEARCH_DEPTH = 1000
SPAN_KINDS = {
    "unspecified": 0,
    "internal": 1,
    "server": 2,
    "client": 3,
    "producer": 4,
    "consumer": 5,
}
KIND_NAMES = {number: name for name, number in SPAN_KINDS.items()}
# Jaeger shows a span whose status is ERROR with the tag error=true, and its searches (the UI
# links o11ykit prints among them) ask for failing spans that way: the pair is the status.
ERROR_TAG = "error"
# Below this many spans carrying an attribute pair, the search starts from the pair's index
# entries; above it, walking the time window newest first finds enough traces sooner.
_SELECTIVE_PAIR = 20_000


class QueryError(ValueError):
    """A query parameter the store cannot use; the message names it."""


def pair_count(connection: sqlite3.Connection, key: str, value: str, limit: int) -> int:
    """Spans in the store carrying an indexed key and value, counted up to `limit`."""
    (count,) = connection.execute(
        f"{ATTRIBUTE_BLOCKS} SELECT count(*) FROM (SELECT 1 FROM"
        f" {ATTRIBUTE_LOOKUP.format(alias='a')} LIMIT ?)",
        (key, value, limit),
    ).fetchone()
    return count


def rarest_pair(
    connection: sqlite3.Connection, pairs: Mapping[str, str], limit: int
) -> tuple[int, tuple[str, str]] | None:
    """(spans, pair) of the rarest indexed pair carried by fewer than `limit` spans."""
    best: tuple[int, tuple[str, str]] | None = None
    for key, value in pairs.items():
        count = pair_count(connection, key, value, limit)
        if count < limit and (best is None or count < best[0]):
            best = (count, (key, value))
    return best


def driving_pair(
    connection: sqlite3.Connection, pairs: Mapping[str, str]
) -> tuple[str, str] | None:
    """The indexed pair a search starts from (its index entries joined to their spans, as
    SPANS_WITH_PAIR), if one is rare enough; else None: walk the time window."""
    found = rarest_pair(connection, pairs, _SELECTIVE_PAIR)
    return found[1] if found else None


def parse_time(text: str, name: str = "time") -> int:
    """RFC 3339 with up to nanoseconds (as Jaeger's HTTP API takes it) -> Unix nanoseconds."""
    try:
        return timeformats.parse_time(text)
    except ValueError as exc:
        raise QueryError(f"{name}: {exc}") from None


def parse_duration(text: str, name: str = "duration") -> int:
    """A Go duration ("1.5s", "250ms", "10us", "1h30m") -> nanoseconds."""
    try:
        return timeformats.parse_duration(text)
    except ValueError as exc:
        raise QueryError(f"{name}: {exc}") from None


def parse_trace_id(text: str) -> bytes:
    """Hex, 64 or 128 bits (a 64-bit id is the low half, as Jaeger reads it); failing that,
    the base64 of 8 or 16 bytes, standard or URL-safe, padded or not, as Jaeger v2 also
    accepts (OTLP JSON from some senders carries ids that way)."""
    if re.fullmatch(r"[0-9a-fA-F]{1,32}", text):
        return bytes.fromhex(text.rjust(32, "0"))
    raw = _from_base64(text) if len(text) <= 24 else None  # 16 bytes: 24 characters at most
    if raw is None or len(raw) not in (8, 16):
        raise QueryError(
            f"trace id {text[:64]!r} is neither 1 to 32 hex digits nor the base64 of 8 or 16 bytes"
        )
    return raw.rjust(16, b"\0")


def _from_base64(text: str) -> bytes | None:
    padded = text + "=" * (-len(text) % 4)
    for alphabet in (b"+/", b"-_"):
        try:
            return base64.b64decode(padded, altchars=alphabet, validate=True)
        except ValueError:  # binascii.Error is a ValueError
            continue
    return None


@dataclass(frozen=True)
class TraceQuery:
    start_min_ns: int
    start_max_ns: int
    service: str | None = None
    operation: str | None = None
    duration_min_ns: int | None = None
    duration_max_ns: int | None = None
    attributes: Mapping[str, str] = field(default_factory=dict)
    search_depth: int = DEFAULT_SEARCH_DEPTH


@dataclass(frozen=True)
class StoredSpan:
    trace_id: bytes
    resource_id: int
    scope_id: int
    data: bytes  # the OTLP Span protobuf bytes


@dataclass
class Traces:
    """Whole traces in answer order, with the resources and scopes their spans point at."""

    traces: list[list[StoredSpan]] = field(default_factory=list)
    # Row id -> (OTLP protobuf bytes, schema URL), for resources and scopes alike.
    resources: dict[int, tuple[bytes, str]] = field(default_factory=dict)
    scopes: dict[int, tuple[bytes, str]] = field(default_factory=dict)


class Queries:
    """Read-only questions over one connection (each server thread brings its own)."""

    def __init__(self, connection: sqlite3.Connection, indexed_keys: frozenset[str] | None = None):
        self.connection = connection
        self.indexed_keys = indexed_keys or stored_indexed_keys(connection)

    def services(self) -> list[str]:
        # A skip scan of the service index: one seek per distinct service, not one per span.
        rows = self.connection.execute(
            "WITH RECURSIVE s(name) AS ("
            " SELECT min(service) FROM spans"
            " UNION ALL"
            " SELECT (SELECT min(service) FROM spans WHERE service > s.name) FROM s"
            " WHERE s.name IS NOT NULL)"
            " SELECT name FROM s WHERE name IS NOT NULL"
        )
        return [name for (name,) in rows]

    def operations(self, service: str, span_kind: str | None = None) -> list[tuple[str, str]]:
        """(name, Jaeger span kind) pairs of one service, sorted."""
        wanted = span_kind.lower() if span_kind else None
        if wanted is not None and wanted not in SPAN_KINDS:
            raise QueryError(f"spanKind {span_kind!r} is not one of {', '.join(SPAN_KINDS)}")
        rows = self.connection.execute(
            "SELECT name, kind FROM operations WHERE service = ?", (service,)
        )
        # A kind number OTLP does not define (a sender's bug, stored as sent) counts as
        # unspecified. Jaeger v2's gateway lists unspecified operations as internal; they
        # are found by either name, so an operation listed is found by the kind it shows.
        shown = set()
        for name, number in rows:
            kind = KIND_NAMES.get(number, "unspecified")
            if wanted is None or wanted == kind or (wanted, kind) == ("internal", "unspecified"):
                shown.add((name, "internal" if kind == "unspecified" else kind))
        return sorted(shown)

    def get_trace(self, trace_id_hex: str) -> Traces | None:
        trace_id = parse_trace_id(trace_id_hex)
        answer = self._load([trace_id])
        return answer if answer.traces else None

    def find_traces(self, query: TraceQuery) -> Traces:
        return self._load(self.find_trace_ids(query))

    def find_trace_ids(self, query: TraceQuery) -> list[bytes]:
        """The ids of the traces a search finds, newest match first, searchDepth at most."""
        depth = max(1, min(query.search_depth or DEFAULT_SEARCH_DEPTH, MAX_SEARCH_DEPTH))
        found: dict[bytes, None] = {}  # insertion-ordered set: newest match first
        for trace_id in self._matching_trace_ids(query):
            found[trace_id] = None
            if len(found) >= depth:
                break
        return list(found)

    # -- search -------------------------------------------------------------------------------

    def _matching_trace_ids(self, query: TraceQuery) -> Iterator[bytes]:
        attributes = dict(query.attributes)
        error = attributes.pop(ERROR_TAG, None)
        indexed = {k: v for k, v in attributes.items() if k in self.indexed_keys}
        others = {k: v for k, v in attributes.items() if k not in self.indexed_keys}
        resource_matches = {
            key: self._resources_with(key, value) for key, value in attributes.items()
        }
        # A key no stored span carries can only match its resource: a lookup, not a read of
        # every span's bytes (service.version, deployment.environment.name...).
        resource_only = self.keys_no_span_carries(others)
        if any(not resource_matches[key] for key in resource_only):
            return
        others = {k: v for k, v in others.items() if k not in resource_only}
        # A pair whole resources match cannot be found through the span attribute index alone.
        driver = driving_pair(
            self.connection, {k: v for k, v in indexed.items() if not resource_matches[k]}
        )
        sql, parameters = self._search_sql(
            query,
            indexed,
            resource_matches,
            driver,
            resources_required={key: resource_matches[key] for key in resource_only},
            status=error_status_condition(error),
            read_bytes=bool(others),
        )
        for trace_id, resource_id, data in self.connection.execute(sql, parameters):
            if others and not _matches_other(others, resource_id, data, resource_matches):
                continue
            yield trace_id

    def keys_no_span_carries(self, keys: Iterable[str]) -> set[str]:
        return keys_no_span_carries(self.connection, keys)

    def _resources_with(self, key: str, value: str) -> set[int]:
        rows = self.connection.execute(
            "SELECT resource_id FROM resource_attributes WHERE key = ? AND value = ?",
            (key, value),
        )
        return {resource_id for (resource_id,) in rows}

    def _search_sql(
        self,
        query: TraceQuery,
        indexed: dict[str, str],
        resource_matches: dict[str, set[int]],
        driver: tuple[str, str] | None,
        *,
        resources_required: dict[str, set[int]],
        status: str | None,
        read_bytes: bool,
    ) -> tuple[str, list[Any]]:
        """`resources_required`: for keys only resources carry, the resources that match;
        `status`: a condition on the status code; `read_bytes`: select the span bytes too."""
        conditions = ["s.start_ns >= ?", "s.start_ns < ?"]
        parameters: list[Any] = [query.start_min_ns, query.start_max_ns]
        for column, value, operator in (
            ("s.service", query.service, "="),
            ("s.name", query.operation, "="),
            ("s.duration_ns", query.duration_min_ns, ">="),
            ("s.duration_ns", query.duration_max_ns, "<="),
        ):
            if value is not None and value != "":
                conditions.append(f"{column} {operator} ?")
                parameters.append(value)
        for key, value in indexed.items():
            if driver == (key, value):
                continue
            condition = (
                "EXISTS (SELECT 1 FROM span_attributes a"
                " WHERE a.key = ? AND a.value = ? AND a.span_id = s.id)"
            )
            parameters.extend((key, value))
            resources = resource_matches[key]
            if resources:
                condition = f"({condition} OR s.resource_id IN ({_numbers(resources)}))"
            conditions.append(condition)
        conditions += [f"s.resource_id IN ({_numbers(ids)})" for ids in resources_required.values()]
        if status:
            conditions.append(status)
        # Only the bytes of spans that need a look at a non-indexed key are read.
        columns = f"s.trace_id, s.resource_id, {'s.span' if read_bytes else 'NULL'}"
        where = " AND ".join(conditions)
        if driver:
            sql = (
                f"{ATTRIBUTE_BLOCKS} SELECT {columns} FROM {SPANS_WITH_PAIR}"
                f" WHERE {where} ORDER BY s.start_ns DESC"
            )
            return sql, [*driver, *parameters]
        return f"SELECT {columns} FROM spans s WHERE {where} ORDER BY s.start_ns DESC", parameters

    # -- whole traces -------------------------------------------------------------------------

    def _load(self, trace_ids: list[bytes]) -> Traces:
        answer = Traces()
        if not trace_ids:
            return answer
        by_trace: dict[bytes, list[StoredSpan]] = {trace_id: [] for trace_id in trace_ids}
        marks = ", ".join("?" * len(trace_ids))
        rows = self.connection.execute(
            "SELECT trace_id, resource_id, scope_id, span FROM spans"
            f" WHERE trace_id IN ({marks}) ORDER BY start_ns, id",
            trace_ids,
        )
        for row in rows:
            by_trace[row[0]].append(StoredSpan(*row))
        answer.traces = [spans for spans in by_trace.values() if spans]
        resource_ids = {span.resource_id for spans in answer.traces for span in spans}
        scope_ids = {span.scope_id for spans in answer.traces for span in spans}
        answer.resources = {
            resource_id: (data, schema_url)
            for resource_id, data, schema_url in self.connection.execute(
                "SELECT id, resource, schema_url FROM resources"
                f" WHERE id IN ({_numbers(resource_ids)})"
            )
        }
        answer.scopes = {
            scope_id: (data, schema_url)
            for scope_id, data, schema_url in self.connection.execute(
                f"SELECT id, scope, schema_url FROM scopes WHERE id IN ({_numbers(scope_ids)})"
            )
        }
        return answer


# The spellings Go's strconv.ParseBool takes, which Jaeger v2 reads the tag's value with.
_TRUE_TEXT = frozenset({"1", "t", "true"})
_FALSE_TEXT = frozenset({"0", "f", "false"})


def error_status_condition(value: str | None) -> str | None:
    """The condition on `s.status_code` for Jaeger's `error` tag (the status ERROR)."""
    if value is None:
        return None
    wanted = value.strip().lower()
    if wanted not in _TRUE_TEXT | _FALSE_TEXT:
        raise QueryError(
            f"attribute {ERROR_TAG!r} is true or false (the status ERROR; also 1, t, 0, f),"
            f" not {value!r}"
        )
    return "s.status_code = 2" if wanted in _TRUE_TEXT else "s.status_code != 2"


def _numbers(ids: set[int]) -> str:
    # Row ids from our own tables, so inlining them is safe and spares SQLite's variable limit.
    return ", ".join(str(int(i)) for i in sorted(ids)) or "NULL"


def carries_keys(data: bytes, keys: Iterable[str]) -> bool:
    """False when a key cannot be among the attributes of the encoded span `data`: protobuf
    writes a key's UTF-8 bytes as they are, so a span whose bytes lack them does not carry
    it. Looking costs ~0.3 µs a span where decoding costs ~5 (measured on the benchmark's
    spans); True means only "decode to know"."""
    return all(key.encode() in data for key in keys)


def _matches_other(
    pairs: dict[str, str], resource_id: int, data: bytes, resource_matches: dict[str, set[int]]
) -> bool:
    """The pairs on keys not indexed: on the span's resource, or in the span's own bytes."""
    missing = {k: v for k, v in pairs.items() if resource_id not in resource_matches[k]}
    if not missing:
        return True
    if not carries_keys(data, missing):
        return False
    attributes = {pair.key: pair.value for pair in Span.FromString(data).attributes}
    return all(
        key in attributes and value_text(attributes[key]) == value for key, value in missing.items()
    )


def keys_no_span_carries(connection: sqlite3.Connection, keys: Iterable[str]) -> set[str]:
    """Those of `keys` that no stored span has as an attribute (empty when the writer has
    not listed the keys of every stored span: then any key may be on a span)."""
    keys = set(keys)
    if not keys:
        return set()
    (listed,) = connection.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'span_keys_seen_through_id')"
        " >= coalesce((SELECT max(id) FROM spans), 0)"
    ).fetchone()
    if not listed:
        return set()
    marks = ", ".join("?" * len(keys))
    carried = connection.execute(
        f"SELECT key FROM span_keys_seen WHERE key IN ({marks})", list(keys)
    )
    return keys - {key for (key,) in carried}
