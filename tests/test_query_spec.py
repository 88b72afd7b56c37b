"""One QuerySpec, every backend's form: the CLI command, the Jaeger and Honeycomb links, and
the solver's answer from a real local store."""

from __future__ import annotations

import json
import shlex
import urllib.request
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from o11ykit.backends.honeycomb_links import (
    filter_value,
    honeycomb_link,
    honeycomb_query_json,
    link_slugs,
)
from o11ykit.backends.jaeger_query import JaegerQuery
from o11ykit.backends.query_spec import (
    NotExpressible,
    QuerySpec,
    jaeger_link,
    local_argv,
    local_command,
    run_local,
    time_window,
    to_breakdown_params,
    to_jaeger_params,
)
from o11ykit.cli import build_parser
from o11ykit.store.process import spawn_store
from tests.support.store_data import MS, SECOND, T0, request, span, trace_id

NOW = datetime.fromtimestamp(T0 // SECOND, timezone.utc) + timedelta(minutes=5)
NOW_US = (T0 // SECOND + 300) * 1_000_000
UI = "http://127.0.0.1:16686"

ERRORS_BY_ROUTE = QuerySpec(
    service="orders",
    where=[("tenant.id", "=", "acme")],
    group_by=["http.route"],
    calculate=["COUNT", "P95(duration_ms)"],
    errors_only=True,
    order_by=[("P95(duration_ms)", "descending")],
    limit=10,
    title="Where do acme's errors come from?",
)
SLOW_ACME = QuerySpec(
    service="orders",
    operation="GET /orders",
    where=[("tenant.id", "=", "acme")],
    min_duration_ms=250,
    since_s=3600,
)


def parse(command: str):
    """The command as the real `o11ykit` parser reads it (SystemExit if it refuses)."""
    argv = shlex.split(command)
    assert argv[0] == "o11ykit"
    return build_parser().parse_args(argv[1:])


# --------------------------------------------------------------------------------------------
# The spec itself
# --------------------------------------------------------------------------------------------


def test_lists_from_lab_files_become_tuples_and_values_text():
    spec = QuerySpec(where=[["http.response.status_code", "=", 500], ["retry", "=", True]])
    assert spec.where == (("http.response.status_code", "=", "500"), ("retry", "=", "true"))
    assert hash(spec) == hash(QuerySpec(where=spec.where))
    assert spec.calculations == ("COUNT",)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"where": [("tenant.id", "~", "a")]}, "op '~'"),
        ({"where": [("status", "=", "error")]}, "span column"),
        ({"where": [("tenant.id", "=")]}, "needs a value"),
        ({"calculate": ["P95"]}, "not understood"),
        ({"calculate": ["MEDIAN(duration_ms)"]}, "not understood"),
        ({"order_by": [("P99(duration_ms)", "descending")]}, "neither calculated nor grouped"),
        ({"order_by": [("COUNT", "down")]}, "ascending"),
        ({"since_s": 0}, "since_s"),
        ({"limit": 0}, "limit"),
        ({"group_by": ["name", "name"]}, "twice"),
        ({"service": ""}, "service"),
    ],
)
def test_bad_specs_are_refused_with_a_reason(fields, message):
    with pytest.raises(ValueError, match=message):
        QuerySpec(**fields)


def test_exists_needs_no_value():
    assert QuerySpec(where=[("enduser.id", "exists")]).where == (("enduser.id", "exists", ""),)


# --------------------------------------------------------------------------------------------
# The `o11ykit traces` command, checked against the real parser
# --------------------------------------------------------------------------------------------


def test_search_command_is_accepted_by_the_cli():
    command = local_command(SLOW_ACME)
    assert command == (
        "o11ykit traces search --service orders --operation 'GET /orders' "
        "--attr tenant.id=acme --since 1h --min-duration 250ms"
    )
    args = parse(command)
    assert (args.command, args.traces_command) == ("traces", "search")
    assert (args.service, args.operation, args.attr) == (
        "orders",
        "GET /orders",
        ["tenant.id=acme"],
    )
    assert (args.since, args.min_duration, args.limit) == ("1h", "250ms", 20)


def test_a_store_elsewhere_than_the_default_is_named_in_the_command():
    """A stack on free ports: without --url the command pasted asks 127.0.0.1:16686, where
    nothing listens, or another system's store does."""
    elsewhere = local_command(SLOW_ACME, "http://127.0.0.1:40123/")
    assert elsewhere == local_command(SLOW_ACME) + " --url http://127.0.0.1:40123"
    assert parse(elsewhere).url == "http://127.0.0.1:40123"
    breakdown = local_command(ERRORS_BY_ROUTE, "http://127.0.0.1:40123")
    assert parse(breakdown).url == "http://127.0.0.1:40123"
    assert local_command(SLOW_ACME, "http://127.0.0.1:16686/") == local_command(SLOW_ACME)
    assert local_command(SLOW_ACME, None) == local_command(SLOW_ACME)
    assert "pw" not in local_command(SLOW_ACME, "http://bob:pw@store.example:16686")


