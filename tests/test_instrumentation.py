"""Spans as the service's own code produces them, captured with the o11ykit_spans fixture."""

from __future__ import annotations

import io
import logging
import os

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import SpanKind
from sqlalchemy import create_engine, text
from sqlalchemy.pool import StaticPool

import o11ykit
from o11ykit.context import policy
from o11ykit.instrumentation import clients
from o11ykit.privacy import pseudonymize

# Created at import, before any init(): SQL spans must still appear for it.
EARLY_ENGINE = create_engine("sqlite://", poolclass=StaticPool)


def _app(engine, **fastapi_options) -> FastAPI:
    app = FastAPI(**fastapi_options)

    @app.get("/items/{item_id}")
    def item(item_id: int) -> dict:
        logging.getLogger("shop").warning("item %s", item_id)
        with engine.connect() as db:
            return {"value": db.execute(text("SELECT :v AS v"), {"v": item_id}).scalar()}

    @app.get("/health")
    def health() -> dict:
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
        return {}

    o11ykit.instrument_app(app)
    return app


def _by_kind(spans, kind: SpanKind):
    return [s for s in spans if s.kind is kind]


def test_sql_spans_for_engines_created_before_and_after_init(o11ykit_spans) -> None:
    late_engine = create_engine("sqlite://", poolclass=StaticPool)
    tracer = trace.get_tracer("job")
    with o11ykit.context(tenant_id="acme", user_id="u-1"), tracer.start_as_current_span("job"):
        for engine in (EARLY_ENGINE, late_engine):
            with engine.connect() as db:
                db.execute(text("SELECT :secret AS s"), {"secret": "hunter2"})
    sql = _by_kind(o11ykit_spans.spans, SpanKind.CLIENT)
    assert len(sql) == 2
    for span in sql:
        assert span.attributes["tenant.id"] == "acme"
        assert span.attributes["enduser.id"] == "u-1"
        assert span.attributes["db.system.name"] == "sqlite"
        assert "hunter2" not in str(dict(span.attributes))
    # One span per statement: no `connect` span per pool checkout.
    assert {s.name for s in o11ykit_spans.spans} == {"job", "SELECT"}


def test_sql_outside_any_trace_makes_no_root_span(o11ykit_spans) -> None:
    with EARLY_ENGINE.connect() as db:
        db.execute(text("SELECT 1"))
    assert o11ykit_spans.spans == []


@pytest.mark.parametrize(
    "native", [True, False], ids=["fastapi-default", "native-tracing-off-by-the-app"]
)
def test_fastapi_one_server_span_with_identity_and_no_noise(o11ykit_spans, native: bool) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    app = _app(engine, **({} if native else {"telemetry": {"tracing": False}}))
    with TestClient(app) as client:
        response = client.get(
            "/items/7?token=s3cr3t", headers={"X-Tenant-ID": "acme", "X-User-ID": "u-9"}
        )
    assert response.status_code == 200
    spans = o11ykit_spans.spans
    server = _by_kind(spans, SpanKind.SERVER)
    assert len(server) == 1, [s.name for s in spans]
    assert server[0].name == "GET /items/{item_id}"
    assert server[0].attributes["http.route"] == "/items/{item_id}"
    assert server[0].attributes["http.response.status_code"] == 200
    assert len(spans) == 2  # server + SQL: no operation, send or receive spans
    for span in spans:
        assert span.attributes["tenant.id"] == "acme"
        assert span.attributes["enduser.id"] == "u-9"
        assert span.context.trace_id == server[0].context.trace_id
    assert "s3cr3t" not in str([dict(s.attributes) for s in spans])


def test_health_checks_and_their_sql_are_not_traced(o11ykit_spans) -> None:
    app = _app(create_engine("sqlite://", poolclass=StaticPool))
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
    assert o11ykit_spans.spans == []


def test_forged_inbound_baggage_is_ignored_at_the_edge(o11ykit_spans) -> None:
    app = _app(create_engine("sqlite://", poolclass=StaticPool))
    with TestClient(app) as client:
        client.get("/items/1", headers={"baggage": "tenant.id=evil,enduser.id=mallory"})
    for span in o11ykit_spans.spans:
        assert "tenant.id" not in span.attributes and "enduser.id" not in span.attributes


