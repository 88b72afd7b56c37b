"""Two real services, edge and inner, as separate uvicorn processes talking over loopback.

edge (tests/support/twosvc_edge.py) takes the tenant and user from X-Tenant-ID / X-User-ID,
runs one SQL query and calls inner once with each client library: httpx, requests and,
where it is installed (Python 3.11+), httpx2. inner (tests/support/twosvc_inner.py) trusts
inbound baggage, which is the only way it learns the tenant and user. Both export OTLP/HTTP
to one real receiver process, and the assertions are made on what that receiver decoded
from the wire, plus the services' own log files.

One pair runs for the whole module; the variants that need a different environment
(pseudonym key, baggage hosts) start their own pair with their own receiver, so that
"X appears nowhere at the receiver" is never muddled by another test's requests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
import urllib.request
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from o11ykit.privacy import pseudonymize
from tests.conftest import free_port
from tests.support.otlp_receiver import OtlpReceiver
from tests.support.processes import (
    child_environment,
    start_uvicorn,
    stop_process,
    wait_until_http_ready,
)
from tests.support.twosvc_common import CLIENTS

pytestmark = pytest.mark.integration

Span = dict[str, Any]

TENANT = "acme"
USER = "u-7"
SECRET = "s3cr3t"
PSEUDONYM_KEY = "twosvc-test-pseudonym-key"
IDENTITY_KEYS = ("tenant.id", "enduser.id", "enduser.pseudo.id")
SCHEDULE_DELAY = "0.1"  # seconds: spans reach the receiver quickly, tests stay short
READY_TIMEOUT = 30.0  # two cold interpreters importing FastAPI on a 2-core machine
TRACE_TIMEOUT = 15.0
# What one /orders/{id} request must produce: (service, role) -> number of spans.
EXPECTED_SHAPE = Counter(
    {
        ("edge", "server"): 1,
        ("edge", "sql"): 1,
        ("edge", "http"): len(CLIENTS),  # one per client library
        ("inner", "server"): len(CLIENTS),
        ("inner", "sql"): len(CLIENTS),
    }
)
CLIENT_SCOPES = {"opentelemetry.instrumentation.httpx", "opentelemetry.instrumentation.requests"}
# Settings from the developer's shell would change what the services do.
_NOT_INHERITED = ("O11YKIT_", "OTEL_", "TWOSVC_")
LOG_LINE = re.compile(
    r"^(?P<logger>\S+) trace_id=(?P<trace_id>\S+) span_id=(?P<span_id>\S+) "
    r"tenant=(?P<tenant>\S+) user=(?P<user>\S+) pseudo=(?P<pseudo>\S+) (?P<message>.*)$"
)
# The test's own client is urllib, which o11ykit never instruments: even if another test
# initialised o11ykit in this process, no traceparent or baggage leaves from here.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# Distinct per request so each trace and log line is found unambiguously; long enough that a
# bound parameter leaking into a span would be visible.
_order_ids = itertools.count(730_001)


# --------------------------------------------------------------------------------------------
# Processes
# --------------------------------------------------------------------------------------------


@dataclass
class Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_file: Path
    output_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self, limit: int = 3000) -> str:
        try:
            return self.output_file.read_text(encoding="utf-8", errors="replace")[-limit:]
        except FileNotFoundError:
            return ""

    def log_records(self) -> list[dict[str, str]]:
        try:
            lines = self.log_file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        return [match.groupdict() for match in map(LOG_LINE.match, lines) if match]


def start_service(name: str, directory: Path, env: Mapping[str, str]) -> Service:
    port = free_port()
    log_file = directory / f"{name}.log"
    output_file = directory / f"{name}.out"
    environment = child_environment(
        {"TWOSVC_DB": str(directory / f"{name}.db"), "TWOSVC_LOG_FILE": str(log_file), **env},
        not_inherited=_NOT_INHERITED,
    )
    process = start_uvicorn(f"tests.support.twosvc_{name}:app", port, environment, output_file)
    return Service(name, port, process, log_file, output_file)


@dataclass
class Pair:
    edge: Service
    inner: Service
    receiver: OtlpReceiver

    def raw(self) -> str:
        """Every byte the receiver recorded (decoded spans and request metadata), as text."""
        try:
            return self.receiver.record_file.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""

    def diagnostics(self) -> str:
        return "\n".join(
            [self.receiver.summary()]
            + [f"--- {s.name} output:\n{s.output()}" for s in (self.edge, self.inner)]
        )


@contextlib.contextmanager
def running_pair(
    directory: Path,
    *,
    edge_env: Mapping[str, str] | None = None,
    inner_env: Mapping[str, str] | None = None,
    shared_env: Mapping[str, str] | None = None,
) -> Iterator[Pair]:
    """A receiver, inner and edge; stopped in reverse order so the services' last flush lands."""
    directory.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        receiver = stack.enter_context(OtlpReceiver(directory))
        common = {
            "O11YKIT_ENDPOINT": receiver.http_endpoint,
            "O11YKIT_SCHEDULE_DELAY": SCHEDULE_DELAY,
            **(shared_env or {}),
        }
        inner_environment = {**common, "O11YKIT_BAGGAGE_TRUST_INBOUND": "true", **(inner_env or {})}
        inner = start_service("inner", directory, inner_environment)
        stack.callback(stop_process, inner.process)
        edge = start_service(
            "edge", directory, {**common, "TWOSVC_INNER_URL": inner.url, **(edge_env or {})}
        )
        stack.callback(stop_process, edge.process)
        # Both interpreters start in parallel; only then wait for each.
        for service in (inner, edge):
            health = f"{service.url}/health"
            wait_until_http_ready(health, service.process, READY_TIMEOUT, service.output)
        yield Pair(edge, inner, receiver)


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    with running_pair(tmp_path_factory.mktemp("twosvc")) as running:
        yield running


