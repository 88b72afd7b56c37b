"""Breakdown and compare over a small store with known ground truth (rows written directly)."""

from __future__ import annotations

import json
import math
import random
from collections import Counter

import pytest

from o11ykit.store import (
    analytics,
    analytics_filters,
    analytics_http,
    compare_sides,
    grouping,
    span_scan,
)
from o11ykit.store.analytics import AnalyticsError, Selection
from o11ykit.store.schema import open_database
from tests.support.store_rows import CLIENT, ERROR, MS, OK, SERVER, SpanRow, StoreWriter

T0 = 1_750_000_000 * 1_000_000_000
WINDOW = (T0, T0 + 600 * 1_000_000_000)
TENANTS = ("beta", "gamma", "delta")


def workload(count: int = 2000, seed: int = 3) -> list[SpanRow]:
    """acme: 10% of the traffic, 90% of the errors; version 2.0: 20% of spans, ten times slower.

    Tenant and version are drawn independently, so neither explains the other.
    """
    rng = random.Random(seed)
    spacing = (WINDOW[1] - WINDOW[0]) // count
    rows = []
    for i in range(count):
        acme = rng.random() < 0.10
        tenant = "acme" if acme else rng.choice(TENANTS)
        version = "2.0" if rng.random() < 0.20 else "1.0"
        error = rng.random() < (0.45 if acme else 0.0055)
        base_ms = rng.randint(1, 100)
        attributes: dict[str, object] = {"http.route": rng.choice(("/cart", "/pay"))}
        if i % 50 != 7:  # a few spans carry no tenant: the "(none)" group
            attributes["tenant.id"] = tenant
        if i % 4 == 0:
            attributes["feature.flag"] = "new-checkout"  # not indexed: read from the span bytes
        rows.append(
            SpanRow(
                service="checkout",
                name=rng.choice(("GET /cart", "POST /pay")),
                start_ns=WINDOW[0] + i * spacing,
                duration_ns=base_ms * MS * (10 if version == "2.0" else 1) + i,
                status_code=ERROR if error else OK,
                kind=SERVER if i % 3 else CLIENT,
                attributes=attributes,
                resource={"service.version": version},
            )
        )
    return rows


def outside_window() -> list[SpanRow]:
    # Just before the window and exactly at its (exclusive) end: never counted.
    return [
        SpanRow(
            "checkout", "GET /cart", WINDOW[0] - 1, 5 * MS, ERROR, attributes={"tenant.id": "acme"}
        ),
        SpanRow(
            "checkout", "GET /cart", WINDOW[1], 5 * MS, ERROR, attributes={"tenant.id": "acme"}
        ),
    ]


@pytest.fixture(scope="module")
def rows() -> list[SpanRow]:
    return workload()


@pytest.fixture(scope="module")
def store(tmp_path_factory, rows):
    connection = open_database(tmp_path_factory.mktemp("store"))
    StoreWriter(connection).add_many([*rows, *outside_window()])
    yield connection
    connection.close()


def value_of(row: SpanRow, key: str) -> str | None:
    if key == "service.version":
        return row.resource.get(key)
    if key == "status":
        return {0: "unset", 1: "ok", 2: "error"}[row.status_code]
    if key == "name":
        return row.name
    value = row.attributes.get(key)
    return None if value is None else str(value)


def expected_groups(rows: list[SpanRow], key: str) -> dict[str | None, tuple]:
    """Brute force: count, errors and nearest-rank percentiles per value."""
    by_value: dict[str | None, list[SpanRow]] = {}
    for row in rows:
        by_value.setdefault(value_of(row, key), []).append(row)
    expected = {}
    for value, members in by_value.items():
        durations = sorted(r.duration_ns for r in members)
        ranks = [durations[math.ceil(q * len(durations)) - 1] / MS for q in (0.5, 0.95, 0.99)]
        errors = sum(r.status_code == ERROR for r in members)
        expected[value] = (len(members), errors, *ranks)
    return expected


