"""The store's Jaeger API v3, over HTTP from a real store process, checked against the OpenAPI.

Four traces with fixed ids and clocks (T0 = 2026-11-22T10:00:00Z):

  T1 at +1 s    frontend SERVER "GET /orders" 1.5 s, acme, status 500, error
                  backend SERVER "SELECT orders" 250 ms, acme, custom.note=hello
  T2 at +2 s    frontend SERVER "GET /orders" 100 ms, globex, status 200
                  backend CLIENT "SELECT orders" 5 ms, status 500   (globex and 500: two spans)
  T3 at +3 s    frontend SERVER "GET /health" 1 ms, globex, status 500  (both on one span)
                  frontend INTERNAL "render" 20 us, linked to T1
  T4 at +1 h    frontend SERVER "GET /orders" 2 min, acme

The backend's resource has region=eu (a resource attribute nothing indexes for spans).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.store.process import StoreProcess, spawn_store
from tests.support.store_data import MS, SECOND, T0, request, span, span_id, trace_id
from tests.support.store_openapi import validate, validate_error, validate_traces

pytestmark = pytest.mark.integration

SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL
WINDOW = {
    "query.startTimeMin": "2026-11-22T10:00:00Z",
    "query.startTimeMax": "2026-11-22T11:00:00Z",
}
WIDE = {"query.startTimeMin": "2026-11-22T00:00:00Z", "query.startTimeMax": "2026-11-23T00:00:00Z"}
T1, T2, T3, T4 = (trace_id(n).hex() for n in (1, 2, 3, 4))


def _dataset() -> list[bytes]:
    render = span(3, 32, "render", parent=31, kind=INTERNAL, start=T0 + 3 * SECOND, duration=20_000)
    render.links.add(trace_id=trace_id(1), span_id=span_id(11))
    frontend = [
        span(
            1,
            11,
            "GET /orders",
            start=T0 + SECOND,
            duration=1500 * MS,
            error=True,
            attributes={"tenant.id": "acme", "http.response.status_code": 500, "enduser.id": "u1"},
        ),
        span(
            2,
            21,
            "GET /orders",
            start=T0 + 2 * SECOND,
            duration=100 * MS,
            attributes={"tenant.id": "globex", "http.response.status_code": 200},
        ),
        span(
            3,
            31,
            "GET /health",
            start=T0 + 3 * SECOND,
            duration=MS,
            attributes={"tenant.id": "globex", "http.response.status_code": 500},
        ),
        render,
        span(
            4,
            41,
            "GET /orders",
            start=T0 + 3600 * SECOND,
            duration=120 * SECOND,
            attributes={"tenant.id": "acme"},
        ),
    ]
    backend = [
        span(
            1,
            12,
            "SELECT orders",
            parent=11,
            start=T0 + SECOND + 10 * MS,
            duration=250 * MS,
            attributes={"tenant.id": "acme", "custom.note": "hello"},
        ),
        span(
            2,
            22,
            "SELECT orders",
            parent=21,
            kind=CLIENT,
            start=T0 + 2 * SECOND + MS,
            duration=5 * MS,
            attributes={"http.response.status_code": 500},
        ),
    ]
    return [
        request(
            frontend, "frontend", **{"deployment.environment.name": "prod"}
        ).SerializeToString(),
        request(backend, "backend", region="eu").SerializeToString(),
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StoreProcess:
    with spawn_store(tmp_path_factory.mktemp("store-api"), grpc_port=None) as store:
        for body in _dataset():
            post = urllib.request.Request(
                store.traces_url, body, {"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(post, timeout=10) as answer:
                assert answer.status == 200
        yield store


def get(store: StoreProcess, path: str, params: dict[str, str] | None = None, method="GET"):
    url = f"{store.query_url}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def search(store: StoreProcess, window=WINDOW, **params: str) -> list[str]:
    """Trace ids of a search, in answer order; the body is validated on the way."""
    status, body = get(store, "/api/v3/traces", {**window, **params})
    assert status == 200, body
    validate_traces(body)
    return list(dict.fromkeys(_trace_ids(body)))


def _trace_ids(body: dict[str, Any]) -> list[str]:
    return [
        item["traceId"]
        for resource_spans in body["result"]["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for item in scope_spans["spans"]
    ]


def attrs(**pairs: str) -> str:
    return json.dumps({key.replace("_", "."): value for key, value in pairs.items()})


# -- services and operations -------------------------------------------------------------------


def test_services(store):
    status, body = get(store, "/api/v3/services")
    assert status == 200
    validate(body, "jaeger.api_v3.GetServicesResponse")
    assert body == {"services": ["backend", "frontend"]}


def test_operations_with_and_without_span_kind(store):
    status, body = get(store, "/api/v3/operations", {"service": "frontend"})
    assert status == 200
    validate(body, "jaeger.api_v3.GetOperationsResponse")
    assert body["operations"] == [
        {"name": "GET /health", "spanKind": "server"},
        {"name": "GET /orders", "spanKind": "server"},
        {"name": "render", "spanKind": "internal"},
    ]
    _, backend = get(store, "/api/v3/operations", {"service": "backend", "spanKind": "client"})
    assert backend["operations"] == [{"name": "SELECT orders", "spanKind": "client"}]
    _, snake = get(store, "/api/v3/operations", {"service": "backend", "span_kind": "server"})
    assert snake["operations"] == [{"name": "SELECT orders", "spanKind": "server"}]
    assert get(store, "/api/v3/operations", {"service": "nobody"}) == (200, {"operations": []})


# -- one trace ---------------------------------------------------------------------------------


def test_get_trace_is_otlp_json_in_jaegers_result_envelope(store):
    status, body = get(store, f"/api/v3/traces/{T1}")
    assert status == 200
    validate_traces(body)
    resource_spans = body["result"]["resourceSpans"]
    by_service = {
        rs["resource"]["attributes"][0]["value"]["stringValue"]: rs["scopeSpans"][0]["spans"]
        for rs in resource_spans
    }
    assert set(by_service) == {"frontend", "backend"}
    root = by_service["frontend"][0]
    assert root["traceId"] == T1 and root["spanId"] == span_id(11).hex()
    assert root["kind"] == 2 and root["status"] == {"code": 2, "message": "boom"}
    assert root["startTimeUnixNano"] == str(T0 + SECOND)
    assert {"key": "http.response.status_code", "value": {"intValue": "500"}} in root["attributes"]
    child = by_service["backend"][0]
    assert child["parentSpanId"] == span_id(11).hex() and "parentSpanId" not in root
    assert resource_spans[0]["scopeSpans"][0]["scope"] == {"name": "tests.store", "version": "1"}


def test_get_trace_ids_in_links_are_hex_and_64_bit_ids_work(store):
    status, body = get(store, "/api/v3/traces/0000000000000003")  # the low 64 bits
    assert status == 200
    validate_traces(body)
    spans = body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    render = next(item for item in spans if item["name"] == "render")
    assert render["links"] == [{"traceId": T1, "spanId": span_id(11).hex()}]
    assert render["kind"] == 1


def test_get_trace_not_found_and_malformed_ids(store):
    status, body = get(store, f"/api/v3/traces/{'ab' * 16}")
    assert status == 404
    validate_error(body, 5)
    assert body["message"] == "trace not found"
    status, body = get(store, "/api/v3/traces/not-hex")
    assert status == 400
    validate_error(body, 3)


# -- search ------------------------------------------------------------------------------------


def test_search_returns_whole_traces_most_recent_first(store):
    assert search(store) == [T3, T2, T1]
    status, body = get(store, "/api/v3/traces", {**WINDOW, "query.serviceName": "backend"})
    assert status == 200
    # Found by the backend span, answered with the frontend's spans too.
    assert len(_trace_ids(body)) == 4
    assert search(store, **{"query.serviceName": "backend"}) == [T2, T1]


def test_search_by_operation_and_time_window(store):
    by_operation = {"query.serviceName": "frontend", "query.operationName": "GET /health"}
    assert search(store, **by_operation) == [T3]
    assert search(store, WIDE, **{"query.operationName": "GET /orders"}) == [T4, T2, T1]
    # Nanosecond bounds: min is inclusive, max exclusive.
    exactly = {
        "query.startTimeMin": "2026-11-22T10:00:01.010000000Z",
        "query.startTimeMax": "2026-11-22T10:00:02.001000000Z",
    }
    assert search(store, exactly, **{"query.serviceName": "backend"}) == [T1]
    later = {**exactly, "query.startTimeMin": "2026-11-22T10:00:01.010000001Z"}
    assert search(store, later, **{"query.serviceName": "backend"}) == []
    offset = {
        "query.startTimeMin": "2026-11-22T11:00:03+01:00",
        "query.startTimeMax": "2026-11-22T11:00:03.5+01:00",
    }
    assert search(store, offset) == [T3]


@pytest.mark.parametrize(
    ("durations", "expected"),
    [
        ({"query.durationMin": "1s"}, [T4, T1]),
        ({"query.durationMin": "1.5s"}, [T4, T1]),
        ({"query.durationMin": "1.5s", "query.durationMax": "1m"}, [T1]),
        ({"query.durationMin": "1.500000001s", "query.durationMax": "1m"}, []),
        ({"query.durationMin": "200ms", "query.durationMax": "300ms"}, [T1]),
        ({"query.durationMax": "50us"}, [T3]),
        ({"query.durationMax": "0.00005s"}, [T3]),
        ({"query.durationMin": "1m"}, [T4]),
        ({"query.durationMin": "1h30m"}, []),
    ],
)
def test_search_by_span_duration(store, durations, expected):
    assert search(store, WIDE, **durations) == expected


def test_search_depth_limits_the_number_of_traces(store):
    assert search(store, **{"query.searchDepth": "1"}) == [T3]
    assert search(store, **{"query.searchDepth": "2"}) == [T3, T2]


def test_older_snake_case_parameter_names(store):
    snake = {
        "query.start_time_min": "2026-11-22T10:00:00Z",
        "query.start_time_max": "2026-11-22T11:00:00Z",
        "query.service_name": "frontend",
        "query.operation_name": "GET /orders",
        "query.duration_min": "50ms",
        "query.duration_max": "1s",
    }
    assert search(store, {}, **snake) == [T2]
    assert search(store, {}, **{**snake, "query.duration_max": "2s", "query.num_traces": "1"}) == [
        T2
    ]
    del snake["query.duration_max"]
    assert search(store, {}, **{**snake, "query.search_depth": "5"}) == [T2, T1]


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        # Both pairs on one span (T3) matches; on two spans of one trace (T2) does not.
        ({"tenant.id": "globex", "http.response.status_code": "500"}, [T3]),
        ({"http.response.status_code": "500"}, [T3, T2, T1]),
        ({"tenant.id": "acme"}, [T1]),
        # Resource attributes count as the span's own.
        ({"region": "eu"}, [T2, T1]),
        ({"region": "eu", "tenant.id": "acme"}, [T1]),
        ({"deployment.environment.name": "prod", "tenant.id": "globex"}, [T3, T2]),
        # A key nothing indexes is read from the stored span.
        ({"custom.note": "hello"}, [T1]),
        ({"custom.note": "hello", "region": "eu"}, [T1]),
        ({"custom.note": "hello", "tenant.id": "globex"}, []),
        ({"tenant.id": "nobody"}, []),
    ],
)
def test_search_by_attributes(store, pairs, expected):
    assert search(store, **{"query.attributes": json.dumps(pairs)}) == expected


def test_attribute_search_with_other_conditions(store):
    params = {"query.attributes": attrs(tenant_id="acme"), "query.serviceName": "backend"}
    assert search(store, **params) == [T1]
    assert search(store, **{**params, "query.durationMax": "100ms"}) == []


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({}, "query.startTimeMin and query.startTimeMax are required"),
        ({"query.startTimeMin": "2026-11-22T10:00:00Z"}, "required"),
        ({**WINDOW, "query.startTimeMin": "yesterday"}, "query.startTimeMin"),
        ({**WINDOW, "query.durationMin": "5 parsecs"}, "query.durationMin"),
        ({**WINDOW, "query.duration_max": "10"}, "query.duration_max"),
        ({**WINDOW, "query.attributes": "tenant.id=acme"}, "query.attributes"),
        ({**WINDOW, "query.attributes": '{"a": {"b": 1}}'}, "query.attributes"),
        ({**WINDOW, "query.searchDepth": "-1"}, "query.searchDepth"),
        ({**WINDOW, "query.filter": '{"op":"eq","args":[]}'}, "query.filter"),
    ],
)
def test_bad_search_parameters_are_400_with_a_status_body(store, params, fragment):
    status, body = get(store, "/api/v3/traces", params)
    assert status == 400
    validate_error(body, 3)
    assert fragment in body["message"]


def test_bad_operations_parameters(store):
    for params in ({}, {"service": "frontend", "spanKind": "sideways"}):
        status, body = get(store, "/api/v3/operations", params)
        assert status == 400
        validate_error(body, 3)


def test_other_paths_and_methods(store):
    assert get(store, "/health") == (200, {"status": "ok"})
    status, body = get(store, "/api/v2/services")
    assert status == 404
    validate_error(body, 5)
    status, body = get(store, "/api/v3/services", method="POST")
    assert status == 405
    validate_error(body, 12)


def test_o11ykit_paths_go_to_the_analytics_module(store):
    status, body = get(store, "/api/o11ykit/no-such-question")
    try:
        import o11ykit.store.analytics_http  # noqa: F401
    except ModuleNotFoundError:
        assert status == 404 and "analytics" in body["message"]
    else:
        assert status != 405 and isinstance(body, dict)