# --------------------------------------------------------------------------------------------
# Requests and traces
# --------------------------------------------------------------------------------------------


def get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=dict(headers or {}))
    with _OPENER.open(request, timeout=timeout) as response:
        return response.status, json.loads(response.read())


def service_of(span: Span) -> str:
    return str(span["resource"].get("service.name"))


def role_of(span: Span) -> str:
    if span["kind"] == "SERVER":
        return "server"
    if span["kind"] == "CLIENT" and "db.system.name" in span["attributes"]:
        return "sql"
    if span["kind"] == "CLIENT" and span["scope"] in CLIENT_SCOPES:
        return "http"
    return f"other:{span['kind']}:{span['scope']}"


def describe(span: Span) -> str:
    return f"{service_of(span)} {span['name']!r} [{span['kind']}] {span['attributes']}"


@dataclass(frozen=True)
class Trace:
    spans: list[Span]

    @property
    def trace_id(self) -> str:
        return self.spans[0]["trace_id"]

    def of(self, service: str, role: str) -> list[Span]:
        return [s for s in self.spans if service_of(s) == service and role_of(s) == role]

    def one(self, service: str, role: str) -> Span:
        found = self.of(service, role)
        assert len(found) == 1, f"{service} {role}: {[describe(s) for s in found]}"
        return found[0]

    def shape(self) -> Counter[tuple[str, str]]:
        return Counter((service_of(s), role_of(s)) for s in self.spans)

    def __str__(self) -> str:
        return "\n".join(describe(s) for s in self.spans)


def find_trace(spans: list[Span], order_path: str) -> Trace | None:
    """The trace whose root is edge's server span for `order_path`."""
    roots = [
        s
        for s in spans
        if service_of(s) == "edge"
        and s["kind"] == "SERVER"
        and s["attributes"].get("url.path") == order_path
    ]
    if not roots:
        return None
    trace_id = roots[0]["trace_id"]
    return Trace([s for s in spans if s["trace_id"] == trace_id])