def actual_groups(result: analytics.Breakdown) -> dict[str | None, tuple]:
    return {g.value: (g.count, g.errors, g.p50_ms, g.p95_ms, g.p99_ms) for g in result.groups}


# --------------------------------------------------------------------------------------------
# breakdown
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "source"),
    [
        ("tenant.id", analytics.INDEXED),
        ("service.version", analytics.RESOURCE),
        ("name", analytics.COLUMN),
        ("status", analytics.COLUMN),
        ("feature.flag", analytics.SPAN_BYTES),
    ],
)
def test_breakdown_is_exact_for_every_kind_of_key(store, rows, key, source):
    result = analytics.breakdown(store, group_by=key, start_ns=WINDOW[0], end_ns=WINDOW[1])

    assert result.source == source
    assert actual_groups(result) == expected_groups(rows, key)
    assert result.total == len(rows)
    counts = [g.count for g in result.groups]
    assert counts == sorted(counts, reverse=True)


def test_breakdown_shows_acme_errors_and_slow_version(store):
    by_tenant = analytics.breakdown(
        store, group_by="tenant.id", start_ns=WINDOW[0], end_ns=WINDOW[1]
    )
    groups = {g.value: g for g in by_tenant.groups}
    assert groups["acme"].errors / groups["acme"].count > 0.3
    assert groups[None].label == "(none)"
    by_version = analytics.breakdown(
        store, group_by="service.version", start_ns=WINDOW[0], end_ns=WINDOW[1]
    )
    versions = {g.value: g for g in by_version.groups}
    assert versions["2.0"].p50_ms > 5 * versions["1.0"].p50_ms


def test_breakdown_filters_by_service_operation_and_where(store, rows):
    acme_pay = [
        r for r in rows if r.attributes.get("tenant.id") == "acme" and r.name == "POST /pay"
    ]
    result = analytics.breakdown(
        store,
        group_by="service.version",
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        service="checkout",
        operation="POST /pay",
        where={"tenant.id": "acme"},
    )
    assert actual_groups(result) == expected_groups(acme_pay, "service.version")

    slow = [r for r in rows if r.resource["service.version"] == "2.0" and r.status_code == ERROR]
    result = analytics.breakdown(
        store,
        group_by="tenant.id",
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        where={"service.version": "2.0", "status": "error"},
    )
    assert actual_groups(result) == expected_groups(slow, "tenant.id")


def test_a_rare_where_pair_drives_the_statement_and_a_common_one_does_not(store, rows):
    routes = Counter(r.attributes["http.route"] for r in rows)
    commoner = max(routes, key=routes.__getitem__)  # more than half the window's spans

    def driver(where: dict[str, str]) -> tuple[str, str] | None:
        filters = analytics_filters.build_filters(store, *WINDOW, None, None, where)
        return filters.driver

    assert driver({"tenant.id": "acme"}) == ("tenant.id", "acme")  # ~10% of the window
    assert driver({"http.route": "/cart", "tenant.id": "acme"}) == ("tenant.id", "acme")
    assert driver({"http.route": commoner}) is None  # walked
    assert driver({"service.version": "2.0"}) is None  # a resource key: its resource ids
    assert driver({}) is None


# The keys each driven statement is checked on: indexed, resource, span bytes, columns.
KEYS = ("tenant.id", "http.route", "service.version", "feature.flag", "status", "name")


@pytest.mark.parametrize(
    ("where", "service", "operation"),
    [
        ({"tenant.id": "acme"}, None, None),
        ({"tenant.id": "acme", "http.route": "/pay"}, "checkout", "POST /pay"),
        ({"tenant.id": "acme", "service.version": "2.0", "status": "error"}, None, None),
        ({"tenant.id": "acme", "feature.flag": "new-checkout"}, None, None),  # span bytes
    ],
)
def test_driven_statements_answer_exactly_what_walking_the_window_does(
    store, monkeypatch, where, service, operation
):
    def answers() -> list[dict]:
        common = dict(
            start_ns=WINDOW[0], end_ns=WINDOW[1], service=service, operation=operation, where=where
        )
        return [
            *(analytics.breakdown(store, group_by=k, **common).to_dict() for k in KEYS),
            analytics.compare(store, selection=Selection.errors(), **common).to_dict(),
            analytics.compare(store, selection=Selection.slower_than(150), **common).to_dict(),
        ]

    assert analytics_filters.build_filters(store, *WINDOW, service, operation, where).driver
    driven = answers()
    monkeypatch.setattr(analytics_filters, "DRIVEN_SPAN_COST", 10**9)  # never worth it: walk
    assert analytics_filters.build_filters(store, *WINDOW, service, operation, where).driver is None
    assert answers() == driven


