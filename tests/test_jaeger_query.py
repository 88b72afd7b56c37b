"""The Jaeger API v3 client against a tiny fake Jaeger serving recorded OTLP JSON."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import pytest

from o11ykit import timeformats
from o11ykit.backends import jaeger_query as jq
from o11ykit.backends.jaeger_query import JaegerQuery, QueryError
from o11ykit.store import analytics_http
from tests.conftest import free_port

T0 = 1_750_000_000 * 1_000_000_000
MS = 1_000_000
CHECKOUT_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
PAYMENT_TRACE = "0af7651916cd43dd8448eb211c80319c"


def _kv(key: str, value: object) -> dict:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": value}}


def _span(trace, span, parent, name, kind, start_ms, end_ms, attrs=None, status=None, **extra):
    return {
        "traceId": trace,
        "spanId": span,
        "parentSpanId": parent,
        "name": name,
        "kind": kind,
        "startTimeUnixNano": str(T0 + start_ms * MS),
        "endTimeUnixNano": str(T0 + end_ms * MS),
        "attributes": [_kv(k, v) for k, v in (attrs or {}).items()],
        "status": status or {},
        **extra,
    }


def _resource_spans(service: str, spans: list[dict]) -> dict:
    return {
        "resource": {"attributes": [_kv("service.name", service), _kv("service.version", "2.0")]},
        "scopeSpans": [{"scope": {"name": "o11ykit"}, "spans": spans}],
    }


# Shaped as Jaeger v2 answers: hex ids, numeric kinds and status codes, times as strings.
CHECKOUT = [
    _resource_spans(
        "frontend",
        [
            _span(CHECKOUT_TRACE, "a1a1a1a1a1a1a1a1", "", "GET /checkout", 2, 0, 120),
            _span(CHECKOUT_TRACE, "a2a2a2a2a2a2a2a2", "a1a1a1a1a1a1a1a1", "POST", 3, 5, 115),
        ],
    ),
    _resource_spans(
        "checkout",
        [
            _span(
                CHECKOUT_TRACE,
                "a3a3a3a3a3a3a3a3",
                "a2a2a2a2a2a2a2a2",
                "POST /checkout",
                2,
                10,
                110,
                {"tenant.id": "acme", "http.response.status_code": 502, "retry": True},
                {"code": 2, "message": "payment declined"},
                events=[
                    {
                        "name": "exception",
                        "timeUnixNano": str(T0 + 100 * MS),
                        "attributes": [_kv("exception.type", "PaymentError")],
                    }
                ],
            ),
            _span(
                CHECKOUT_TRACE,
                "a4a4a4a4a4a4a4a4",
                "a3a3a3a3a3a3a3a3",
                "SELECT orders",
                3,
                20,
                50,
                {"db.system.name": "postgresql"},
                {"code": 1},
            ),
        ],
    ),
]
PAYMENT = [
    _resource_spans(
        "payments",
        [_span(PAYMENT_TRACE, "b1b1b1b1b1b1b1b1", "", "charge", "SPAN_KIND_SERVER", 200, 230)],
    )
]
OPERATIONS = {
    "checkout": [
        {"name": "POST /checkout", "spanKind": "server"},
        {"name": "SELECT orders", "spanKind": "client"},
    ]
}


# What another program on the port might answer with 200, by the last part of the path.
OTHER_PROGRAM: dict[str, dict] = {
    "services": {"services": [1, None]},
    "operations": {"operations": [1]},
    "breakdown": {  # every field there, one of them not a number
        "total": 1,
        "groupBy": "tenant.id",
        "source": "indexed",
        "groups": [
            {
                "value": "a",
                "count": 1,
                "errors": 0,
                "errorRate": 0,
                "p50Ms": "x",
                "p95Ms": 1,
                "p99Ms": 1,
            }
        ],
    },
    "compare": {"selection": "errors", "selectionCount": 1, "baselineCount": 2, "pairs": [{}]},
}


class FakeJaeger:
    """Jaeger's query API on a free loopback port; with a store, also o11ykit's endpoints."""

    def __init__(self, store: sqlite3.Connection | None = None) -> None:
        self.store = store
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.url = ""
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FakeJaeger:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                params = dict(parse_qsl(parts.query))
                fake.requests.append((parts.path, params))
                status, body = fake.answer(parts.path, params)
                html = isinstance(body, str)  # a proxy's or another server's page
                raw = body.encode() if html else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if html else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def answer(self, path: str, params: dict[str, str]) -> tuple[int, dict | str]:
        if path.startswith("/html/"):
            return 404, "<html><body><h1>404 Not Found</h1></body></html>"
        if path.startswith("/other/"):  # another program's JSON API on the port
            return 200, OTHER_PROGRAM.get(path.split("/")[-1], {"result": []})
        if path == "/api/v3/services":
            return 200, {"services": ["payments", "checkout", "frontend"]}
        if path == "/api/v3/operations":
            return 200, {"operations": OPERATIONS.get(params.get("service", ""), [])}
        if path == "/api/v3/traces":
            if params.get("query.serviceName") == "bad":
                return 400, _gateway_error(3, 400, "service bad is not allowed here")
            if params.get("query.serviceName") == "nothing":  # as Jaeger v2 words it
                return 404, _gateway_error(5, 404, "No traces found")
            if params.get("query.serviceName") == "nothing-v1":
                return 404, _gateway_error(5, 404, "trace not found")
            if params.get("query.serviceName") == "nothing-wrapped":  # a storage's error
                return 404, _gateway_error(5, 404, "cannot read trace: trace not found")
            return 200, {"result": {"resourceSpans": CHECKOUT + PAYMENT}}
        if path == f"/api/v3/traces/{CHECKOUT_TRACE}":
            return 200, {"result": {"resourceSpans": CHECKOUT}}
        if path.startswith("/api/v3/traces/"):
            return 404, _gateway_error(5, 404, "trace not found")
        if path.startswith("/api/o11ykit/") and self.store is not None:
            return analytics_http.handle("GET", path, params, self.store)
        return 404, {"code": 5, "message": "Not Found"}


def _gateway_error(grpc_code: int, http_code: int, message: str) -> dict:
    return {"error": {"grpcCode": grpc_code, "httpCode": http_code, "message": message}}


@pytest.fixture
def fake():
    with FakeJaeger() as server:
        yield server


START = datetime(2025, 6, 15, 12, 0, tzinfo=timezone.utc)
END = START + timedelta(minutes=15)


def test_services_and_operations(fake):
    client = JaegerQuery(fake.url)
    assert client.services() == ["checkout", "frontend", "payments"]
    operations = client.operations("checkout", span_kind="server")
    assert [o.name for o in operations] == ["POST /checkout", "SELECT orders"]
    assert fake.requests[-1] == (
        "/api/v3/operations",
        {"service": "checkout", "spanKind": "server"},
    )


def test_find_traces_sends_jaeger_parameters_and_groups_spans(fake):
    traces = JaegerQuery(fake.url).find_traces(
        "checkout",
        "POST /checkout",
        start=START,
        end=END,
        attributes={"tenant.id": "acme"},
        duration_min="100ms",
        search_depth=5,
    )
    path, params = fake.requests[-1]
    assert path == "/api/v3/traces"
    assert params == {
        "query.serviceName": "checkout",
        "query.operationName": "POST /checkout",
        "query.startTimeMin": "2025-06-15T12:00:00.000000000Z",
        "query.startTimeMax": "2025-06-15T12:15:00.000000000Z",
        "query.attributes": '{"tenant.id": "acme"}',
        "query.durationMin": "100ms",
        "query.searchDepth": "5",
    }
    assert [t.trace_id for t in traces] == [CHECKOUT_TRACE, PAYMENT_TRACE]
    checkout = traces[0]
    assert len(checkout.spans) == 4 and checkout.errors == 1
    assert checkout.root.name == "GET /checkout" and checkout.root.service == "frontend"
    assert checkout.duration_ms == 120.0
    assert traces[1].spans[0].kind == "server"  # the enum name form is understood too


def test_a_span_ending_before_it_starts_lasted_zero_not_minus_zero():
    from o11ykit.backends.jaeger_query import _span

    view = _span({"startTimeUnixNano": str(T0 + MS), "endTimeUnixNano": str(T0)}, {})
    assert view.duration_ms == 0 and f"{view.duration_ms:.2f}" == "0.00"


def test_span_view_fields(fake):
    trace = JaegerQuery(fake.url).get_trace(CHECKOUT_TRACE)
    assert trace is not None
    span = next(s for s in trace.spans if s.name == "POST /checkout")
    assert span.trace_id == CHECKOUT_TRACE
    assert span.span_id == "a3a3a3a3a3a3a3a3"
    assert span.parent_span_id == "a2a2a2a2a2a2a2a2"
    assert span.service == "checkout" and span.kind == "server"
    assert (span.start_ns, span.end_ns, span.duration_ms) == (T0 + 10 * MS, T0 + 110 * MS, 100.0)
    assert (span.status, span.status_message) == ("error", "payment declined")
    assert span.attributes == {"tenant.id": "acme", "http.response.status_code": 502, "retry": True}
    assert span.resource == {"service.name": "checkout", "service.version": "2.0"}
    assert span.events[0].name == "exception"
    assert span.events[0].attributes == {"exception.type": "PaymentError"}
    assert trace.spans[0].parent_span_id is None
    db = next(s for s in trace.spans if s.name == "SELECT orders")
    assert (db.kind, db.status) == ("client", "ok")


def test_missing_trace_is_none_and_no_traces_is_empty(fake):
    client = JaegerQuery(fake.url)
    assert client.get_trace("ffffffffffffffffffffffffffffffff") is None
    assert client.find_traces("nothing", start=START, end=END) == []
    assert client.find_traces("nothing-v1", start=START, end=END) == []
    assert client.find_traces("nothing-wrapped", start=START, end=END) == []


@pytest.mark.parametrize(
    ("prefix", "says"),
    [
        # A JSON 404 that is not Jaeger's "nothing matches": its words, and the path.
        ("/elsewhere", r"Not Found \(HTTP 404 for /elsewhere/api/v3/traces"),
        ("/html", "answered HTTP 404: is that Jaeger's query address"),  # a proxy's page
    ],
)
def test_a_404_from_a_wrong_address_is_an_error_not_an_empty_answer(fake, prefix, says):
    """Read as "no traces", a wrong base URL would make every lab check see an empty store."""
    client = JaegerQuery(fake.url + prefix)
    with pytest.raises(QueryError, match=says) as caught:
        client.find_traces("checkout", start=START, end=END)
    assert caught.value.status == 404
    with pytest.raises(QueryError, match=says):
        client.get_trace(CHECKOUT_TRACE)


@pytest.mark.parametrize(
    "read",
    [
        lambda client: client.services(),
        lambda client: client.operations("checkout"),
        lambda client: client.find_traces("checkout", start=START, end=END),
        lambda client: client.get_trace(CHECKOUT_TRACE),
        lambda client: client.breakdown("tenant.id", start=START, end=END),
        lambda client: client.compare("errors", start=START, end=END),
        lambda client: client.status(),
    ],
    ids=["services", "operations", "find_traces", "get_trace", "breakdown", "compare", "status"],
)
def test_json_of_another_shape_is_a_query_error_not_a_crash(fake, read):
    """Another program answering 200 on the port: `o11ykit traces` says so in one line."""
    with pytest.raises(QueryError, match="answered JSON that is not an answer of Jaeger's"):
        read(JaegerQuery(fake.url + "/other"))


def test_server_error_message_is_kept(fake):
    with pytest.raises(QueryError, match="service bad is not allowed here") as caught:
        JaegerQuery(fake.url).find_traces("bad", start=START, end=END)
    assert caught.value.status == 400


def test_unreachable_server_is_a_query_error():
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(QueryError, match=f"cannot reach the query API at {url}"):
        JaegerQuery(url, timeout=1.0).services()


def test_messages_name_the_address_without_its_password_or_keys():
    url = f"http://bob:s3cret@127.0.0.1:{free_port()}/jaeger?token=k3y"
    with pytest.raises(QueryError, match="cannot reach the query API at") as caught:
        JaegerQuery(url, timeout=1.0).services()
    assert "http://***@127.0.0.1:" in str(caught.value)
    assert "s3cret" not in str(caught.value) and "k3y" not in str(caught.value)


def test_o11ykit_endpoints_on_a_plain_jaeger_say_so(fake):
    with pytest.raises(QueryError, match="exist only in o11ykit's local store"):
        JaegerQuery(fake.url).breakdown("tenant.id", start=START, end=END)


def test_base64_ids_are_read_as_hex():
    body = {"result": {"resourceSpans": CHECKOUT}}
    raw = body["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    encoded = dict(raw, traceId="S/kvNXezTaajzpKdDg5HNg==", spanId="oaGhoaGhoaE=")
    trace = jq.parse_traces({"resourceSpans": [{"scopeSpans": [{"spans": [encoded]}]}]})[0]
    assert trace.trace_id == CHECKOUT_TRACE
    assert trace.spans[0].span_id == "a1a1a1a1a1a1a1a1"


def test_ui_links():
    link = jq.ui_search_link(
        "http://127.0.0.1:16686/",
        "checkout",
        "POST /checkout",
        {"tenant.id": "acme"},
        START,
        END,
    )
    assert link == (
        "http://127.0.0.1:16686/search?service=checkout&operation=POST+%2Fcheckout"
        "&tags=%7B%22tenant.id%22%3A%22acme%22%7D&lookback=custom"
        "&start=1749988800000000&end=1749989700000000&limit=20"
    )
    assert (
        jq.ui_search_link("http://j:16686", "svc") == "http://j:16686/search?service=svc&limit=20"
    )
    assert jq.ui_trace_link("http://j:16686/", "abc") == "http://j:16686/trace/abc"


def test_a_ui_link_reaching_back_before_1970_starts_there():
    # `--since 500000h`: the UI's (and the store's pages') times are unsigned microseconds.
    link = jq.ui_search_link("http://j:16686", "svc", start=END - timedelta(hours=500_000), end=END)
    assert "&start=0&end=1749989700000000&" in link


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        ("250ms", 250 * MS),
        ("1.5s", 1_500 * MS),
        ("1m30s", 90_000 * MS),
        ("300us", 300_000),
        ("300µs", 300_000),
        ("2h", 7_200_000 * MS),
        ("0", 0),
        ("15ns", 15),
        ("-5s", -5_000 * MS),  # Go durations may be negative; Jaeger accepts them
        ("+5s", 5_000 * MS),
        ("-0", 0),
    ],
)
def test_go_durations(text, nanoseconds):
    assert timeformats.parse_duration(text) == nanoseconds


@pytest.mark.parametrize(
    "text", ["", "250", "ms", "1d", "5 s", "1.5.2s", "--5m", "+-5ms", "-+5s", "-", "+"]
)
def test_bad_go_durations(text):
    with pytest.raises(ValueError, match="not a duration"):
        timeformats.parse_duration(text)


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [("2562047h47m16.854775807s", 2**63 - 1), ("-2562047h47m16.854775807s", -(2**63) + 1)],
)
def test_go_durations_reach_the_64_bit_limit(text, nanoseconds):
    assert timeformats.parse_duration(text) == nanoseconds


@pytest.mark.parametrize("text", ["2562047h47m16.854775808s", "9999999999h", "-9999999999h"])
def test_go_durations_beyond_64_bits_are_refused_as_go_refuses_them(text):
    with pytest.raises(ValueError, match="out of range"):
        timeformats.parse_duration(text)


def test_times_beyond_64_bit_nanoseconds_are_clamped_to_the_limit():
    # As a search bound, year 9999 means "no end": nothing is stored after 2262.
    assert timeformats.parse_time("9999-12-31T23:59:59Z") == 2**63 - 1
    assert timeformats.parse_time("1000-01-01T00:00:00Z") == -(2**63)
    assert timeformats.parse_time("2262-04-11T23:47:16.854775807Z") == 2**63 - 1


def test_times_round_trip_at_nanosecond_precision():
    assert timeformats.parse_time("2025-06-15T12:00:00.123456789Z") == 1_749_988_800_123_456_789
    assert timeformats.parse_time("2025-06-15T14:00:00+02:00") == 1_749_988_800 * 10**9
    assert timeformats.format_time(1_749_988_800_123_456_789) == "2025-06-15T12:00:00.123456789Z"
    # To the second, for a person to type: the second the moment falls in, from any zone.
    half_past = datetime(2025, 6, 15, 14, 0, 0, 500_000, timezone(timedelta(hours=2)))
    assert timeformats.format_second(half_past) == "2025-06-15T12:00:00Z"
    assert timeformats.format_second(1_749_988_800) == "2025-06-15T12:00:00Z"
    assert timeformats.format_duration(250 * MS) == "250ms"
    assert timeformats.format_duration(0) == "0s"  # as Go prints it, not "0h"
    with pytest.raises(ValueError, match="RFC 3339"):
        timeformats.parse_time("yesterday")


@pytest.mark.parametrize(
    ("text", "nanoseconds"),
    [
        # Go's time.Parse (Jaeger's) reads a fraction of any length and drops the digits
        # past the ninth, and takes a comma for the point.
        ("2025-06-15T12:00:00.1234567891234Z", 1_749_988_800_123_456_789),
        ("2025-06-15T12:00:00,5Z", 1_749_988_800_500_000_000),
        # Year 0 is a year to Go; before 1677 it is the 64-bit limit, as other early times.
        ("0000-01-01T00:00:00Z", -(2**63)),
        ("0000-02-29T00:00:00Z", -(2**63)),
    ],
)
def test_times_go_reads_are_read_the_same(text, nanoseconds):
    assert timeformats.parse_time(text) == nanoseconds


@pytest.mark.parametrize(
    "text", ["2025-06-15T12:00:00.Z", "0000-02-30T00:00:00Z", "２０２５-06-15T12:00:00Z"]
)
def test_times_go_refuses_are_refused(text):
    with pytest.raises(ValueError, match=re.escape(repr(text))):
        timeformats.parse_time(text)


@pytest.mark.parametrize("offset", ["+25:00", "+99:99", "-05:61"])
def test_an_offset_go_would_refuse_is_refused(offset):
    with pytest.raises(ValueError, match=f"the offset {re.escape(offset)} is beyond"):
        timeformats.parse_time(f"2025-06-15T12:00:00{offset}")
    # What Go's parser still takes (hours to 24, minutes to 60), as Jaeger does.
    assert timeformats.parse_time("2025-06-15T12:00:00+24:00") == 1_749_902_400 * 10**9
    assert timeformats.parse_time("2025-06-15T12:00:00-05:60") == 1_750_010_400 * 10**9


@pytest.mark.parametrize(
    ("url", "direct"),
    [
        ("http://127.0.0.1:16686", True),
        ("http://127.0.0.2:16686", True),  # all of 127.0.0.0/8, as the store's own check
        ("http://[::1]:16686", True),
        ("http://localhost:16686", True),
        ("https://api.honeycomb.io", False),
        ("http://jaeger.internal:16686", False),  # a name is not looked up
    ],
)
def test_the_kits_clients_never_send_loopback_to_the_machines_proxy(monkeypatch, url, direct):
    import urllib.request

    from o11ykit.loopback import opener_for

    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.setenv(name, "http://proxy.invalid:3128")
    # An empty ProxyHandler has nothing to open with, so the opener drops it: no proxy left.
    proxies = [
        h.proxies for h in opener_for(url).handlers if isinstance(h, urllib.request.ProxyHandler)
    ]
    expected = [] if direct else ["http://proxy.invalid:3128"]
    assert [found["http"] for found in proxies] == expected
