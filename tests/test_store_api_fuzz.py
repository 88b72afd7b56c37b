"""A bounded fuzz run of the store's query server: whatever the query string or the trace id,
the answer is a 200, a 400 or a 404, shaped as the Jaeger API v3 OpenAPI document (or, for
o11ykit's own endpoints, docs/store-api.md) says, and the store keeps answering.

The receiver's fuzz run is in tests/test_store_server.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from o11ykit.store.process import StoreProcess, spawn_store
from tests.support.store_data import MS, SECOND, T0, request, span
from tests.support.store_openapi import validate, validate_error, validate_traces

pytestmark = pytest.mark.integration

FUZZ_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> StoreProcess:
    def spans(ident: int) -> list:
        return [
            span(
                trace,
                trace * 10 + ident,
                f"GET /orders/{trace % 3}",
                parent=trace * 10 + 1 if ident > 1 else 0,
                start=T0 + trace * SECOND + ident * MS,
                duration=(trace * 37 % 500) * MS,
                error=trace % 4 == 0,
                attributes={"tenant.id": f"tenant-{trace % 5}", "http.route": "/orders/{id}"},
            )
            for trace in range(1, 41)
        ]

    with spawn_store(tmp_path_factory.mktemp("store-fuzz"), grpc_port=None) as store:
        for ident, service in enumerate(("frontend", "backend"), start=1):
            resource = {"service.version": "1.2.0"}
            body = request(spans(ident), service, **resource).SerializeToString()
            post = urllib.request.Request(
                store.traces_url, body, {"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(post, timeout=10) as answer:
                assert answer.status == 200
        yield store


def _get(store: StoreProcess, path: str, params: dict[str, str]) -> tuple[int, Any]:
    quoted = urllib.parse.quote(path, safe="/")
    url = f"{store.query_url}{quoted}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# Text a URL can carry: any character but a lone surrogate, which has no UTF-8 form.
garbage = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)


def mostly(*valid: str) -> st.SearchStrategy[str]:
    """A valid value three times in four, else anything: most examples get past the checks
    to the query itself, and the rest probe them."""
    return st.sampled_from([True, True, True, False]).flatmap(
        lambda ok: st.sampled_from(valid) if ok else garbage
    )


times = mostly(
    "2026-11-22T10:00:00Z",
    "2026-11-22T10:00:30.123456789+01:00",
    "2026-11-22T09:59:00-00:30",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",  # past what 64-bit nanoseconds hold
    "1000-01-01T00:00:00+14:00",
    "2026-02-30T10:00:00Z",
    "2026-11-22T10:00:00",
)
durations = mostly("10ms", "1.5s", "250us", "1h30m", "0", "-1s", "9999999999h", "1e3s")
attribute_objects = st.dictionaries(
    mostly("tenant.id", "http.route", "service.version", "error", "custom.key"),
    st.one_of(
        mostly("tenant-1", "tenant-4", "/orders/{id}", "1.2.0", "true"),
        st.integers(),
        st.booleans(),
        st.none(),
        st.lists(st.integers(), max_size=2),
    ),
    max_size=3,
).map(json.dumps)
depths = st.one_of(st.integers(-5, 5000).map(str), st.integers(2**62, 10**30).map(str), garbage)
services = mostly("frontend", "backend", "nobody")
operations = mostly("GET /orders/1", "GET /orders/2")


def _optional(params: dict[Any, st.SearchStrategy[str]]) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries({}, optional=params)


# The window is required: it is there, in order, in most examples.
windows = st.one_of(
    st.just(
        {"query.startTimeMin": "2026-11-22T10:00:00Z", "query.startTimeMax": "2026-11-22T10:02:00Z"}
    ),
    st.just(
        {
            "query.start_time_min": "2026-11-22T10:00:20Z",
            "query.start_time_max": "2026-11-22T11:00:00Z",
        }
    ),
    _optional({"query.startTimeMin": times, "query.startTimeMax": times}),
)
search_params = st.tuples(
    windows,
    _optional(
        {
            "query.serviceName": services,
            "query.service_name": services,
            "query.operationName": operations,
            "query.durationMin": durations,
            "query.durationMax": durations,
            "query.attributes": st.one_of(attribute_objects, garbage),
            "query.searchDepth": depths,
            "query.num_traces": depths,
            "query.rawTraces": st.sampled_from(["true", "false", "maybe"]),
            "query.filter": garbage,
            garbage.filter(bool): garbage,  # parameters the API does not know are ignored
        }
    ),
).map(lambda parts: {**parts[1], **parts[0]})
operations_params = _optional(
    {
        "service": services,
        "spanKind": mostly("server", "CLIENT", "unspecified", "internal"),
        "span_kind": garbage,
    }
)
analytics_params = _optional(
    {
        "groupBy": mostly("tenant.id", "service.name", "name", "status", "kind", "http.route"),
        "start": times,
        "end": times,
        "service": services,
        "operation": operations,
        "where": st.one_of(attribute_objects, garbage),
        "selection": mostly("errors", "slower:100ms", "slower:", "faster:1s"),
        "keys": garbage,
        "limit": depths,
    }
)


def _check(status: int, body: Any) -> None:
    """A 200 or an error with a google.rpc.Status body; never a 5xx."""
    event(f"status {status}")  # --hypothesis-show-statistics: how many reached each answer
    assert status in (200, 400, 404), (status, body)
    if status != 200:
        validate_error(body, 3 if status == 400 else 5)


WINDOW = {
    "query.startTimeMin": "2026-11-22T10:00:00Z",
    "query.startTimeMax": "2026-11-22T11:00:00Z",
}


@FUZZ_SETTINGS
@given(path=st.sampled_from(["/api/v3/traces", "/api/v3/trace-summaries"]), params=search_params)
# Found by this test: numbers past 64 bits once reached SQLite and lost the connection.
@example(path="/api/v3/traces", params={**WINDOW, "query.durationMin": "9999999999h"})
@example(path="/api/v3/traces", params={**WINDOW, "query.startTimeMax": "9999-12-31T23:59:59Z"})
def test_fuzzed_searches_answer_as_the_openapi_document_says(store, path, params):
    status, body = _get(store, path, params)
    _check(status, body)
    if status == 200 and path == "/api/v3/traces":
        validate_traces(body)
    elif status == 200:
        validate(body, "jaeger.api_v3.FindTraceSummariesResponse")


@FUZZ_SETTINGS
@given(params=operations_params)
def test_fuzzed_operations_queries_answer_as_the_openapi_document_says(store, params):
    status, body = _get(store, "/api/v3/operations", params)
    _check(status, body)
    if status == 200:
        validate(body, "jaeger.api_v3.GetOperationsResponse")


@FUZZ_SETTINGS
@given(trace_id=st.one_of(garbage.filter(bool), st.binary(max_size=20).map(bytes.hex)))
def test_fuzzed_trace_ids_answer_as_the_openapi_document_says(store, trace_id):
    status, body = _get(store, f"/api/v3/traces/{trace_id}", {})
    _check(status, body)
    if status == 200:
        validate_traces(body)


@FUZZ_SETTINGS
@given(endpoint=st.sampled_from(["breakdown", "compare"]), params=analytics_params)
@example(endpoint="breakdown", params={"groupBy": "tenant.id", "start": "1000-01-01T00:00:00Z"})
@example(endpoint="compare", params={"selection": "slower:9999999999h"})
def test_fuzzed_breakdowns_and_comparisons_answer_200_or_400(store, endpoint, params):
    status, body = _get(store, f"/api/o11ykit/{endpoint}", params)
    event(f"status {status}")
    assert status in (200, 400), (status, body)
    if status == 400:
        validate_error(body, 3)
    else:
        assert isinstance(body, dict) and body, body


page_params = _optional(
    {
        "service": services,
        "operation": operations,
        "tags": st.one_of(attribute_objects, garbage),
        "lookback": mostly("1h", "15m", "2d", "1w", "custom", "99999999999d", "0s"),
        "start": st.one_of(st.integers(-(10**20), 10**20).map(str), garbage),
        "end": st.one_of(st.integers(-(10**20), 10**20).map(str), garbage),
        "minDuration": durations,
        "maxDuration": durations,
        "limit": depths,
    }
)


@FUZZ_SETTINGS
@given(
    path=st.one_of(
        st.sampled_from(["/", "/search"]),
        st.one_of(garbage, st.binary(max_size=20).map(bytes.hex)).map(
            lambda tail: f"/trace/{tail}"
        ),
    ),
    params=page_params,
)
@example(path="/search", params={"lookback": "custom", "start": "1" + "0" * 20, "end": "1" * 22})
def test_fuzzed_browser_pages_answer_a_page_or_a_400_page(store, path, params):
    quoted = urllib.parse.quote(path, safe="/")
    url = f"{store.query_url}{quoted}?{urllib.parse.urlencode(params)}"
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            status, content_type, page = (
                answer.status,
                answer.headers["Content-Type"],
                answer.read(),
            )
    except urllib.error.HTTPError as exc:
        status, content_type, page = exc.code, exc.headers["Content-Type"], exc.read()
    event(f"status {status}")
    assert status in (200, 400, 404), (status, page[:300])
    assert content_type.startswith("text/html") and page.lower().startswith(b"<!doctype html>"), (
        page[:100]
    )


def test_the_store_still_answers_after_the_fuzz_runs(store):
    status, body = _get(store, "/api/v3/services", {})
    assert status == 200 and body == {"services": ["backend", "frontend"]}