def wait_for_trace(pair: Pair, order_path: str) -> Trace:
    """Waits until every span of EXPECTED_SHAPE, from both services, has arrived."""

    def complete(spans: list[Span]) -> bool:
        trace = find_trace(spans, order_path)
        return trace is not None and trace.shape() >= EXPECTED_SHAPE

    try:
        spans = pair.receiver.wait_for_spans(complete, timeout=TRACE_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{pair.diagnostics()}") from None
    trace = find_trace(spans, order_path)
    assert trace is not None
    assert trace.shape() == EXPECTED_SHAPE, f"unexpected spans in the trace:\n{trace}"
    return trace


def order(pair: Pair, headers: Mapping[str, str], query: str = "") -> tuple[int, Any, Trace]:
    """One /orders request at the edge and its complete trace from the receiver."""
    order_id = next(_order_ids)
    path = f"/orders/{order_id}"
    status, body = get(f"{pair.edge.url}{path}{query}", headers)
    assert status == 200, body
    return order_id, body, wait_for_trace(pair, path)


# --------------------------------------------------------------------------------------------
# Shared assertions
# --------------------------------------------------------------------------------------------


def assert_linked(pair: Pair, trace: Trace, order_id: int) -> None:
    """edge server -> (edge SQL, edge clients) -> inner servers -> inner SQL, one trace."""
    server = trace.one("edge", "server")
    # The test's urllib client sends no traceparent: the edge starts the trace.
    assert server["parent_span_id"] == "", describe(server)
    for span in trace.of("edge", "sql") + trace.of("edge", "http"):
        assert span["parent_span_id"] == server["span_id"], describe(span)
    clients = trace.of("edge", "http")
    assert {s["scope"] for s in clients} == CLIENT_SCOPES
    inner_servers = trace.of("inner", "server")
    # Each client span is the parent of exactly one inner server span, across the socket.
    assert sorted(s["parent_span_id"] for s in inner_servers) == sorted(
        s["span_id"] for s in clients
    ), str(trace)
    inner_sql_parents = sorted(s["parent_span_id"] for s in trace.of("inner", "sql"))
    assert inner_sql_parents == sorted(s["span_id"] for s in inner_servers), str(trace)
    # No inner span for this order landed in some other trace.
    stray = [
        s
        for s in pair.receiver.spans()
        if s["attributes"].get("url.path") == f"/stock/{order_id}"
        and s["trace_id"] != trace.trace_id
    ]
    assert not stray, [describe(s) for s in stray]


def assert_sql_spans(trace: Trace, order_id: int) -> None:
    sql = trace.of("edge", "sql") + trace.of("inner", "sql")
    for span in sql:
        attributes = span["attributes"]
        assert attributes["db.system.name"] == "sqlite", describe(span)
        # The statement with its placeholder, never the bound value.
        assert "?" in attributes.get("db.query.text", ""), describe(span)
        assert str(order_id) not in json.dumps(attributes), describe(span)
        assert not [k for k in attributes if k.startswith("db.query.parameter")], describe(span)


def identity_of(span: Span) -> dict[str, Any]:
    return {k: span["attributes"][k] for k in IDENTITY_KEYS if k in span["attributes"]}


def assert_identity(spans: list[Span], expected: dict[str, str]) -> None:
    wrong = [describe(s) for s in spans if identity_of(s) != expected]
    assert not wrong, f"expected {expected} on every span; differs on:\n" + "\n".join(wrong)


def assert_log_lines(
    pair: Pair,
    trace: Trace,
    order_id: int,
    *,
    edge: tuple[str, str, str],
    inner: tuple[str, str, str],
) -> None:
    """Each service's log lines for this order: trace and span ids, (tenant, user, pseudo)."""
    edge_lines = [
        r for r in pair.edge.log_records() if r["message"] == f"order lookup order_id={order_id}"
    ]
    inner_lines = [
        r for r in pair.inner.log_records() if r["message"] == f"stock lookup item_id={order_id}"
    ]
    assert len(edge_lines) == 1, pair.edge.log_file.read_text(encoding="utf-8")
    assert len(inner_lines) == len(CLIENTS), pair.inner.log_file.read_text(encoding="utf-8")
    for line in edge_lines + inner_lines:
        assert line["trace_id"] == trace.trace_id, line
    # Logged inside the endpoint, where the server span is current (operation spans are off).
    assert edge_lines[0]["span_id"] == trace.one("edge", "server")["span_id"], edge_lines
    assert sorted(r["span_id"] for r in inner_lines) == sorted(
        s["span_id"] for s in trace.of("inner", "server")
    ), inner_lines
    for lines, (tenant, user, pseudo) in ((edge_lines, edge), (inner_lines, inner)):
        for line in lines:
            assert (line["tenant"], line["user"], line["pseudo"]) == (tenant, user, pseudo), line


# --------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------


def test_one_trace_across_both_services(pair: Pair) -> None:
    headers = {"X-Tenant-ID": TENANT, "X-User-ID": USER}
    order_id, body, trace = order(pair, headers, query=f"?token={SECRET}")

    assert_identity(trace.spans, {"tenant.id": TENANT, "enduser.id": USER})
    assert_linked(pair, trace, order_id)
    assert_sql_spans(trace, order_id)
    # What inner was told, by baggage only: edge sends no X-Tenant-ID / X-User-ID onwards.
    for client in CLIENTS:
        baggage = body["inner"][client]["baggage_seen"] or ""
        assert "tenant.id=acme" in baggage and "enduser.id=u-7" in baggage, (client, baggage)

    all_spans = pair.receiver.spans()
    noise = [
        describe(s)
        for s in all_spans
        if s["name"].endswith(("http send", "http receive"))
        or s["name"].startswith(("fastapi.endpoint", "fastapi.dependencies"))
    ]
    assert not noise, noise
    # Secrets: the whole recorded JSON, not only the attributes this test thought of.
    raw = pair.raw()
    assert SECRET not in raw, [describe(s) for s in all_spans if SECRET in json.dumps(s)]

    assert_log_lines(pair, trace, order_id, edge=(TENANT, USER, "-"), inner=(TENANT, USER, "-"))


def test_each_client_library_sends_its_own_span_as_the_parent(pair: Pair) -> None:
    order_id, body, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})
    client_spans = {s["span_id"]: s for s in trace.of("edge", "http")}
    # traceparent: version-trace_id-parent_id-flags, as each library's request carried it.
    sent = {c: body["inner"][c]["context_seen"]["traceparent"].split("-") for c in CLIENTS}
    assert {fields[1] for fields in sent.values()} == {trace.trace_id}, sent
    parents = {client: fields[2] for client, fields in sent.items()}
    assert sorted(parents.values()) == sorted(client_spans), (parents, str(trace))
    # The stable HTTP attribute names, as on o11ykit's server spans, and not the old ones.
    for client, parent in parents.items():
        attributes = client_spans[parent]["attributes"]
        assert attributes.get("http.request.method") == "GET", (client, attributes)
        assert attributes.get("http.response.status_code") == 200, (client, attributes)
        assert attributes.get("url.full", "").endswith(f"/stock/{order_id}"), (client, attributes)
        assert not {"http.method", "http.url", "http.status_code"} & set(attributes), attributes