def test_where_on_an_unindexed_key_reads_span_bytes(store, rows):
    flagged = [r for r in rows if r.attributes.get("feature.flag") == "new-checkout"]
    result = analytics.breakdown(
        store,
        group_by="tenant.id",
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        where={"feature.flag": "new-checkout"},
    )
    assert result.source == analytics.SPAN_BYTES
    assert actual_groups(result) == expected_groups(flagged, "tenant.id")


def test_span_bytes_scan_is_capped_and_says_so(store, rows, monkeypatch):
    monkeypatch.setattr(span_scan, "SCAN_LIMIT", 100)
    result = analytics.breakdown(
        store, group_by="feature.flag", start_ns=WINDOW[0], end_ns=WINDOW[1]
    )
    assert result.truncated and "newest 100" in result.note
    assert result.total == 100
    # The newest spans are the ones read.
    assert actual_groups(result) == expected_groups(rows[-100:], "feature.flag")


def test_breakdown_limit_and_kind_labels(store):
    result = analytics.breakdown(
        store, group_by="kind", start_ns=WINDOW[0], end_ns=WINDOW[1], limit=1
    )
    assert [g.value for g in result.groups] == ["server"]
    assert result.more_groups == 1
    clients = analytics.breakdown(
        store, group_by="name", start_ns=WINDOW[0], end_ns=WINDOW[1], where={"kind": "client"}
    )
    assert clients.total == len(range(0, 2000, 3))


def test_breakdown_to_dict_is_json(store):
    result = analytics.breakdown(store, group_by="tenant.id", start_ns=WINDOW[0], end_ns=WINDOW[1])
    body = json.loads(json.dumps(result.to_dict()))
    assert body["groupBy"] == "tenant.id"
    assert body["groups"][0].keys() >= {"value", "count", "errors", "p50Ms", "p95Ms", "p99Ms"}
    assert body["startTimeUnixNano"] == str(WINDOW[0])


def test_bad_parameters_are_refused(store):
    with pytest.raises(AnalyticsError, match="end must be after start"):
        analytics.breakdown(store, group_by="name", start_ns=WINDOW[1], end_ns=WINDOW[0])
    with pytest.raises(AnalyticsError, match="status must be one of"):
        analytics.breakdown(
            store, group_by="name", start_ns=WINDOW[0], end_ns=WINDOW[1], where={"status": "x"}
        )
    with pytest.raises(AnalyticsError, match="at least 0 ms, got -1"):
        Selection.slower_than(-1)


def test_empty_window_gives_no_groups(store):
    result = analytics.breakdown(store, group_by="tenant.id", start_ns=1, end_ns=2)
    assert result.groups == [] and result.total == 0


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert grouping.percentile(values, 0.5) == 50
    assert grouping.percentile(values, 0.95) == 95
    assert grouping.percentile(values, 0.99) == 99
    assert grouping.percentile([7], 0.99) == 7


# --------------------------------------------------------------------------------------------
# compare
# --------------------------------------------------------------------------------------------


def test_errors_bubble_up_acme(store, rows):
    result = analytics.compare(
        store, start_ns=WINDOW[0], end_ns=WINDOW[1], selection=Selection.errors()
    )
    top = result.pairs[0]
    assert (top.key, top.value) == ("tenant.id", "acme")
    errors = [r for r in rows if r.status_code == ERROR]
    acme_errors = sum(r.attributes.get("tenant.id") == "acme" for r in errors)
    assert result.selection_count == len(errors)
    assert result.baseline_count == len(rows) - len(errors)
    assert top.selection_count == acme_errors
    assert top.selection_pct == pytest.approx(100 * acme_errors / len(errors))
    assert top.difference > 70
    assert "status" not in result.keys  # trivially different for errors: not a default key


