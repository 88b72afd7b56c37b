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

import base64
import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.backends.jaeger_query import JaegerQuery
from o11ykit.store import queries, summaries
from o11ykit.store.process import StoreProcess, spawn_store
from tests.support.store_data import MS, SECOND, T0, request, span, span_id, trace_id
from tests.support.store_openapi import validate, validate_error, validate_traces

pytestmark = pytest.mark.integration

SERVER, CLIENT, INTERNAL = Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT, Span.SPAN_KIND_INTERNAL
WINDOW_START, WINDOW_END = "2026-11-22T10:00:00Z", "2026-11-22T11:00:00Z"
WINDOW = {"query.startTimeMin": WINDOW_START, "query.startTimeMax": WINDOW_END}
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


def get(
    store: StoreProcess,
    path: str,
    params: dict[str, str] | list[tuple[str, str]] | None = None,
    method="GET",
):
    url = f"{store.query_url}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def search(store: StoreProcess, window=WINDOW, **params: str) -> list[str]:
    """Trace ids of a search, in answer order; the body is validated on the way.

    A search that finds nothing is a 404 "No traces found", as Jaeger v2 answers it.
    """
    status, body = get(store, "/api/v3/traces", {**window, **params})
    if status == 404:
        validate_error(body, 5)
        assert body["message"] == "No traces found", body
        return []
    assert status == 200, body
    validate_traces(body)
    found = list(dict.fromkeys(_trace_ids(body)))
    assert found, "a search answered 200 has traces; an empty one is a 404"
    return found


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


def test_get_trace_takes_base64_ids_as_jaeger_v2_does(store):
    for text, expected in (
        (base64.b64encode(trace_id(1)).decode(), T1),  # padded: the "=" percent-encoded below
        (base64.b64encode(trace_id(1)).decode().rstrip("="), T1),
        (base64.b64encode(trace_id(3)[8:]).decode(), T3),  # 8 bytes: the low half
    ):
        status, body = get(store, f"/api/v3/traces/{urllib.parse.quote(text, safe='')}")
        assert status == 200, text
        validate_traces(body)
        ids = {
            span["traceId"]
            for resource_spans in body["result"]["resourceSpans"]
            for scope_spans in resource_spans["scopeSpans"]
            for span in scope_spans["spans"]
        }
        assert ids == {expected}, text  # answered in hex, as every id is


def test_base64_ids_of_either_alphabet_with_or_without_padding_read_the_same():
    raw = bytes.fromhex("fbff00fe" * 4)  # "+" and "/" in one alphabet, "-" and "_" in the other
    for text in (
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ):
        assert queries.parse_trace_id(text) == raw, text
    for bad in ("not-hex", "AQID", "Z" * 25, "@@@@"):  # 3 bytes; too long; not base64
        with pytest.raises(queries.QueryError, match="neither 1 to 32 hex digits nor"):
            queries.parse_trace_id(bad)


def test_get_trace_not_found_and_malformed_ids(store):
    status, body = get(store, f"/api/v3/traces/{'ab' * 16}")
    assert status == 404
    validate_error(body, 5)
    assert body["message"] == "No traces found"  # as Jaeger v2 answers an unknown id
    status, body = get(store, "/api/v3/traces/not-hex")
    assert status == 400
    validate_error(body, 3)


# -- trace summaries ---------------------------------------------------------------------------


def test_trace_summaries_answer_the_search_with_one_summary_a_trace(store):
    status, body = get(store, "/api/v3/trace-summaries", WINDOW)
    assert status == 200
    validate(body, "jaeger.api_v3.FindTraceSummariesResponse")
    by_id = {summary["traceId"]: summary for summary in body["summaries"]}
    assert [summary["traceId"] for summary in body["summaries"]] == search(store)  # same order
    assert by_id[T1] == {
        "traceId": T1,
        "rootServiceName": "frontend",
        "rootOperationName": "GET /orders",
        "minStartTimeUnixNano": str(T0 + SECOND),
        "maxEndTimeUnixNano": str(T0 + SECOND + 1500 * MS),
        "spanCount": 2,
        "errorSpanCount": 1,
        "orphanSpanCount": 0,
        "services": [
            {"name": "backend", "spanCount": 1, "errorSpanCount": 0},
            {"name": "frontend", "spanCount": 1, "errorSpanCount": 1},
        ],
    }
    assert by_id[T3]["rootOperationName"] == "GET /health"  # render is its child
    assert by_id[T3]["services"] == [{"name": "frontend", "spanCount": 2, "errorSpanCount": 0}]