def test_a_service_that_chose_its_http_attribute_names_keeps_them(tmp_path: Path) -> None:
    # A service migrating its dashboards asked for both the old and the stable names.
    shared_env = {"OTEL_SEMCONV_STABILITY_OPT_IN": "http/dup"}
    with running_pair(tmp_path, shared_env=shared_env) as pair:
        _, _, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})
        for span in trace.of("edge", "http"):
            attributes = span["attributes"]
            assert attributes.get("http.method") == attributes.get("http.request.method") == "GET"


def test_httpx2_requests_are_traced_where_it_is_installed(pair: Pair) -> None:
    if "httpx2" not in CLIENTS:
        pytest.skip("httpx2 is not installed (it needs Python 3.11): its tracing was not tested")
    _, body, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})
    seen = body["inner"]["httpx2"]
    parent = seen["context_seen"]["traceparent"].split("-")[2]
    assert parent in {s["span_id"] for s in trace.of("edge", "http")}, (seen, str(trace))
    assert "tenant.id=acme" in seen["baggage_seen"], seen


def test_forged_baggage_is_ignored_at_the_edge(pair: Pair) -> None:
    # An outside caller claims a tenant and user through baggage instead of the headers.
    order_id, body, trace = order(pair, {"baggage": "tenant.id=evil,enduser.id=mallory"})

    # Nobody is named anywhere: the edge ignored the baggage and did not forward it.
    assert_identity(trace.spans, {})
    for client in CLIENTS:
        assert body["inner"][client]["baggage_seen"] is None, body
    raw = pair.raw()
    assert "evil" not in raw
    assert "mallory" not in raw
    assert_log_lines(pair, trace, order_id, edge=("-", "-", "-"), inner=("-", "-", "-"))