def test_slow_spans_bubble_up_version_2(store):
    result = analytics.compare(
        store,
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        selection=Selection.slower_than(150),
    )
    top = result.pairs[0]
    assert (top.key, top.value) == ("service.version", "2.0")
    assert top.selection_pct == 100.0
    assert top.baseline_count < top.selection_count


def test_sampled_baseline_still_ranks_acme_first(store, monkeypatch):
    monkeypatch.setattr(compare_sides, "COMPARE_SAMPLE", 300)
    result = analytics.compare(
        store, start_ns=WINDOW[0], end_ns=WINDOW[1], selection=Selection.errors()
    )
    assert result.baseline_examined < result.baseline_count
    assert (result.pairs[0].key, result.pairs[0].value) == ("tenant.id", "acme")


def propagated_failures(requests: int = 400, canary_share: float = 0.2) -> list[SpanRow]:
    """Requests gateway -> checkout -> orders; the canary's orders (1.8.0) fails every one.

    Each failure marks the canary's server span and the four spans above it (two services
    at 1.4.2, a server and a client span each), as HTTP failures do on their way back. A
    catalog service (3.0) answers every request too, without failing.
    """
    rng = random.Random(7)
    spacing = (WINDOW[1] - WINDOW[0]) // requests
    rows = []
    for i in range(requests):
        trace_id = rng.randbytes(16)
        canary = rng.random() < canary_share
        status = ERROR if canary else OK
        parent = None
        chain = [("gateway", "1.4.2"), ("checkout", "1.4.2")]
        for service, version in chain:
            for kind in (SERVER, CLIENT):
                span_id = rng.randbytes(8)
                rows.append(
                    SpanRow(
                        service,
                        f"{'GET' if kind == SERVER else 'call'} /{service}",
                        WINDOW[0] + i * spacing,
                        5 * MS,
                        status,
                        kind=kind,
                        attributes={"tenant.id": rng.choice(TENANTS)},
                        resource={"service.version": version},
                        trace_id=trace_id,
                        span_id=span_id,
                        parent_span_id=parent,
                    )
                )
                parent = span_id
        orders = rng.randbytes(8)
        version = "1.8.0" if canary else "1.5.0"
        for service, name, span_id, parent_id, span_status in (
            ("orders", "GET /orders", orders, parent, status),
            ("orders", "SELECT orders", rng.randbytes(8), orders, OK),  # its query succeeded
            *(("catalog", "GET /items", rng.randbytes(8), parent, OK) for _ in range(3)),
        ):
            rows.append(
                SpanRow(
                    service,
                    name,
                    WINDOW[0] + i * spacing,
                    2 * MS,
                    span_status,
                    resource={"service.version": "3.0" if service == "catalog" else version},
                    trace_id=trace_id,
                    span_id=span_id,
                    parent_span_id=parent_id,
                )
            )
    return rows


def test_origin_errors_rank_the_failing_span_above_those_it_propagated_to(tmp_path):
    rows = propagated_failures()
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many(rows)
    window = {"start_ns": WINDOW[0], "end_ns": WINDOW[1]}
    every = analytics.compare(connection, selection=Selection.errors(), **window)
    origin = analytics.compare(connection, selection=Selection.origin_errors(), **window)
    connection.close()

    failures = sum(r.name == "GET /orders" and r.status_code == ERROR for r in rows)
    assert failures > 50
    # Among all errors, the callers' version (4 spans a failure) outranks the cause's (1).
    assert every.selection_count == 5 * failures
    assert (every.pairs[0].key, every.pairs[0].value) == ("service.version", "1.4.2")
    # Where the failures began: the canary's server spans alone.
    assert origin.selection == "errors where they began"
    assert origin.selection_count == failures
    assert origin.baseline_count == len(rows) - failures
    top = origin.pairs[0]
    assert (top.key, top.value, top.selection_pct) == ("service.version", "1.8.0", 100.0)
    assert ("service.name", "orders") in {(p.key, p.value) for p in origin.pairs}
    assert "1.4.2" not in {p.value for p in origin.pairs}