def test_log_records_carry_trace_and_tenant(o11ykit_spans, caplog) -> None:
    app = _app(create_engine("sqlite://", poolclass=StaticPool))
    with caplog.at_level(logging.WARNING, logger="shop"), TestClient(app) as client:
        client.get("/items/3", headers={"X-Tenant-ID": "globex"})
    record = next(r for r in caplog.records if r.name == "shop")
    server = _by_kind(o11ykit_spans.spans, SpanKind.SERVER)[0]
    assert record.trace_id == format(server.context.trace_id, "032x")
    assert getattr(record, "tenant.id") == "globex"
    assert getattr(record, "enduser.id") == "-"  # no user header: present, but empty


def test_pseudonymised_user_ids(o11ykit_spans, monkeypatch) -> None:
    monkeypatch.setattr(policy, "pseudonym_key", "k")
    tracer = trace.get_tracer("t")
    with o11ykit.context(tenant_id="acme", user_id="u-42"), tracer.start_as_current_span("work"):
        pass
    attributes = o11ykit_spans.spans[0].attributes
    assert attributes["enduser.pseudo.id"] == pseudonymize("k", "u-42")
    assert "enduser.id" not in attributes


def test_code_set_attribute_is_not_overwritten_by_context(o11ykit_spans) -> None:
    tracer = trace.get_tracer("t")
    explicit = {"tenant.id": "explicit"}
    with (
        o11ykit.context(tenant_id="from-context"),
        tracer.start_as_current_span("s", attributes=explicit),
    ):
        pass
    assert o11ykit_spans.spans[0].attributes["tenant.id"] == "explicit"


def test_resolver_reads_identity_from_the_request(o11ykit_spans) -> None:
    from o11ykit import TracingMiddleware

    app = FastAPI()

    @app.get("/me")
    def me() -> dict:
        return {}

    def from_claims(request) -> tuple[str, str]:
        tenant, _, user = request.headers["authorization"].removeprefix("Claims ").partition(":")
        return tenant, user

    app.add_middleware(TracingMiddleware, resolver=from_claims)
    with TestClient(app) as client:
        client.get("/me", headers={"authorization": "Claims initech:peter"})
    server = _by_kind(o11ykit_spans.spans, SpanKind.SERVER)[0]
    assert server.attributes["tenant.id"] == "initech"
    assert server.attributes["enduser.id"] == "peter"


def test_logs_under_an_untraced_health_check_carry_no_trace_id(caplog) -> None:
    from opentelemetry import context as otel_context

    from o11ykit.context import UNTRACED
    from o11ykit.instrumentation import logs

    logs.enable()
    token = otel_context.attach(UNTRACED)
    try:
        with caplog.at_level(logging.INFO, logger="health"):
            logging.getLogger("health").info("probe")
    finally:
        otel_context.detach(token)
    assert caplog.records[-1].trace_id == "-"


