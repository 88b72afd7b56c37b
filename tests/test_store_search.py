"""Searches on keys only resources carry (service.version), Jaeger's error tag, and resource
schema URLs.

The writer lists every attribute key a span has carried (span_keys_seen); a search on a key
no span carries matches resources only, so it never reads span bytes. These tests check the
answers on both paths, that the fast one is taken, and the upgrade of an older store.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from o11ykit.store import analytics, otlp_json, queries
from o11ykit.store.batches import batch_from_request
from o11ykit.store.ingest import Store
from o11ykit.store.queries import Queries, TraceQuery
from o11ykit.store.schema import DATABASE_NAME
from o11ykit.store.search_params import trace_query
from tests.support.store_data import MS, SECOND, T0, kv, request, span

WINDOW = (T0 - SECOND, T0 + 3600 * SECOND)
SCHEMA_1_26 = "https://opentelemetry.io/schemas/1.26.0"


def write(store: Store, message: ExportTraceServiceRequest) -> None:
    store.write(batch_from_request(message, indexed_keys=store.indexed_keys))


def traces(store: Store, **attributes: str) -> list[int]:
    found = Queries(store.connection).find_traces(
        TraceQuery(*WINDOW, attributes=attributes, search_depth=1000)
    )
    return sorted(int.from_bytes(trace[0].trace_id, "big") for trace in found.traces)


def versioned(first: int, count: int, version: str, **attributes: str) -> ExportTraceServiceRequest:
    """`count` one-span traces of service `orders` at `version`, `attributes` on each span."""
    spans = [
        span(
            first + n, first + n, "GET /orders", start=T0 + (first + n) * MS, attributes=attributes
        )
        for n in range(count)
    ]
    return request(spans, "orders", **{"service.version": version})


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path)
    write(store, versioned(1, 3, "1.5.0", **{"tenant.id": "acme"}))
    write(store, versioned(4, 2, "2.0.0", **{"tenant.id": "acme", "feature.flag": "beta"}))
    yield store
    store.close()


def test_the_writer_lists_every_span_key_and_none_of_the_resource_keys(store):
    assert Queries(store.connection).keys_no_span_carries(
        ["service.version", "feature.flag", "tenant.id", "deployment.environment.name"]
    ) == {"service.version", "deployment.environment.name"}


def test_a_key_only_resources_carry_is_searched_without_reading_span_bytes(store, monkeypatch):
    def no_reading(*args: object) -> bool:
        raise AssertionError("span bytes were read for a key no span carries")

    monkeypatch.setattr(queries, "_matches_other", no_reading)
    assert traces(store, **{"service.version": "1.5.0"}) == [1, 2, 3]
    assert traces(store, **{"service.version": "2.0.0", "tenant.id": "acme"}) == [4, 5]
    assert traces(store, **{"service.version": "9.9.9"}) == []
    assert traces(store, **{"deployment.environment.name": "production"}) == []


def test_keys_spans_carry_are_still_read_from_the_span(store):
    assert traces(store, **{"feature.flag": "beta"}) == [4, 5]
    assert traces(store, **{"feature.flag": "beta", "service.version": "1.5.0"}) == []
    # Once one span carries service.version itself, spans and resources both match.
    write(store, request([span(9, 9, "job", start=T0, attributes={"service.version": "1.5.0"})]))
    assert traces(store, **{"service.version": "1.5.0"}) == [1, 2, 3, 9]


def test_spans_written_without_their_keys_listed_are_read_until_the_writer_lists_them(tmp_path):
    store = Store(tmp_path)
    write(store, versioned(1, 2, "1.5.0"))
    # Another writer (an older o11ykit) adds a span carrying the key, and lists nothing.
    store.connection.execute(
        "INSERT INTO spans SELECT id + 10, trace_id, span_id, parent_span_id, service, name,"
        " kind, start_ns, duration_ns, status_code, resource_id, scope_id, ? FROM spans"
        " WHERE id = 1",
        (span(1, 1, "GET /orders", start=T0 + MS, attributes={"service.version": "3.0.0"})
         .SerializeToString(),),
    )  # fmt: skip
    assert Queries(store.connection).keys_no_span_carries(["service.version"]) == set()
    assert traces(store, **{"service.version": "3.0.0"}) == [1]
    store.close()
    # The writer lists the keys of the spans written without them when it next opens.
    store = Store(tmp_path)
    assert Queries(store.connection).keys_no_span_carries(["service.version", "x"]) == {"x"}
    assert traces(store, **{"service.version": "3.0.0"}) == [1]
    store.close()


def test_a_store_from_schema_5_gets_its_span_keys_and_resource_schema_urls(tmp_path):
    store = Store(tmp_path)
    write(store, versioned(1, 2, "1.5.0", **{"feature.flag": "beta"}))
    store.close()
    # Back to schema 5: no resource schema URL column, no span keys listed.
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        connection.executescript(
            "ALTER TABLE resources DROP COLUMN schema_url; DELETE FROM span_keys_seen;"
            " UPDATE meta SET value = 0 WHERE key = 'span_keys_seen_through_id';"
            " UPDATE meta SET value = 5 WHERE key = 'schema_version';"
        )
    store = Store(tmp_path)
    assert Queries(store.connection).keys_no_span_carries(["service.version", "feature.flag"]) == {
        "service.version"
    }
    write(store, with_schema_url(versioned(3, 1, "1.5.0"), SCHEMA_1_26))
    assert traces(store, **{"service.version": "1.5.0"}) == [1, 2, 3]
    assert resource_schema_urls(store, 1) == [None]
    assert resource_schema_urls(store, 3) == [SCHEMA_1_26]
    store.close()


def service_indexes(store: Store) -> list[str]:
    return [
        name
        for (name,) in store.connection.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND name LIKE 'spans_service%'"
        )
    ]


def operation_traces(store: Store, operation: str | None) -> list[int]:
    query = TraceQuery(*WINDOW, service="orders", operation=operation, search_depth=1000)
    found = Queries(store.connection).find_traces(query)
    return sorted(int.from_bytes(trace[0].trace_id, "big") for trace in found.traces)


# The service indexes of earlier schemas: two until schema 6, one not covering in schema 7.
EARLIER_SERVICE_INDEXES = {
    6: "CREATE INDEX spans_service_start ON spans(service, start_ns);"
    " CREATE INDEX spans_service_name_start ON spans(service, name, start_ns);",
    7: "CREATE INDEX spans_service_start_name ON spans(service, start_ns, name);",
}


@pytest.mark.parametrize("schema", sorted(EARLIER_SERVICE_INDEXES))
def test_a_store_from_an_earlier_schema_gets_the_covering_service_index(tmp_path, caplog, schema):
    store = Store(tmp_path)
    write(store, versioned(1, 2, "1.5.0"))
    store.close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:  # back to that schema
        connection.executescript(
            "DROP INDEX spans_service_start_cover;"
            + EARLIER_SERVICE_INDEXES[schema]
            + f" UPDATE meta SET value = {schema} WHERE key = 'schema_version';"
        )
    with caplog.at_level(logging.WARNING, logger="o11ykit.store"):
        store = Store(tmp_path)
    assert "building the service index once" in caplog.text  # said before a long start
    assert service_indexes(store) == ["spans_service_start_cover"]
    write(store, versioned(3, 1, "1.5.0"))
    other = [span(9, 9, "GET /other", start=T0 + 9 * MS)]
    write(store, request(other, "orders"))
    assert operation_traces(store, "GET /orders") == [1, 2, 3]
    assert operation_traces(store, None) == [1, 2, 3, 9]
    assert operation_traces(store, "nothing") == []
    store.close()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit.store"):
        Store(tmp_path).close()  # once only
    assert "building" not in caplog.text


@pytest.mark.parametrize(
    ("group_by", "minimum"),
    [("status", None), ("service.version", None), ("name", "1ms")],
    ids=["breakdown by status", "breakdown by a resource key", "search with a duration"],
)
def test_under_a_service_the_service_index_alone_is_read(store, group_by, minimum):
    """Covering (schema 8): a breakdown under a service reads no span row, and a search of
    its spans by duration reads the rows of the spans long enough alone (the duration is
    checked on the index entry first)."""
    write(store, versioned(1, 2, "1.5.0"))
    statements: list[str] = []
    store.connection.set_trace_callback(statements.append)
    if minimum:
        query = TraceQuery(*WINDOW, service="orders", duration_min_ns=MS)
        Queries(store.connection).find_traces(query)
    else:
        analytics.breakdown(
            store.connection, group_by=group_by, start_ns=WINDOW[0], end_ns=WINDOW[1],
            service="orders",
        )  # fmt: skip
    store.connection.set_trace_callback(None)
    reading = [sql for sql in statements if "s.service = " in sql or "service = '" in sql]
    assert reading, statements
    index = "INDEX spans_service_start_cover"
    used = index if minimum else f"COVERING {index}"
    for sql in reading:
        plan = [row[3] for row in store.connection.execute(f"EXPLAIN QUERY PLAN {sql}")]
        assert any(used in step for step in plan), plan


def with_schema_url(message: ExportTraceServiceRequest, url: str) -> ExportTraceServiceRequest:
    for resource_spans in message.resource_spans:
        resource_spans.schema_url = url
    return message


def resource_schema_urls(store: Store, trace: int) -> list[str | None]:
    found = Queries(store.connection).get_trace(f"{trace:032x}")
    assert found is not None
    document = otlp_json.result(found)
    return [entry.get("schemaUrl") for entry in document["result"]["resourceSpans"]]


def test_the_resource_schema_url_is_kept_and_part_of_the_resource_identity(tmp_path):
    store = Store(tmp_path)
    write(store, with_schema_url(versioned(1, 1, "1.5.0"), SCHEMA_1_26))
    write(store, versioned(2, 1, "1.5.0"))
    assert resource_schema_urls(store, 1) == [SCHEMA_1_26]
    assert resource_schema_urls(store, 2) == [None]
    # The same attributes under two schema URLs are two resources.
    (resources,) = store.connection.execute("SELECT count(*) FROM resources").fetchone()
    assert resources == 2
    store.close()


def test_jaegers_error_tag_is_the_status(store):
    write(store, request([span(7, 7, "GET /orders", start=T0 + 7 * MS, error=True)], "orders"))
    assert traces(store, error="true") == [7]
    assert traces(store, error="TRUE", **{"service.version": "1.5.0"}) == []
    assert traces(store, error="false", **{"service.version": "2.0.0"}) == [4, 5]
    # Every spelling Go's strconv.ParseBool takes, as Jaeger v2 reads the value.
    for true in ("1", "t", "T", "True"):
        assert traces(store, error=true) == [7]
    for false in ("0", "f", "F", "False"):
        assert traces(store, error=false, **{"service.version": "2.0.0"}) == [4, 5]
    with pytest.raises(queries.QueryError, match="'error' is true or false"):
        traces(store, error="yes")


def test_json_numbers_in_query_attributes_compare_as_ingest_stores_them(store):
    write(store, request([span(8, 8, "job", start=T0, attributes={"ratio": 2.0, "share": 0.25})]))
    window = {
        "query.startTimeMin": "2026-11-22T09:00:00Z",
        "query.startTimeMax": "2026-11-23T00:00:00Z",
    }
    for attributes in ('{"ratio": 2.0}', '{"ratio": 2}', '{"ratio": "2"}', '{"share": 0.25}'):
        query = trace_query({**window, "query.attributes": attributes})
        found = Queries(store.connection).find_traces(query)
        assert [trace[0].trace_id for trace in found.traces] == [(8).to_bytes(16, "big")], (
            attributes
        )


def test_jaegers_error_tag_in_a_breakdowns_where_is_the_status_too(store):
    write(store, request([span(7, 7, "GET /orders", start=T0 + 7 * MS, error=True)], "orders"))

    def groups(**where: str) -> dict[str | None, int]:
        found = analytics.breakdown(
            store.connection, group_by="name", start_ns=WINDOW[0], end_ns=WINDOW[1], where=where
        )
        return {group.value: group.count for group in found.groups}

    assert groups(error="true") == {"GET /orders": 1}
    assert groups(error="false") == {"GET /orders": 5}
    with pytest.raises(analytics.AnalyticsError, match="where: attribute 'error' is true or false"):
        groups(error="maybe")


def test_a_resource_key_spans_carry_too_is_grouped_by_the_spans_own_value(tmp_path):
    """host.name on the resource (node-1) and on two spans of its own (pod-9): a breakdown
    shows each span's own value where it has one, and a `where` matches either, as a search
    does."""
    store = Store(tmp_path)
    spans = [
        span(n, n, "GET /orders", start=T0 + n * MS, attributes={"host.name": "pod-9"})
        for n in (1, 2)
    ] + [span(n, n, "GET /orders", start=T0 + n * MS) for n in (3, 4, 5)]
    write(store, request(spans, "orders", **{"host.name": "node-1"}))
    window = {"start_ns": WINDOW[0], "end_ns": WINDOW[1]}
    by_host = analytics.breakdown(store.connection, group_by="host.name", **window)
    assert by_host.source == analytics.SPAN_BYTES
    assert {g.value: g.count for g in by_host.groups} == {"pod-9": 2, "node-1": 3}
    # Every span of the resource is on node-1; two of them report pod-9 themselves.
    for host, matching in (("pod-9", [1, 2]), ("node-1", [1, 2, 3, 4, 5])):
        by_name = analytics.breakdown(
            store.connection, group_by="name", where={"host.name": host}, **window
        )
        assert by_name.total == len(matching), host
        assert traces(store, **{"host.name": host}) == matching
    compared = analytics.compare(
        store.connection, selection=analytics.Selection.errors(), keys=["host.name"], **window
    )
    assert compared.baseline_count == 5
    store.close()


def test_spans_without_a_keys_bytes_are_not_decoded_and_answers_do_not_change(
    tmp_path, monkeypatch
):
    """A search (or a breakdown's where) on a key only some spans carry: the others are
    passed over on their bytes. A key that shows up elsewhere in a span (an event's
    attribute, a value) only costs the decoding; it does not match."""
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    store = Store(tmp_path)
    plain = [span(n, n, "GET /orders", start=T0 + n * MS) for n in range(1, 9)]
    flagged = span(9, 9, "GET /orders", start=T0 + 9 * MS, attributes={"feature.flag": "beta"})
    in_event = span(10, 10, "GET /orders", start=T0 + 10 * MS)
    in_event.events.add(name="toggle", attributes=[kv("feature.flag", "beta")])
    named = span(11, 11, "feature.flag", start=T0 + 11 * MS)  # the key's bytes as its name
    write(store, request([*plain, flagged, in_event, named], "orders"))
    decoded: list[bytes] = []
    real = Span.FromString

    def counting(data: bytes) -> Span:
        decoded.append(data)
        return real(data)

    monkeypatch.setattr(queries.Span, "FromString", counting)
    assert traces(store, **{"feature.flag": "beta"}) == [9]
    assert len(decoded) == 3  # the flagged span, the event's and the named one; none of 8
    decoded.clear()
    window = {"start_ns": WINDOW[0], "end_ns": WINDOW[1]}
    result = analytics.breakdown(
        store.connection, group_by="name", where={"feature.flag": "beta"}, **window
    )
    assert result.total == 1
    assert len(decoded) == 3
    assert queries.carries_keys(flagged.SerializeToString(), ["feature.flag"])
    assert not queries.carries_keys(plain[0].SerializeToString(), ["feature.flag"])
    store.close()


def test_an_unspecified_span_kind_is_listed_as_internal_as_jaeger_lists_it(tmp_path):
    # OTLP defines kinds 0 to 5; a sender's 99 is stored as sent and counts as unspecified.
    # Jaeger v2's gateway lists an operation of no kind as internal (http_gateway.go).
    store = Store(tmp_path)
    write(store, request([span(1, 1, "poll", kind=99), span(1, 2, "poll", kind=0)]))
    listed = Queries(store.connection)
    assert listed.operations("svc") == [("poll", "internal")]
    assert listed.operations("svc", "internal") == [("poll", "internal")]
    assert listed.operations("svc", "unspecified") == [("poll", "internal")]
    assert listed.operations("svc", "server") == []
    # The same name with kind internal too is one entry, and `unspecified` finds only the
    # spans that had no kind.
    write(store, request([span(1, 3, "poll", kind=1), span(1, 4, "tick", kind=1)]))
    assert listed.operations("svc") == [("poll", "internal"), ("tick", "internal")]
    assert listed.operations("svc", "unspecified") == [("poll", "internal")]
    store.close()