def test_compare_on_span_bytes_keys(store):
    result = analytics.compare(
        store,
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        selection=Selection.errors(),
        keys=["tenant.id", "feature.flag", "service.version"],
    )
    assert (result.pairs[0].key, result.pairs[0].value) == ("tenant.id", "acme")
    assert result.selection_examined == result.selection_count


def test_uniform_errors_make_nothing_stand_out(tmp_path):
    rng = random.Random(11)
    rows = workload(5000, seed=5)
    for row in rows:  # errors independent of every attribute
        row.status_code = ERROR if rng.random() < 0.1 else OK
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many(rows)
    result = analytics.compare(
        connection, start_ns=WINDOW[0], end_ns=WINDOW[1], selection=Selection.errors()
    )
    connection.close()
    assert result.selection_count > 450
    assert all(p.difference < 6 for p in result.pairs), result.pairs[:3]


def test_compare_to_dict_is_json(store):
    result = analytics.compare(
        store, start_ns=WINDOW[0], end_ns=WINDOW[1], selection=Selection.errors(), limit=3
    )
    body = json.loads(json.dumps(result.to_dict()))
    assert len(body["pairs"]) == 3
    assert body["selection"] == "errors"
    assert body["pairs"][0]["key"] == "tenant.id"


# --------------------------------------------------------------------------------------------
# /api/o11ykit/* parameters
# --------------------------------------------------------------------------------------------

START_TEXT, END_TEXT = "2025-06-15T15:06:40Z", "2025-06-15T15:16:40.000000000Z"


def test_http_breakdown_and_compare_answer_json(store):
    params = {"groupBy": "tenant.id", "start": START_TEXT, "end": END_TEXT, "limit": "2"}
    status, body = analytics_http.handle("GET", "/api/o11ykit/breakdown", params, store)
    assert status == 200 and len(body["groups"]) == 2 and body["total"] == 2000
    params = {"selection": "slower:150ms", "start": START_TEXT, "end": END_TEXT}
    status, body = analytics_http.handle("GET", "/api/o11ykit/compare/", params, store)
    assert status == 200 and body["selection"] == "slower than 150ms"
    assert (body["pairs"][0]["key"], body["pairs"][0]["value"]) == ("service.version", "2.0")
    params = {"selection": "origin-errors", "start": START_TEXT, "end": END_TEXT}
    status, body = analytics_http.handle("GET", "/api/o11ykit/compare", params, store)
    assert status == 200 and body["selection"] == "errors where they began"
    assert (body["pairs"][0]["key"], body["pairs"][0]["value"]) == ("tenant.id", "acme")
    where = {"where": '{"tenant.id": "acme"}', "groupBy": "status"}
    status, body = analytics_http.handle(
        "GET", "/api/o11ykit/breakdown", {**where, "start": START_TEXT, "end": END_TEXT}, store
    )
    assert status == 200 and body["total"] == sum(g["count"] for g in body["groups"])


def test_the_longest_go_duration_as_a_threshold_selects_nothing_rather_than_failing(store):
    # 2^63 - 1 ns through float milliseconds rounds to 2^63, which SQLite cannot bind.
    longest = "slower:2562047h47m16.854775807s"
    params = {"selection": longest, "start": START_TEXT, "end": END_TEXT}
    status, body = analytics_http.handle("GET", "/api/o11ykit/compare", params, store)
    assert status == 200 and body["selectionCount"] == 0, body