def test_a_failing_resolver_never_fails_the_request(o11ykit_spans, caplog) -> None:
    from o11ykit import TracingMiddleware

    app = FastAPI()

    @app.get("/me")
    def me() -> dict:
        return {"ok": True}

    def broken(request) -> tuple[str, str]:
        return request.headers["x-missing"], "u"

    app.add_middleware(TracingMiddleware, resolver=broken)
    with caplog.at_level(logging.WARNING, logger="o11ykit"), TestClient(app) as client:
        responses = [client.get("/me") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    server = _by_kind(o11ykit_spans.spans, SpanKind.SERVER)
    assert len(server) == 3 and all("tenant.id" not in s.attributes for s in server)
    assert sum("resolver raised KeyError" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("field", ["trace_id", "span_id", "tenant.id", "enduser.id"])
def test_extra_with_a_correlation_field_wins_and_never_raises(o11ykit_spans, field) -> None:
    logger = logging.getLogger("shop.extra")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(logging.Formatter(f"%({field})s %(tenant.id)s %(message)s"))
    logger.addHandler(handler)
    try:
        with o11ykit.context(tenant_id="acme"), trace.get_tracer("t").start_as_current_span("w"):
            logger.warning("from caller", extra={field: "caller-value"})
            logger.warning("plain")
    finally:
        logger.removeHandler(handler)
    first, second = handler.stream.getvalue().splitlines()
    assert first.startswith("caller-value ") and first.endswith(" from caller")
    assert second.split()[1] == "acme"  # a record without extra is still correlated


def test_a_literal_cut_open_by_the_statement_limit_is_still_removed(o11ykit_spans) -> None:
    engine = create_engine("sqlite://", poolclass=StaticPool)
    padding = ", ".join(f"{index} AS c{index}" for index in range(400))[:2000]
    padding = padding.rpartition(",")[0]
    statement = f"SELECT {padding}, 'hunter2-{'x' * 3000}' AS password_hash"
    assert statement.index("hunter2") < 2048 < len(statement)  # the cut falls in the literal
    with trace.get_tracer("t").start_as_current_span("work"), engine.connect() as db:
        db.execute(text(statement))
    [query] = [s for s in o11ykit_spans.spans if s.kind is SpanKind.CLIENT]
    recorded = query.attributes["db.query.text"]
    assert "hunter2" not in recorded
    assert recorded.startswith("SELECT 0 AS c0") and len(recorded) <= 2048


def test_sqlalchemy_errors_lose_their_parameters_in_events_and_status(o11ykit_spans) -> None:
    from sqlalchemy.exc import IntegrityError

    engine = create_engine("sqlite://", poolclass=StaticPool)
    with engine.begin() as db:
        db.execute(text("CREATE TABLE users (name TEXT UNIQUE, pw TEXT)"))
        db.execute(text("INSERT INTO users VALUES ('alice', 'x')"))
    tracer = trace.get_tracer("t")
    # Set apart from the call: a traceback quotes the source of each frame's call, and from
    # Python 3.13 the whole of a call written over several lines, so values written into it
    # reach exception.stacktrace as source code. What the service's code says is not what
    # this test is about; the parameter values SQLAlchemy puts in its message are.
    form = {"name": "alice", "pw": "hunter2"}
    with (
        pytest.raises(IntegrityError),
        tracer.start_as_current_span("signup"),
        engine.begin() as db,
    ):
        db.execute(text("INSERT INTO users VALUES (:name, :pw) /* via 'signup' */"), form)
    [signup] = o11ykit_spans.named("signup")
    [event] = signup.events
    message = event.attributes["exception.message"]
    assert "[parameters: [REDACTED]]" in message and "UNIQUE constraint failed" in message
    exported = f"{event.attributes} {signup.status.description}"
    assert "hunter2" not in exported and "alice" not in exported


@pytest.mark.parametrize(
    ("instrumentor", "said"),
    [
        (
            ("o11ykit_no_such_instrumentation", "HTTPX2ClientInstrumentor"),
            "skipped: httpx2 is installed but o11ykit_no_such_instrumentation is not"
            " (pip install -U 'o11ykit[httpx2]')",
        ),
        (  # a module that is there, from a release without the instrumentor
            ("json", "HTTPX2ClientInstrumentor"),
            "skipped: the installed json has no HTTPX2ClientInstrumentor"
            " (pip install -U 'o11ykit[httpx2]')",
        ),
    ],
)
def test_a_missing_client_instrumentor_is_named_with_its_fix(monkeypatch, instrumentor, said):
    monkeypatch.setitem(clients._INSTRUMENTORS, "httpx2", instrumentor)
    assert clients.enable("httpx2", TracerProvider()) == said


def test_stable_http_names_are_asked_for_only_while_an_instrumentor_starts(monkeypatch):
    monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
    with clients._stable_http_names():
        assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http"
    assert "OTEL_SEMCONV_STABILITY_OPT_IN" not in os.environ  # the service's env as it was

    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http/dup")  # the service's choice
    with clients._stable_http_names():
        assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http/dup"
    assert os.environ["OTEL_SEMCONV_STABILITY_OPT_IN"] == "http/dup"