def test_commands_select_errors_with_jaegers_error_tag():
    command = local_command(ERRORS_BY_ROUTE)
    assert command == (
        "o11ykit traces breakdown --by http.route --service orders --attr tenant.id=acme "
        "--attr error=true --since 15m --limit 10"
    )
    args = parse(command)
    assert (args.traces_command, args.by, args.limit) == ("breakdown", "http.route", 10)
    assert args.attr == ["tenant.id=acme", "error=true"]
    search = local_command(QuerySpec(service="catalog", errors_only=True))
    assert search == "o11ykit traces search --service catalog --attr error=true --since 15m"
    assert parse(search).attr == ["error=true"]


def test_sub_millisecond_durations_stay_exact():
    argv = local_argv(QuerySpec(min_duration_ms=0.5, since_s=90))
    assert argv[-4:] == ["--since", "90s", "--min-duration", "500us"]
    parse(shlex.join(["o11ykit", *argv]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (QuerySpec(where=[("tenant.id", "!=", "acme")]), "equality only"),
        (QuerySpec(where=[("enduser.id", "exists")]), "equality only"),
        (QuerySpec(group_by=["name"], min_duration_ms=100), "no duration filter"),
        (QuerySpec(group_by=["name", "tenant.id"]), "groups by one key"),
    ],
)
def test_what_the_cli_cannot_say_is_refused(spec, message):
    with pytest.raises(NotExpressible, match=message):
        local_command(spec)


# --------------------------------------------------------------------------------------------
# The Jaeger UI link
# --------------------------------------------------------------------------------------------


def test_jaeger_link_marks_errors_with_the_error_tag_and_an_explicit_window():
    url = urlsplit(jaeger_link(ERRORS_BY_ROUTE, UI, NOW))
    assert (url.netloc, url.path) == ("127.0.0.1:16686", "/search")
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert json.loads(params["tags"]) == {"tenant.id": "acme", "error": "true"}
    assert '"error":"true"' in params["tags"]
    assert params["lookback"] == "custom"
    assert params["start"] == str(NOW_US - 900 * 1_000_000)
    assert params["end"] == str(NOW_US)
    assert (params["service"], params["limit"]) == ("orders", "10")


def test_jaeger_link_carries_the_min_duration():
    params = parse_qs(urlsplit(jaeger_link(SLOW_ACME, UI, NOW)).query)
    assert params["minDuration"] == ["250ms"]
    assert params["operation"] == ["GET /orders"]
    assert params["start"] == [str(NOW_US - 3600 * 1_000_000)]