def test_a_key_asked_for_twice_is_ranked_once(store):
    result = analytics.compare(
        store,
        start_ns=WINDOW[0],
        end_ns=WINDOW[1],
        selection=Selection.errors(),
        keys=["tenant.id", "tenant.id"],
    )
    ranked = [(pair.key, pair.value) for pair in result.pairs]
    assert ranked[0] == ("tenant.id", "acme")
    assert len(ranked) == len(set(ranked))


@pytest.mark.parametrize(
    ("path", "params", "named"),
    [
        ("/api/o11ykit/breakdown", {}, "groupBy is required"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "start": "yesterday"}, "start:"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "end": "2025-13"}, "end:"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "limit": "0"}, "limit must be"),
        # Counts are ASCII digits, as the docs list them; int() would take these as 10 and 1.
        ("/api/o11ykit/breakdown", {"groupBy": "name", "limit": "1_0"}, "limit must be"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "limit": "\uff11"}, "limit must be"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "limit": " 5"}, "limit must be"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "where": "{"}, "where is not JSON"),
        ("/api/o11ykit/breakdown", {"groupBy": "name", "where": '{"a":[1]}'}, "where must be"),
        (
            "/api/o11ykit/compare",
            {"selection": "slow"},
            "accepted: errors, origin-errors, slower:<duration>",
        ),
        ("/api/o11ykit/compare", {"selection": "slower:fast"}, "selection: 'fast'"),
        (
            "/api/o11ykit/compare",
            {"selection": "errors", "start": END_TEXT, "end": START_TEXT},
            "end must be after start",
        ),
        # Misspelt or Jaeger's names: refused, not read as "the whole store, last hour".
        (
            "/api/o11ykit/breakdown",
            {"groupBy": "name", "serviceName": "orders"},
            "unknown parameter serviceName; /api/o11ykit/breakdown accepts groupBy, start,",
        ),
        (
            "/api/o11ykit/compare/",
            {"selection": "errors", "since": "1h", "query.serviceName": "orders"},
            "unknown parameters query.serviceName, since; /api/o11ykit/compare accepts"
            " selection, keys, start, end, service, operation, where, limit",
        ),
    ],
)
def test_http_bad_parameters_are_400_naming_them(store, path, params, named):
    status, body = analytics_http.handle("GET", path, params, store)
    assert status == 400 and body["code"] == 3
    assert named in body["message"]


def test_http_unknown_path_and_method(store):
    status, body = analytics_http.handle("GET", "/api/o11ykit/bubbleup", {}, store)
    assert status == 404 and body["code"] == 5 and "/api/o11ykit/compare" in body["message"]
    status, body = analytics_http.handle("POST", "/api/o11ykit/compare", {}, store)
    assert status == 405