def test_trace_summaries_take_the_search_parameters_and_refuse_as_it_does(store):
    status, body = get(store, "/api/v3/trace-summaries", {**WINDOW, "query.searchDepth": "1"})
    assert status == 200 and [s["traceId"] for s in body["summaries"]] == [T3]
    query = {**WIDE, "query.attributes": json.dumps({"tenant.id": "acme"})}
    status, body = get(store, "/api/v3/trace-summaries", query)
    assert [s["traceId"] for s in body["summaries"]] == [T4, T1]
    # Nothing found: 200 and no summaries, as Jaeger answers (FindTraces answers 404).
    status, body = get(store, "/api/v3/trace-summaries", {**WINDOW, "query.serviceName": "none"})
    assert (status, body) == (200, {"summaries": []})
    status, body = get(store, "/api/v3/trace-summaries", {"query.serviceName": "frontend"})
    assert status == 400
    validate_error(body, 3)


def test_a_summary_counts_orphans_and_takes_the_earliest_parentless_span_as_root():
    def columns(ident: int, parent: int | None, service: str, start: int, status: int = 0):
        return (
            span_id(ident),
            span_id(parent) if parent else None,
            service,
            f"op{ident}",
            start,
            10,
            status,
        )

    spans = [
        columns(1, None, "web", 100),
        columns(2, 1, "api", 105, status=2),
        columns(3, 99, "api", 107),  # its parent never arrived
        columns(4, None, "cron", 200),  # a second root, later
    ]
    summary = summaries.summarize(trace_id(7), spans)
    assert (summary.root_service_name, summary.root_operation_name) == ("web", "op1")
    assert (summary.min_start_ns, summary.max_end_ns) == (100, 210)
    assert (summary.span_count, summary.error_span_count, summary.orphan_span_count) == (4, 1, 1)
    assert [s.name for s in summary.services] == ["api", "cron", "web"]
    assert summaries.summarize(trace_id(8), spans[1:3]).root_service_name == ""  # no root


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
    assert search(store, **{"query.searchDepth": "+1"}) == [T3]  # the sign docs list
    assert search(store, **{"query.searchDepth": "2"}) == [T3, T2]


SNAKE_WINDOW = {"query.start_time_min": WINDOW_START, "query.start_time_max": WINDOW_END}


# Each name must change the answer: a name the store ignored would leave it [T3, T2, T1].
@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("query.service_name", "backend", [T2, T1]),
        ("query.operation_name", "GET /health", [T3]),
        ("query.duration_min", "1s", [T1]),
        ("query.duration_max", "50us", [T3]),
        ("query.search_depth", "1", [T3]),
        ("query.num_traces", "2", [T3, T2]),
    ],
)
def test_older_snake_case_parameter_names(store, name, value, expected):
    assert search(store, SNAKE_WINDOW) == [T3, T2, T1]
    assert search(store, SNAKE_WINDOW, **{name: value}) == expected


def test_a_parameter_given_twice_is_read_from_its_first_value_as_jaeger_reads_it(store):
    def services(*values: str) -> tuple[int, list[str]]:
        pairs = [*WINDOW.items(), *(("query.serviceName", value) for value in values)]
        status, body = get(store, "/api/v3/traces", pairs)
        return status, list(dict.fromkeys(_trace_ids(body))) if status == 200 else []

    assert services("backend", "nosuch") == (200, [T2, T1])
    assert services("nosuch", "backend") == (404, [])


def test_older_snake_case_time_window(store):
    # Each bound narrows the window the other (camelCase) bound leaves open; a bound the
    # store did not read would be a 400 for a missing window.
    from_two = {"query.start_time_min": "2026-11-22T10:00:02Z", "query.startTimeMax": WINDOW_END}
    assert search(store, from_two) == [T3, T2]
    until_two = {"query.startTimeMin": WINDOW_START, "query.start_time_max": "2026-11-22T10:00:02Z"}
    assert search(store, until_two) == [T1]