def test_pseudonymised_user_is_the_same_on_both_services(tmp_path: Path) -> None:
    with running_pair(tmp_path, shared_env={"O11YKIT_PSEUDONYM_KEY": PSEUDONYM_KEY}) as pair:
        order_id, body, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})
        pseudonym = pseudonymize(PSEUDONYM_KEY, USER)

        assert_identity(trace.spans, {"tenant.id": TENANT, "enduser.pseudo.id": pseudonym})
        assert_linked(pair, trace, order_id)
        for client in CLIENTS:
            assert USER not in (body["inner"][client]["baggage_seen"] or ""), body
        assert USER not in pair.raw()
        expected = (TENANT, "-", pseudonym)
        assert_log_lines(pair, trace, order_id, edge=expected, inner=expected)


def test_baggage_is_not_sent_to_untrusted_hosts(tmp_path: Path) -> None:
    # Only example.internal may receive baggage now; inner at 127.0.0.1 is not trusted.
    edge_env = {"O11YKIT_BAGGAGE_PROPAGATE_TO": "example.internal"}
    with running_pair(tmp_path, edge_env=edge_env) as pair:
        order_id, body, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})

        edge_spans = [s for s in trace.spans if service_of(s) == "edge"]
        inner_spans = [s for s in trace.spans if service_of(s) == "inner"]
        assert_identity(edge_spans, {"tenant.id": TENANT, "enduser.id": USER})
        assert_identity(inner_spans, {})
        for client in CLIENTS:
            assert body["inner"][client]["baggage_seen"] is None, body
        # traceparent is not baggage: the trace still crosses the services.
        assert_linked(pair, trace, order_id)
        assert_log_lines(pair, trace, order_id, edge=(TENANT, USER, "-"), inner=("-", "-", "-"))


def test_b3_carries_the_trace_when_otel_propagators_says_so(tmp_path: Path) -> None:
    """OTEL_PROPAGATORS=b3multi,baggage: X-B3-* headers between the services, no
    traceparent, baggage as before; and a caller's B3 context (a mesh's) is continued."""
    with running_pair(tmp_path, shared_env={"OTEL_PROPAGATORS": "b3multi,baggage"}) as pair:
        order_id, body, trace = order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})
        assert_linked(pair, trace, order_id)
        for client in CLIENTS:
            seen = body["inner"][client]["context_seen"]
            assert seen["traceparent"] is None and seen["x-b3-traceid"] == trace.trace_id, seen
            assert "tenant.id=acme" in body["inner"][client]["baggage_seen"], body

        caller_trace, caller_span = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        b3 = {"X-B3-TraceId": caller_trace, "X-B3-SpanId": caller_span, "X-B3-Sampled": "1"}
        path = f"/orders/{next(_order_ids)}"
        assert get(f"{pair.edge.url}{path}", b3)[0] == 200
        spans = pair.receiver.wait_for_spans(
            lambda spans: any(s["attributes"].get("url.path") == path for s in spans),
            timeout=TRACE_TIMEOUT,
        )
    server = next(
        s for s in spans if s["kind"] == "SERVER" and s["attributes"].get("url.path") == path
    )
    assert (server["trace_id"], server["parent_span_id"]) == (caller_trace, caller_span)


def test_health_checks_leave_no_spans(pair: Pair) -> None:
    probe_tenant = "health-probe-tenant"
    for service in (pair.edge, pair.inner):
        for _ in range(3):
            status, _ = get(f"{service.url}/health", {"X-Tenant-ID": probe_tenant})
            assert status == 200
    # Each service's export queue is first in, first out: once the spans of a request made
    # after the health checks have arrived from both, any health span would have too.
    order(pair, {"X-Tenant-ID": TENANT, "X-User-ID": USER})

    health = [
        describe(s)
        for s in pair.receiver.spans()
        if str(s["attributes"].get("url.path", "")).startswith("/health")
        or s["attributes"].get("http.route") == "/health"
        or "/health" in s["name"]
        or "health_probe" in str(s["attributes"].get("db.query.text", ""))
    ]
    assert not health, health
    raw = pair.raw()
    assert "health_probe" not in raw
    assert probe_tenant not in raw