def test_the_compare_sample_is_not_fooled_by_spans_that_alternate(tmp_path, monkeypatch):
    """Row ids follow export order: a client span, then its server span, trace after trace.
    Sampled every k-th id, one side saw one service only: 50 points of difference from
    nothing."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
        ExportTraceServiceRequest,
    )

    from o11ykit.store.ingest import Store
    from tests.support.store_data import T0, request, span

    monkeypatch.setattr(compare_sides, "COMPARE_SAMPLE", 1000)
    store = Store(tmp_path)
    for chunk in range(0, 4000, 500):
        body = ExportTraceServiceRequest()
        for t in range(chunk, chunk + 500):
            failed = t % 9 == 0  # both spans of one trace in nine
            client = span(t + 1, 2 * t + 1, "call", kind=3, start=T0 + t * MS, error=failed)
            server = span(t + 1, 2 * t + 2, "GET /x", parent=2 * t + 1, start=T0, error=failed)
            body.resource_spans.extend(request([client], "frontend").resource_spans)
            body.resource_spans.extend(request([server], "backend").resource_spans)
        store.ingest(body)
    store.close()
    connection = open_database(tmp_path, readonly=True)
    result = analytics.compare(
        connection,
        start_ns=T0,
        end_ns=T0 + 3600 * 10**9,
        selection=Selection.errors(),
        keys=["service.name"],
    )
    connection.close()
    assert result.baseline_count == 2 * 4000 - result.selection_count
    assert 700 <= result.baseline_examined <= 1300  # a sample, of about the size asked for
    # Half the spans of either side are the frontend's: nothing to rank.
    assert all(abs(pair.difference) < 5 for pair in result.pairs), result.pairs


def test_where_values_mean_what_a_searchs_do():
    """A stored double 2.0 is "2": a where of 2.0, 2 or "2" finds it, as query.attributes does."""
    raw = '{"ratio": 2.0, "count": 2, "text": "2", "big": 1e5, "ok": true, "third": 0.5}'
    assert analytics_http._where({"where": raw}) == {
        "ratio": "2",
        "count": "2",
        "text": "2",
        "big": "100000",
        "ok": "true",
        "third": "0.5",
    }


def test_an_indexed_key_groups_alike_whichever_way_the_spans_are_read(tmp_path):
    """An indexed key groups by the spans' own values (the index, the rollups and the SQL
    hold those alone), also when a filter on another key has the spans read from their
    bytes and a resource carries the same key."""
    rows = [
        SpanRow(
            "svc",
            "op",
            T0 + n * MS,
            MS,
            attributes={"custom": "1", **({"tenant.id": "own"} if n % 2 else {})},
            resource={"tenant.id": "from-resource"},
        )
        for n in range(10)
    ]
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many(rows)
    groupings = []
    for where in (None, {"custom": "1"}):
        result = analytics.breakdown(
            connection, group_by="tenant.id", start_ns=WINDOW[0], end_ns=WINDOW[1], where=where
        )
        groupings.append({g.value: g.count for g in result.groups})
        compared = analytics.compare(
            connection,
            start_ns=WINDOW[0],
            end_ns=WINDOW[1],
            selection=Selection.slower_than(0),
            where=where,
            keys=["tenant.id"],
        )
        groupings.append({p.value: p.selection_count for p in compared.pairs})
    connection.close()
    assert groupings[0] == groupings[2] == {"own": 5, None: 5}
    assert groupings[1] == groupings[3]


def test_a_key_no_span_or_resource_carries_is_named_with_the_keys_it_may_mean(tmp_path):
    # A misspelt key would otherwise show one "(none)" row holding every span, as if the
    # spans lacked the attribute.
    from o11ykit.store.batches import batch_from_request
    from o11ykit.store.ingest import Store
    from tests.support.store_data import T0 as START
    from tests.support.store_data import request
    from tests.support.store_data import span as otlp_span

    store = Store(tmp_path)
    spans = [otlp_span(1, 1, "GET", attributes={"tenant.id": "acme"}), otlp_span(2, 2, "GET")]
    store.write(batch_from_request(request(spans, **{"service.version": "1.0"})))
    window = {"start_ns": START - 10**9, "end_ns": START + 10**10}
    for key, meant in (("tenant_id", "tenant.id"), ("service_version", "service.version")):
        result = analytics.breakdown(store.connection, group_by=key, **window)
        assert [(g.value, g.count) for g in result.groups] == [(None, 2)]
        assert result.note == (
            f"no span or resource carries {key!r}, so every span is in (none);"
            f" did you mean {meant}?"
        )
    assert (
        "did you mean" not in analytics.breakdown(store.connection, group_by="zzz", **window).note
    )
    assert analytics.breakdown(store.connection, group_by="tenant.id", **window).note == ""
    store.close()


def test_a_limit_with_a_sign_is_taken_as_the_docs_list_it(store):
    params = {"groupBy": "tenant.id", "start": START_TEXT, "end": END_TEXT, "limit": "+2"}
    status, body = analytics_http.handle("GET", "/api/o11ykit/breakdown", params, store)
    assert status == 200 and len(body["groups"]) == 2


@pytest.mark.parametrize("key", ["kind", "status"])
def test_a_number_otlp_does_not_define_can_be_asked_for_as_breakdown_shows_it(tmp_path, key):
    # A sender's bug, stored as sent: breakdown shows it as "99", and where takes it back.
    rows = [
        SpanRow("svc", "odd", T0 + MS, MS, **{f"{key}_code" if key == "status" else key: 99}),
        SpanRow("svc", "even", T0 + 2 * MS, MS),
    ]
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many(rows)
    shown = analytics.breakdown(connection, group_by=key, start_ns=WINDOW[0], end_ns=WINDOW[1])
    assert "99" in [g.value for g in shown.groups]
    for number in ("99", "+99"):
        odd = analytics.breakdown(
            connection,
            group_by="name",
            start_ns=WINDOW[0],
            end_ns=WINDOW[1],
            where={key: number},
        )
        assert [(g.value, g.count) for g in odd.groups] == [("odd", 1)]
    for refused in ("2147483648", "1_0", "\uff11", "often"):
        with pytest.raises(AnalyticsError) as caught:
            analytics.breakdown(
                connection,
                group_by="name",
                start_ns=WINDOW[0],
                end_ns=WINDOW[1],
                where={key: refused},
            )
        assert f"where: {key} must be one of " in str(caught.value)
        assert "or a number from -2147483648 to 2147483647" in str(caught.value)
        assert str(caught.value).endswith(f"got {refused!r}")
    connection.close()


def _carried_by_none_store(tmp_path, spans: int):
    """`spans` spans a second apart, one in 10 failed; no span or resource carries
    "tenant_id", a few carry "custom" (read from span bytes)."""
    from o11ykit.store.batches import batch_from_request
    from o11ykit.store.ingest import Store
    from tests.support.store_data import SECOND, request
    from tests.support.store_data import T0 as START
    from tests.support.store_data import span as otlp_span

    store = Store(tmp_path)
    sent = [
        otlp_span(
            n,
            n,
            "GET",
            start=START + n * SECOND,
            duration=(n + 1) * MS,
            attributes={"tenant.id": "acme", "custom": "1"},
            error=n % 10 == 0,
        )
        for n in range(1, spans + 1)
    ]
    store.write(batch_from_request(request(sent)))
    return store, {"start_ns": START, "end_ns": START + (spans + 1) * SECOND}


def test_a_key_no_span_carries_counts_every_span_past_the_scan_limit(tmp_path, monkeypatch):
    # Every span is in (none): counted from the span rows, the scan limit is not reached,
    # and the note naming the key meant does not hide a partial count.
    monkeypatch.setattr(span_scan, "SCAN_LIMIT", 5)
    store, window = _carried_by_none_store(tmp_path, 30)
    result = analytics.breakdown(store.connection, group_by="tenant_id", **window)
    assert [(g.value, g.count, g.errors) for g in result.groups] == [(None, 30, 3)]
    assert (result.total, result.truncated, result.approximate) == (30, False, False)
    assert (result.groups[0].p50_ms, result.groups[0].p99_ms) == (16.0, 31.0)  # 2 to 31 ms
    assert result.note == (
        "no span or resource carries 'tenant_id', so every span is in (none);"
        " did you mean tenant.id?"
    )
    # A where only span bytes answer still reads them: partial, and both notes say so.
    scanned = analytics.breakdown(
        store.connection, group_by="tenant_id", where={"custom": "1"}, **window
    )
    assert (scanned.total, scanned.truncated) == (5, True)
    assert scanned.note.startswith("no span or resource carries 'tenant_id'")
    assert scanned.note.endswith(span_scan.truncated_note())
    store.close()


def test_a_key_no_span_carries_over_a_large_window_is_counted_from_rollups(tmp_path, monkeypatch):
    from o11ykit.store import rollup_reads

    monkeypatch.setattr(span_scan, "SCAN_LIMIT", 5)
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 10)
    store, window = _carried_by_none_store(tmp_path, 200)
    result = analytics.breakdown(store.connection, group_by="tenant_id", **window)
    assert [(g.value, g.count, g.errors) for g in result.groups] == [(None, 200, 20)]
    assert (result.total, result.truncated, result.approximate) == (200, False, True)
    assert result.note.startswith("no span or resource carries 'tenant_id'")
    assert result.note.endswith(rollup_reads.ROLLUP_NOTE)
    store.close()