def test_older_snake_case_span_kind_of_operations(store):
    both = [
        {"name": "SELECT orders", "spanKind": "client"},
        {"name": "SELECT orders", "spanKind": "server"},
    ]
    assert get(store, "/api/v3/operations", {"service": "backend"}) == (200, {"operations": both})
    answer = get(store, "/api/v3/operations", {"service": "backend", "span_kind": "server"})
    assert answer == (200, {"operations": [both[1]]})


def test_a_search_that_finds_nothing_is_404_as_jaeger_v2_answers(store):
    status, body = get(store, "/api/v3/traces", {**WINDOW, "query.serviceName": "nobody"})
    assert status == 404
    validate_error(body, 5)
    assert body["error"]["httpCode"] == 404 and body["error"]["message"] == "No traces found"
    # The one client every lab and solver reads through takes it as "no traces".
    client = JaegerQuery(store.query_url)
    start = datetime(2026, 11, 22, 10, tzinfo=timezone.utc)
    end = start + timedelta(hours=1)
    assert client.find_traces("nobody", start=start, end=end) == []
    assert [t.trace_id for t in client.find_traces("backend", start=start, end=end)] == [T2, T1]


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
        # ASCII digits only, as the docs list a count: int() would read these as 10 and 1.
        (
            {**WINDOW, "query.searchDepth": "1_0"},
            "query.searchDepth must be a positive integer, not '1_0'",
        ),
        (
            {**WINDOW, "query.searchDepth": "\uff11"},
            "query.searchDepth must be a positive integer, not '\uff11'",
        ),
        ({**WINDOW, "query.filter": '{"op":"eq","args":[]}'}, "query.filter"),
        # Reversed or empty windows, as Jaeger v2's gateway refuses them (query_parser.go).
        (
            {"query.startTimeMin": WINDOW_END, "query.startTimeMax": WINDOW_START},
            "query.startTimeMin must be before query.startTimeMax",
        ),
        (
            {"query.start_time_min": WINDOW_START, "query.startTimeMax": WINDOW_START},
            "query.start_time_min must be before query.startTimeMax",
        ),
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
    for method, path, status in [
        ("POST", "/api/v3/services", 405),
        ("OPTIONS", "/api/v3/services", 405),
        ("TRACE", "/api/v3/traces", 405),
        ("PUT", "/api/o11ykit/breakdown", 405),
        ("PROPFIND", "/api/v3/services", 501),  # no method of HTTP's own: not implemented
    ]:
        connection = http.client.HTTPConnection("127.0.0.1", store.query_port, timeout=10)
        connection.request(method, path)
        answer = connection.getresponse()
        body = json.loads(answer.read())  # JSON like every other answer, not an HTML page
        connection.close()
        assert answer.status == status, (method, path, body)
        validate_error(body, 12)
        if status == 405:
            assert answer.getheader("Allow") == "GET", (method, path)


def test_o11ykit_paths_go_to_the_analytics_module(store):
    window = {"start": WINDOW_START, "end": WINDOW_END}
    status, body = get(store, "/api/o11ykit/breakdown", {"groupBy": "tenant.id", **window})
    assert status == 200, body
    assert (body["groupBy"], body["source"], body["total"]) == (
        "tenant.id",
        "indexed span attribute",
        6,
    )
    groups = [(g["value"], g["count"], g["errors"], g["p95Ms"]) for g in body["groups"]]
    assert groups == [("acme", 2, 1, 1500.0), ("globex", 2, 0, 100.0), (None, 2, 0, 5.0)]
    status, body = get(store, "/api/o11ykit/no-such-question")
    assert status == 404 and "/api/o11ykit/breakdown" in body["message"]
    assert body["error"]["httpCode"] == 404  # the same error shape as the Jaeger endpoints
    # Other methods reach the analytics module too, which answers GET only.
    status, body = get(store, "/api/o11ykit/breakdown", method="POST")
    assert status == 405 and body["code"] == 12
    # HEAD is answered as GET without the body, here as on the Jaeger paths.
    head = urllib.request.Request(
        f"{store.query_url}/api/o11ykit/breakdown?groupBy=name", method="HEAD"
    )
    with urllib.request.urlopen(head, timeout=10) as answer:
        assert (answer.status, answer.read()) == (200, b"")
        assert int(answer.headers["Content-Length"]) > 0


# -- every field of a span, there and back -----------------------------------------------------


