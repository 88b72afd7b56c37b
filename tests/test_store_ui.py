"""The store's pages at Jaeger UI's paths: the links o11ykit prints, opened on a real store."""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from email.message import Message
from urllib.parse import parse_qs, urlsplit

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from o11ykit.backends import local
from o11ykit.config import load_settings
from o11ykit.store import ui
from o11ykit.store.process import spawn_store
from o11ykit.store.queries import QueryError
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SCRIPT = "<script>alert(1)</script>"
CSP = "default-src 'none'; style-src 'unsafe-inline'"


@dataclass
class Page:
    status: int
    headers: Message
    text: str


def get(url: str, method: str = "GET") -> Page:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return Page(answer.status, answer.headers, answer.read().decode())
    except urllib.error.HTTPError as exc:
        return Page(exc.code, exc.headers, exc.read().decode())


def o11ykit(*args: str, env: dict[str, str] | None = None) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("O11YKIT_", "OTEL_"))}
    result = subprocess.run(
        [sys.executable, "-m", "o11ykit.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def printed_link(out: str, prefix: str) -> str:
    return next(line.removeprefix(prefix) for line in out.splitlines() if line.startswith(prefix))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    with spawn_store(tmp_path_factory.mktemp("ui") / "data", grpc_port=None) as store:
        yield store


@pytest.fixture(scope="module")
def trace_id(store) -> str:
    """A checkout whose card charge fails, sent by the SDK's own OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=store.traces_url)))
    tracer = provider.get_tracer("tests.store_ui")
    charge_attributes = {"note": SCRIPT, "tenant.id": "acme"}
    with (
        tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root,
        tracer.start_as_current_span("charge card", attributes=charge_attributes) as charge,
    ):
        charge.add_event("retry", {"attempt": 2})
        with tracer.start_as_current_span("SELECT orders"):
            pass
        charge.set_status(Status(StatusCode.ERROR, "card declined"))
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x")


def assert_is_page(page: Page) -> None:
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CSP
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.text.startswith("<!doctype html>")


# -- the links o11ykit prints -----------------------------------------------------------------


def test_the_link_traces_search_prints_opens_the_search_page(store, trace_id):
    out = o11ykit("traces", "search", "--url", store.query_url, "--service", "checkout")
    link = printed_link(out, "Jaeger UI: ")
    assert "lookback=custom" in link  # the exact link, start and end in microseconds
    page = get(link)
    assert page.status == 200
    assert_is_page(page)
    assert "checkout: GET /checkout" in page.text
    assert f'href="/trace/{trace_id}"' in page.text
    assert f"{ui.ERROR_MARK} 1" in page.text  # one span with an error
    assert "1 trace(s)" in page.text


def test_the_link_traces_show_prints_opens_the_waterfall(store, trace_id):
    out = o11ykit("traces", "show", trace_id, "--url", store.query_url)
    page = get(printed_link(out, "Jaeger UI: "))
    assert page.status == 200
    assert_is_page(page)
    # One row per span, parent before child, each indented one step deeper.
    rows = re.findall(r'padding-left:([\d.]+)em"><b>checkout</b> ([^<]+)', page.text)
    assert [(indent, name.strip()) for indent, name in rows] == [
        ("0.0", "GET /checkout"),
        ("1.2", "charge card"),
        ("2.4", "SELECT orders"),
    ]
    assert f"{ui.ERROR_MARK} ERROR" in page.text and "card declined" in page.text
    assert page.text.count(f"{ui.ERROR_MARK} ERROR") == 1
    # The root spans the whole timeline; its children start inside it.
    bars = re.findall(r"margin-left:([\d.]+)%;width:([\d.]+)%", page.text)
    assert bars[0] == ("0.00", "100.00")
    assert all(float(left) + float(width) <= 100.0 for left, width in bars)
    assert "<details>" in page.text and "retry" in page.text  # the event, collapsed


def test_breakdown_and_compare_against_a_real_store_and_their_links(store, trace_id):
    out = o11ykit("traces", "breakdown", "--url", store.query_url, "--by", "name")
    for name in ("GET /checkout", "charge card", "SELECT orders"):
        assert name in out
    assert get(printed_link(out, "Jaeger UI: ")).status == 200
    out = o11ykit("traces", "compare", "--url", store.query_url, "--errors")
    # The one failing span is the card charge: its name leads what the errors share.
    assert "errors: 1 spans against" in out
    assert re.search(r"name\s+│?\s*charge card\s+│?\s*100\.0% \(1\)", out), out
    # Its link asks for error=true, Jaeger's tag for the status: the failing trace, alone.
    link = printed_link(out, "Jaeger UI: ")
    assert json.loads(parse_qs(urlsplit(link).query)["tags"][0]) == {"error": "true"}
    page = get(link)
    assert page.status == 200
    assert f'href="/trace/{trace_id}"' in page.text
    assert "1 trace(s)" in page.text


def test_the_local_backends_link_and_doctors_open_the_trace_page(store, trace_id):
    settings = load_settings({"backend": "local", "query_url": store.query_url}, environ={})
    page = get(local.trace_link(settings, trace_id))
    assert page.status == 200 and "charge card" in page.text
    out = o11ykit(
        "doctor",
        "--backend",
        "local",
        "--endpoint",
        store.otlp_http_endpoint,
        env={"O11YKIT_QUERY_URL": store.query_url},
    )
    page = get(printed_link(out, "Link  "))
    assert page.status == 200
    assert_is_page(page)
    assert "o11ykit doctor test span" in page.text


def test_values_from_senders_appear_only_escaped(store, trace_id):
    page = get(f"{store.query_url}/trace/{trace_id}")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "<script" not in page.text
    search = get(
        f"{store.query_url}/search?tags=" + urllib.request.quote(json.dumps({"x": SCRIPT}))
    )
    assert search.status == 200 and "<script" not in search.text  # echoed in the form, escaped


def test_a_page_shows_what_was_acknowledged_before_it(store):
    provider = TracerProvider(resource=Resource.create({"service.name": "refunds"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=store.traces_url)))
    with provider.get_tracer("tests.store_ui").start_as_current_span("POST /refund") as span:
        pass
    provider.shutdown()
    # No API query in between: the page itself waits for the writer.
    page = get(f"{store.query_url}/trace/{format(span.get_span_context().trace_id, '032x')}")
    assert page.status == 200 and "POST /refund" in page.text


def test_the_services_page_links_each_service_to_its_search(store, trace_id):
    page = get(f"{store.query_url}/")
    assert page.status == 200
    assert_is_page(page)
    assert '<a href="/search?service=checkout">checkout</a>' in page.text
    assert "Jaeger" in page.text  # says these pages stand in for Jaeger UI


def test_search_parameters_as_jaeger_ui_writes_them(store, trace_id):
    base = f"{store.query_url}/search?service=checkout"
    acme = urllib.request.quote('{"tenant.id":"acme"}')
    assert trace_id in get(f"{base}&tags={acme}&lookback=15m&limit=5").text
    assert trace_id in get(f"{base}&operation=charge+card&minDuration=0ms").text
    assert "0 trace(s)" in get(f"{base}&operation=charge+card&minDuration=1h").text
    assert "0 trace(s)" in get(f"{base}&lookback=custom&start=0&end=1000").text


# -- errors -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "named"),
    [
        ("/trace/0123456789abcdef0123456789abcdef", 404, "No trace"),
        ("/trace/not-a-trace-id", 400, "neither 1 to 32 hex digits nor the base64"),
        ("/search?minDuration=fast", 400, "minDuration: &#x27;fast&#x27; is not a duration"),
        ("/search?maxDuration=1", 400, "maxDuration"),
        ("/search?tags=tenant.id%3Dacme", 400, "tags must be a JSON object"),
        ("/search?limit=-3", 400, "limit must be a positive integer"),
        ("/search?lookback=yesterday", 400, "lookback must be custom or a span like"),
        ("/search?lookback=custom&start=1", 400, "end must be Unix microseconds"),
    ],
)
def test_a_bad_request_is_a_page_saying_what_is_accepted(store, path, status, named):
    page = get(f"{store.query_url}{path}")
    assert page.status == status
    assert_is_page(page)
    assert named in page.text


def test_pages_answer_get_and_head_only(store, trace_id):
    head = get(f"{store.query_url}/trace/{trace_id}", method="HEAD")
    assert head.status == 200 and head.text == ""
    assert int(head.headers["Content-Length"]) > 0
    url = urlsplit(store.query_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=10)
    connection.request("POST", "/search", b"")
    assert connection.getresponse().status == 405
    connection.close()


def test_the_api_still_answers_json(store, trace_id):
    answer = get(f"{store.query_url}/api/v3/traces/{trace_id}")
    assert answer.status == 200 and answer.headers["Content-Type"] == "application/json"
    assert "Content-Security-Policy" not in answer.headers
    spans = json.loads(answer.text)["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert SCRIPT in json.dumps(spans)  # data, not markup: the API returns it as sent
    services = get(f"{store.query_url}/api/v3/services")
    assert "checkout" in json.loads(services.text)["services"]
    missing = get(f"{store.query_url}/api/v3/traces/0123456789abcdef0123456789abcdef")
    assert missing.status == 404 and missing.headers["Content-Type"] == "application/json"


# -- the search window, without a server ------------------------------------------------------

NOW = 1_750_000_000 * 10**9


@pytest.mark.parametrize(
    ("params", "window_ns"),
    [
        ({}, 3600 * 10**9),  # Jaeger UI's default lookback
        ({"lookback": "15m"}, 900 * 10**9),
        ({"lookback": "2d"}, 2 * 86400 * 10**9),
        ({"lookback": "1w"}, 7 * 86400 * 10**9),
        ({"lookback": "1h30m"}, 5400 * 10**9),
    ],
)
def test_a_lookback_ends_now(params, window_ns):
    query = ui.search_query(params, NOW)
    assert (query.start_min_ns, query.start_max_ns) == (NOW - window_ns, NOW)
    assert query.search_depth == 20


def test_a_custom_window_is_in_microseconds_and_the_rest_maps_to_the_api():
    params = {
        "lookback": "custom",
        "start": "1700000000000000",
        "end": "1700000060000000",
        "service": "checkout",
        "operation": "charge card",
        "tags": '{"tenant.id":"acme","http.response.status_code":500}',
        "minDuration": "250ms",
        "maxDuration": "2s",
        "limit": "7",
    }
    query = ui.search_query(params, NOW)
    assert (query.start_min_ns, query.start_max_ns) == (
        1_700_000_000 * 10**9,
        1_700_000_060 * 10**9,
    )
    assert (query.service, query.operation) == ("checkout", "charge card")
    assert dict(query.attributes) == {"tenant.id": "acme", "http.response.status_code": "500"}
    assert (query.duration_min_ns, query.duration_max_ns) == (250 * 10**6, 2 * 10**9)
    assert query.search_depth == 7


def test_a_start_without_lookback_custom_is_ignored_as_jaeger_ui_does():
    query = ui.search_query({"start": "1", "end": "2"}, NOW)
    assert query.start_max_ns == NOW


def test_parameter_errors_name_the_ui_parameter():
    with pytest.raises(QueryError, match=r"^tags must be a JSON object"):
        ui.search_query({"tags": "[1]"}, NOW)
    with pytest.raises(QueryError, match=r"^minDuration: "):
        ui.search_query({"minDuration": "soon"}, NOW)
    # A count is ASCII digits: int() would have read these as 10 and 1.
    for limit in ("1_0", "\uff11"):
        with pytest.raises(QueryError, match=r"^limit must be a positive integer, not "):
            ui.search_query({"limit": limit}, NOW)


@pytest.mark.parametrize(
    ("start", "end"),
    [("1796688720000000", "1796688600000000"), ("1796688600000000", "1796688600000000")],
)
def test_a_reversed_or_empty_custom_window_names_start_and_end(start, end):
    with pytest.raises(QueryError, match=r"^start must be before end$"):
        ui.search_query({"lookback": "custom", "start": start, "end": end}, NOW)


def test_the_services_page_of_a_store_retention_emptied_says_so(tmp_path):
    from o11ykit.store.queries import Queries
    from o11ykit.store.schema import open_database

    connection = open_database(tmp_path)
    status, page = ui.render("/", {}, Queries(connection))
    assert status == 200 and "No services have sent spans yet." in page.decode()
    # What retention leaves of two services' spans: their operations, no span.
    connection.executemany("INSERT INTO operations VALUES (?, 'GET /', 2)", [("cart",), ("pay",)])
    status, page = ui.render("/", {}, Queries(connection))
    connection.close()
    assert status == 200
    said = "No service holds spans now: retention has removed the spans the 2 service(s) sent."
    assert said in page.decode() and "yet" not in page.decode()