def test_a_spec_with_a_start_reads_from_there_in_every_form():
    """A lab's look that counts from the lab's start: `--start`, not a `--since` that would
    slide past the start when the command is typed later; the same window in the links."""
    start = NOW - timedelta(minutes=25)
    spec = replace(ERRORS_BY_ROUTE, start=start)
    assert time_window(spec, NOW) == (start, NOW)
    command = local_command(spec)
    assert "--since" not in command and "--start 2026-11-22T09:40:00Z" in command
    assert parse(command).start == start
    params = parse_qs(urlsplit(jaeger_link(spec, UI, NOW)).query)
    assert (params["start"], params["end"]) == ([str(NOW_US - 25 * 60 * 1_000_000)], [str(NOW_US)])
    query = honeycomb_query_json(spec, now=NOW)
    assert "time_range" not in query  # start, end and range together: Honeycomb refuses
    assert (query["start_time"], query["end_time"]) == (NOW_US // 10**6 - 1500, NOW_US // 10**6)
    # A start within a second is typed as the second it falls in, so the window holds it.
    assert "--start 2026-11-22T09:40:00Z" in local_command(
        replace(spec, start=start + timedelta(milliseconds=999))
    )
    with pytest.raises(ValueError, match="start must be a timezone-aware datetime"):
        QuerySpec(start=start.replace(tzinfo=None))


def test_jaeger_link_refuses_what_tags_cannot_say():
    with pytest.raises(NotExpressible):
        jaeger_link(QuerySpec(where=[("http.response.status_code", ">", "499")]), UI, NOW)


# --------------------------------------------------------------------------------------------
# Honeycomb's query-template link
# --------------------------------------------------------------------------------------------

EXPECTED_HONEYCOMB = {
    "calculations": [{"op": "COUNT"}, {"op": "P95", "column": "duration_ms"}],
    "filters": [
        {"column": "service.name", "op": "=", "value": "orders"},
        {"column": "tenant.id", "op": "=", "value": "acme"},
        {"column": "error", "op": "=", "value": True},
        {"column": "meta.annotation_type", "op": "does-not-exist"},
    ],
    "filter_combination": "AND",
    "breakdowns": ["http.route"],
    "orders": [{"op": "P95", "column": "duration_ms", "order": "descending"}],
    "time_range": 900,
    "limit": 10,
}


def decoded_query(link: str) -> dict:
    query = urlsplit(link).query
    as_form = parse_qs(query)["query"][0]
    # Percent-encoded throughout: a URI-component decoder (no '+' for space) reads the same.
    assert unquote(query.removeprefix("query=")) == as_form
    return json.loads(as_form)


def test_honeycomb_link_decodes_to_the_query_spec():
    link = honeycomb_link(
        ERRORS_BY_ROUTE, team="acme-sre", environment="workshop", dataset="orders", region="us"
    )
    url = urlsplit(link)
    assert (url.scheme, url.netloc) == ("https", "ui.honeycomb.io")
    assert url.path == "/acme-sre/environments/workshop/datasets/orders"
    assert decoded_query(link) == EXPECTED_HONEYCOMB


def test_honeycomb_link_in_the_eu_pinned_to_now():
    link = honeycomb_link(
        ERRORS_BY_ROUTE, team="t", environment="e", dataset="orders", region="eu", now=NOW
    )
    assert urlsplit(link).netloc == "ui.eu1.honeycomb.io"
    assert decoded_query(link) == {**EXPECTED_HONEYCOMB, "end_time": NOW_US // 1_000_000}


def test_honeycomb_query_for_a_search_spec():
    query = honeycomb_query_json(
        QuerySpec(
            operation="GET /orders",
            where=[("http.response.status_code", ">", "499"), ("enduser.id", "exists")],
            group_by=["status", "kind"],
            calculate=["HEATMAP(duration_ms)", "COUNT_DISTINCT(enduser.id)"],
            order_by=[("status", "ascending")],
            min_duration_ms=12.5,
        ),
        spans_only=False,
    )
    assert query == {
        "calculations": [
            {"op": "HEATMAP", "column": "duration_ms"},
            {"op": "COUNT_DISTINCT", "column": "enduser.id"},
        ],
        "filters": [
            {"column": "name", "op": "=", "value": "GET /orders"},
            {"column": "http.response.status_code", "op": ">", "value": 499},
            {"column": "enduser.id", "op": "exists"},
            {"column": "duration_ms", "op": ">=", "value": 12.5},
        ],
        "filter_combination": "AND",
        "breakdowns": ["status_code", "span.kind"],
        "orders": [{"column": "status_code", "order": "ascending"}],
        "time_range": 900,
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("500", 500), ("-3", -3), ("1.5", 1.5), ("true", True), ("0042", "0042"), ("acme", "acme")],
)
def test_honeycomb_filter_values_are_typed_as_the_docs_send_them(text, value):
    assert filter_value(text) == value and type(filter_value(text)) is type(value)


def test_honeycomb_link_needs_its_slugs_and_a_known_region():
    with pytest.raises(ValueError, match="region"):
        honeycomb_link(ERRORS_BY_ROUTE, team="t", environment="e", dataset="d", region="ap")
    with pytest.raises(ValueError, match="team"):
        honeycomb_link(ERRORS_BY_ROUTE, team="", environment="e", dataset="d", region="us")


def test_link_slugs_come_from_the_two_variables_or_not_at_all():
    both = {"O11YKIT_HONEYCOMB_TEAM": "acme-sre", "O11YKIT_HONEYCOMB_ENVIRONMENT": "workshop"}
    assert link_slugs(both) == ("acme-sre", "workshop")
    assert link_slugs({"O11YKIT_HONEYCOMB_TEAM": "acme-sre"}) is None


# --------------------------------------------------------------------------------------------
# The solver's side, against a real local store
# --------------------------------------------------------------------------------------------


def test_params_for_the_jaeger_api():
    params = to_jaeger_params(SLOW_ACME, NOW)
    assert params["start"] == NOW - timedelta(hours=1) and params["end"] == NOW
    assert params["attributes"] == {"tenant.id": "acme"}
    assert params["duration_min"] == "250ms"
    assert to_breakdown_params(ERRORS_BY_ROUTE, NOW)["where"] == {
        "tenant.id": "acme",
        "error": "true",
    }
    errors = to_jaeger_params(QuerySpec(where=[("tenant.id", "=", "acme")], errors_only=True))
    assert errors["attributes"] == {"tenant.id": "acme", "error": "true"}


def _spans() -> list[bytes]:
    server = Span.SPAN_KIND_SERVER
    orders = [
        span(1, 11, "GET /orders", start=T0 + 1 * SECOND, duration=300 * MS, error=True,
             attributes={"tenant.id": "acme", "http.route": "/orders"}),
        span(1, 12, "SELECT orders", parent=11, kind=Span.SPAN_KIND_CLIENT,
             start=T0 + 1 * SECOND, duration=200 * MS),
        span(2, 21, "GET /orders", start=T0 + 2 * SECOND, duration=20 * MS, kind=server,
             attributes={"tenant.id": "beta", "http.route": "/orders"}),
        span(3, 31, "GET /orders", start=T0 + 3 * SECOND, duration=40 * MS,
             attributes={"tenant.id": "acme", "http.route": "/orders"}),
        span(4, 41, "POST /pay", start=T0 + 4 * SECOND, duration=500 * MS, error=True,
             attributes={"tenant.id": "acme", "http.route": "/pay"}),
    ]  # fmt: skip
    return [request(orders, "orders").SerializeToString()]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with spawn_store(tmp_path_factory.mktemp("query-spec"), grpc_port=None) as store:
        for body in _spans():
            post = urllib.request.Request(
                store.traces_url, body, {"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(post, timeout=10) as answer:
                assert answer.status == 200
        yield JaegerQuery(store.query_url)


@pytest.mark.integration
def test_run_local_breakdown_of_errors(store):
    answer = run_local(ERRORS_BY_ROUTE, store, NOW)
    assert answer["kind"] == "breakdown"
    assert answer["command"] == local_command(ERRORS_BY_ROUTE, store.base_url)
    assert [(g["value"], g["count"], g["errors"]) for g in answer["groups"]] == [
        ("/pay", 1, 1),
        ("/orders", 1, 1),
    ]
    assert answer["groups"][0]["p95Ms"] == pytest.approx(500)


@pytest.mark.integration
def test_run_local_orders_groups_as_the_spec_says(store):
    by_count = QuerySpec(service="orders", group_by=["name"])
    assert run_local(by_count, store, NOW)["groups"][0]["value"] == "GET /orders"
    slowest = QuerySpec(
        service="orders",
        group_by=["name"],
        calculate=["P95(duration_ms)"],
        order_by=[("P95(duration_ms)", "descending")],
        limit=2,
    )
    answer = run_local(slowest, store, NOW)
    assert [g["value"] for g in answer["groups"]] == ["POST /pay", "GET /orders"]
    assert answer["moreGroups"] == 1


@pytest.mark.integration
def test_run_local_search(store):
    answer = run_local(SLOW_ACME, store, NOW)
    assert answer["kind"] == "search"
    assert answer["command"] == local_command(SLOW_ACME, store.base_url)
    assert answer["count"] == 1  # trace 1: acme, GET /orders, 300 ms
    (found,) = answer["traces"]
    assert found["traceId"] == trace_id(1).hex()
    assert (found["root"], found["spans"], found["errors"]) == ("orders: GET /orders", 2, 1)
    everything = run_local(QuerySpec(where=[("tenant.id", "=", "acme")]), store, NOW)
    assert [t["traceId"] for t in everything["traces"]] == [
        trace_id(n).hex()
        for n in (4, 3, 1)  # newest first
    ]


@pytest.mark.integration
def test_run_local_search_of_errors_finds_the_traces_with_a_failed_span(store):
    failed = run_local(QuerySpec(errors_only=True), store, NOW)
    assert failed["command"] == (
        f"o11ykit traces search --attr error=true --since 15m --url {store.base_url}"
    )
    assert [t["traceId"] for t in failed["traces"]] == [trace_id(4).hex(), trace_id(1).hex()]
    acme = QuerySpec(service="orders", operation="GET /orders", where=[("tenant.id", "=", "acme")])
    assert run_local(acme, store, NOW)["count"] == 2  # traces 1 and 3
    only_failed = run_local(replace(acme, errors_only=True), store, NOW)
    assert [t["traceId"] for t in only_failed["traces"]] == [trace_id(1).hex()]


@pytest.mark.integration
def test_run_local_refuses_what_the_store_cannot_answer(store):
    with pytest.raises(NotExpressible, match="cannot order by"):
        spec = QuerySpec(
            group_by=["name"],
            calculate=["AVG(duration_ms)"],
            order_by=[("AVG(duration_ms)", "descending")],
        )
        run_local(spec, store, NOW)