def _every_field(trace: str) -> dict[str, Any]:
    """One ResourceSpans in OTLP JSON using every field OTLP gives a span, scope and resource.

    (The resource-level schemaUrl is left out here: tests/test_store_search.py has it.)
    """
    pair = {"key": "nested", "value": {"stringValue": "inner"}}
    return {
        "resource": {
            "attributes": [
                {"key": "service.name", "value": {"stringValue": "roundtrip"}},
                {"key": "host.name", "value": {"stringValue": "box-1"}},
            ],
            "droppedAttributesCount": 6,
        },
        "scopeSpans": [
            {
                "scope": {
                    "name": "tests.roundtrip",
                    "version": "2.1",
                    "attributes": [{"key": "scope.owner", "value": {"stringValue": "sre"}}],
                    "droppedAttributesCount": 7,
                },
                "spans": [
                    {
                        "traceId": trace,
                        "spanId": "00000000000000a1",
                        "traceState": "vendor=abc,other=1",
                        "parentSpanId": "00000000000000a0",
                        # W3C sampled, plus OTLP's "parent is remote" bits.
                        "flags": 0x301,
                        "name": "POST /checkout",
                        "kind": 2,
                        "startTimeUnixNano": str(T0),
                        "endTimeUnixNano": str(T0 + 5 * MS),
                        "attributes": [
                            {"key": "s", "value": {"stringValue": "text"}},
                            {"key": "b", "value": {"boolValue": True}},
                            {"key": "i", "value": {"intValue": "-42"}},
                            {"key": "d", "value": {"doubleValue": 1.5}},
                            {"key": "bytes", "value": {"bytesValue": "AAEC/w=="}},
                            {
                                "key": "a",
                                "value": {
                                    "arrayValue": {
                                        "values": [{"stringValue": "x"}, {"intValue": "1"}]
                                    }
                                },
                            },
                            {"key": "kv", "value": {"kvlistValue": {"values": [pair]}}},
                        ],
                        "droppedAttributesCount": 3,
                        "events": [
                            {
                                "timeUnixNano": str(T0 + MS),
                                "name": "exception",
                                "attributes": [
                                    {"key": "exception.type", "value": {"stringValue": "E"}}
                                ],
                                "droppedAttributesCount": 1,
                            }
                        ],
                        "droppedEventsCount": 4,
                        "links": [
                            {
                                "traceId": "0000000000000000000000000000f2f2",
                                "spanId": "00000000000000b2",
                                "traceState": "k=v",
                                "attributes": [
                                    {"key": "link.reason", "value": {"stringValue": "retry"}}
                                ],
                                "droppedAttributesCount": 2,
                                "flags": 0x101,
                            }
                        ],
                        "droppedLinksCount": 5,
                        "status": {"message": "card declined", "code": 2},
                    }
                ],
                "schemaUrl": "https://opentelemetry.io/schemas/1.26.0",
            }
        ],
    }


def _as_protobuf(resource_spans: dict[str, Any]) -> bytes:
    """The same request through protobuf's own JSON parser (which wants ids in base64)."""
    document = json.loads(json.dumps({"resourceSpans": [resource_spans]}))
    for scope_spans in document["resourceSpans"][0]["scopeSpans"]:
        for item in scope_spans["spans"]:
            for node in (item, *item.get("links", ())):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in node:
                        node[key] = base64.b64encode(bytes.fromhex(node[key])).decode()
    return json_format.ParseDict(document, ExportTraceServiceRequest()).SerializeToString()


@pytest.mark.parametrize("content_type", ["application/x-protobuf", "application/json"])
def test_every_span_field_comes_back_from_get_trace(tmp_path, content_type):
    trace = ("f1" if content_type == "application/json" else "f0") * 16
    sent = _every_field(trace)
    if content_type == "application/json":
        body = json.dumps({"resourceSpans": [sent]}).encode()
    else:
        body = _as_protobuf(sent)
    with spawn_store(tmp_path, grpc_port=None) as store:
        post = urllib.request.Request(store.traces_url, body, {"Content-Type": content_type})
        with urllib.request.urlopen(post, timeout=10) as answer:
            assert answer.status == 200
        status, got = get(store, f"/api/v3/traces/{trace}")
    assert status == 200, got
    validate_traces(got)
    assert got == {"result": {"resourceSpans": [sent]}}
