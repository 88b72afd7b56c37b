"""enable(app) in one process: the production guard, where the middleware sits, what spans show.

Requests go through Starlette's TestClient; spans are captured with the o11ykit_spans
fixture, as the backend would receive them.
"""

from __future__ import annotations

import json
import logging
import time

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from opentelemetry.trace import SpanKind, StatusCode
from sqlalchemy import create_engine, text
from sqlalchemy.exc import TimeoutError as PoolTimeout

import o11ykit
import o11ykit.faults
from o11ykit.config import ConfigError, load_settings
from o11ykit.faults import KindSpec
from o11ykit.faults.install import MARK
from o11ykit.faults.middleware import FaultMiddleware
from o11ykit.faults.pool import PoolHolder
from o11ykit.instrumentation.asgi import TracingMiddleware

# serial: a slowed request is told from the others by its duration.
pytestmark = pytest.mark.serial

TOKEN = "test-token-3141"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STAGING = load_settings({"environment": "staging"}, environ={})
LATENCY_S = 0.3


@pytest.fixture(autouse=True)
def _traced(o11ykit_spans):
    """Every app here is wired to o11ykit's in-process handle (backend none), never to an
    exporter the environment might configure, whichever test runs first."""
    return o11ykit_spans


def shop() -> FastAPI:
    app = FastAPI()

    @app.get("/api/orders")
    def orders() -> dict:
        return {"orders": []}

    @app.get("/api/products/{sku}")
    def product(sku: str) -> dict:
        return {"sku": sku}

    @app.get("/api/bug")
    def bug() -> dict:
        raise RuntimeError("internal error")

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    return app


def enabled_shop(
    order: str = "init-first", **options
) -> tuple[FastAPI, o11ykit.faults.FaultEngine]:
    app = shop()
    if order == "init-first":
        o11ykit.instrument_app(app)
    options.setdefault("token", TOKEN)
    engine = o11ykit.faults.enable(app, enabled=True, settings=STAGING, **options)
    if order == "enable-first":
        o11ykit.instrument_app(app)
    assert engine is not None
    return app, engine


def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def servers(spans) -> list:
    return [s for s in spans if s.kind is SpanKind.SERVER]


def seconds(span) -> float:
    return (span.end_time - span.start_time) / 1e9


def span_text(span) -> str:
    """Everything a backend would show of a span, as one string."""
    return json.dumps(
        {
            "name": span.name,
            "attributes": dict(span.attributes),
            "events": [(e.name, dict(e.attributes)) for e in span.events],
            "status": [str(span.status.status_code), span.status.description],
            "resource": dict(span.resource.attributes),
            "scope": span.instrumentation_scope.name if span.instrumentation_scope else None,
        },
        default=str,
    )


# -- the guard ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environment",
    ["production", "Production", "PROD", " prod ", "production-eu", "us_prd", "eu.prod.2"],
)
def test_asking_for_faults_in_production_in_code_raises(environment):
    app = shop()
    settings = load_settings({"environment": environment}, environ={})
    with pytest.raises(ConfigError, match="refused in production"):
        o11ykit.faults.enable(app, enabled=True, settings=settings)
    assert app.user_middleware == [] and not hasattr(app, MARK)


@pytest.mark.parametrize("environment", ["staging", "preprod", "nonprod", "dev", "producer"])
def test_names_that_only_contain_prod_are_not_production(environment):
    settings = load_settings({"environment": environment}, environ={})
    assert o11ykit.faults.enable(shop(), enabled=True, settings=settings) is not None


def test_the_faults_setting_in_production_warns_once_and_stays_off(caplog):
    app = shop()
    settings = load_settings(
        environ={
            "O11YKIT_FAULTS": "true",
            "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod",
        }
    )
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        assert o11ykit.faults.enable(app, settings=settings) is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "refused in production" in warnings[0].getMessage()
    assert app.user_middleware == []


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=production,oops"},
        # Named, but empty: deployment.environment (the older key) must not vouch for it.
        {
            "OTEL_RESOURCE_ATTRIBUTES": (
                "deployment.environment.name=,deployment.environment=staging"
            )
        },
    ],
    ids=["malformed", "empty"],
)
def test_an_environment_that_cannot_be_read_is_not_taken_for_development(environ, caplog):
    settings = load_settings(environ={"O11YKIT_FAULTS": "true", **environ})
    app = shop()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        assert o11ykit.faults.enable(app, settings=settings) is None
    assert app.user_middleware == []
    assert "could not be read, so nothing says this is not production" in caplog.text
    with pytest.raises(ConfigError, match="could not be read"):
        o11ykit.faults.enable(shop(), enabled=True, settings=settings)


def test_production_given_in_resource_attributes_is_refused():
    settings = load_settings(
        environ={
            "O11YKIT_FAULTS": "true",
            "O11YKIT_RESOURCE_ATTRIBUTES": "deployment.environment=prod",
        }
    )
    assert o11ykit.faults.enable(shop(), settings=settings) is None


@pytest.mark.parametrize("environ", [{}, {"O11YKIT_FAULTS": "false"}, {"O11YKIT_FAULTS": "0"}])
def test_off_unless_asked(environ, caplog):
    app = shop()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        assert o11ykit.faults.enable(app, settings=load_settings(environ=environ)) is None
    assert app.user_middleware == [] and not caplog.records


def test_the_setting_turns_it_on_outside_production_and_an_argument_overrides_it():
    settings = load_settings(environ={"O11YKIT_FAULTS": "true", "O11YKIT_ENVIRONMENT": "staging"})
    assert o11ykit.faults.enable(shop(), enabled=False, settings=settings) is None
    app = shop()
    engine = o11ykit.faults.enable(app, settings=settings)
    assert engine is not None and o11ykit.faults.current_engine() is engine
    assert o11ykit.faults.enable(app, settings=settings) is engine  # once per app


def test_from_the_real_environment_in_production_one_warning_and_nothing(python_snippet):
    result = python_snippet(
        """
        from fastapi import FastAPI
        import o11ykit, o11ykit.faults
        app = FastAPI()
        o11ykit.init("svc", "none", app=app)
        print(o11ykit.faults.enable(app), len(app.user_middleware))
        """,
        env={"O11YKIT_FAULTS": "true", "O11YKIT_ENVIRONMENT": "production"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "1"]  # only o11ykit's tracing middleware
    assert result.stderr.count("refused in production") == 1, result.stderr


def test_enabled_before_init_declares_production_it_turns_itself_off_on_first_use(
    python_snippet,
):
    result = python_snippet(
        """
        from fastapi import FastAPI
        from fastapi.testclient import TestClient
        import o11ykit, o11ykit.faults
        app = FastAPI()

        @app.get("/hello")
        def hello():
            return {"ok": True}

        engine = o11ykit.faults.enable(app)  # before init(): from the environment, no handle
        engine.inject({"id": "early", "kind": "error"})
        o11ykit.init("svc", "none", app=app, environment="production")
        client = TestClient(app)
        auth = {"Authorization": "Bearer t"}
        injected = client.post("/_o11ykit/faults", json={"id": "x", "kind": "error"}, headers=auth)
        print(injected.status_code, "refused in production" in injected.json()["error"])
        print(client.get("/hello").status_code, client.get("/hello").status_code)
        print(client.get("/_o11ykit/faults", headers=auth).status_code, engine.faults())
        """,
        env={"O11YKIT_FAULTS": "true", "O11YKIT_FAULTS_TOKEN": "t"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == ["403 True", "200 200", "403 []"], result.stdout
    assert result.stderr.count("refused in production") == 1, result.stderr


def test_custom_kinds_with_routes_match_the_path_of_the_request_asking():
    app = shop()
    answers: list[bool] = []

    @app.get("/api/history")
    def history() -> dict:  # sync: asked from the threadpool, as most service code is
        answers.append(engine.broken("n_plus_one") is not None)
        return {}

    @app.get("/api/search")
    async def search() -> dict:
        answers.append(engine.broken("n_plus_one") is not None)
        return {}

    engine = o11ykit.faults.enable(
        app, enabled=True, settings=STAGING, kinds={"n_plus_one": KindSpec("n_plus_one")}
    )
    engine.inject({"id": "n1", "kind": "n_plus_one", "scope": {"routes": ["/api/history"]}})
    with client(app) as http:
        for path in ("/api/history", "/api/search", "/api/history"):
            assert http.get(path).status_code == 200
    assert answers == [True, False, True]
    assert engine.broken("n_plus_one") is None  # outside a request: no route, no match


def test_a_scope_route_matching_no_route_of_the_app_is_refused_and_changes_nothing():
    app, engine = enabled_shop()
    engine.inject({"id": "slow", "kind": "latency", "scope": {"routes": ["/api/products/42"]}})
    for route in ("/api/order", "/api/products/42/reviews", "/api/prod*"):
        with pytest.raises(o11ykit.faults.FaultSpecError) as refused:
            engine.inject({"id": "typo", "kind": "latency", "scope": {"routes": [route]}})
        assert str(refused.value) == (
            f"scope.routes: {route!r} matches no route of this service; its routes: "
            "/api/bug, /api/orders, /api/products/{sku}, /docs, /docs/oauth2-redirect, /health,"
            " /openapi.json, /redoc"
        )
    assert [f["id"] for f in engine.faults()] == ["slow"]
    # Over the admin API: a 400 naming the routes, as any other refused scope.
    with client(app) as http:
        answer = http.post(
            "/_o11ykit/faults",
            headers=AUTH,
            json={"id": "typo", "kind": "latency", "scope": {"routes": ["/api/ordrs"]}},
        )
    assert answer.status_code == 400
    assert "its routes: /api/bug, /api/orders" in answer.json()["error"]
    # Routes added after enable() count: they are read at injection.
    app.get("/api/late")(lambda: {})
    engine.inject({"id": "late", "kind": "latency", "scope": {"routes": ["/api/late"]}})
    # Prefixes, parameters and globs that do match some route are taken as before.
    for route in ("/api", "/api/products", "/api/products/*", "/api/*/42", "/api/**", "/"):
        engine.inject({"id": "ok", "kind": "latency", "scope": {"routes": [route]}})


# -- where the middleware sits ---------------------------------------------------------------


@pytest.mark.parametrize("order", ["init-first", "enable-first"])
def test_faults_act_inside_the_requests_server_span_in_either_order(order, o11ykit_spans):
    app, engine = enabled_shop(order)
    classes = [m.cls for m in app.user_middleware]
    assert classes.index(TracingMiddleware) < classes.index(FaultMiddleware)
    engine.inject(
        {
            "id": "slow-acme",
            "kind": "latency",
            "params": {"ms": int(LATENCY_S * 1000)},
            "scope": {"tenants": ["acme"], "routes": ["/api/orders"]},
        }
    )
    with client(app) as http:
        assert http.get("/api/orders", headers={"X-Tenant-ID": "acme"}).status_code == 200
        assert http.get("/api/orders", headers={"X-Tenant-ID": "globex"}).status_code == 200
        assert http.get("/api/products/1", headers={"X-Tenant-ID": "acme"}).status_code == 200
        engine.inject({"id": "down", "kind": "error", "params": {"status": 503}})
        assert http.get("/api/orders", headers={"X-Tenant-ID": "acme"}).status_code == 503
    slow, other_tenant, other_route, failed = servers(o11ykit_spans.spans)
    assert slow.attributes["tenant.id"] == "acme" and seconds(slow) >= LATENCY_S
    assert seconds(other_tenant) < LATENCY_S and seconds(other_route) < LATENCY_S
    assert failed.attributes["http.response.status_code"] == 503
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.name == "GET /api/orders" and failed.attributes["http.route"] == "/api/orders"


def test_enable_after_the_app_started_serving_is_refused():
    app = shop()
    o11ykit.instrument_app(app)
    with client(app) as http:
        http.get("/api/orders")
    with pytest.raises(RuntimeError, match="before the app serves requests"):
        o11ykit.faults.enable(app, enabled=True, settings=STAGING)


# -- what the telemetry shows ----------------------------------------------------------------


def test_no_span_names_the_fault_and_an_exception_looks_like_any_bug(o11ykit_spans):
    app, _ = enabled_shop()
    headers = {"X-Tenant-ID": "acme", "X-User-ID": "u-1", **AUTH}
    with client(app) as http:
        assert http.get("/api/bug", headers=headers).status_code == 500
        for spec in (
            {"id": "zz-latency-7", "kind": "latency", "params": {"ms": 20}},
            {"id": "zz-exception-7", "kind": "exception", "scope": {"routes": ["/api/orders"]}},
            {"id": "zz-error-7", "kind": "error", "scope": {"routes": ["/api/products/*"]}},
        ):
            assert http.post("/_o11ykit/faults", json=spec, headers=headers).status_code == 201
        assert http.get("/api/orders", headers=headers).status_code == 500
        assert http.get("/api/products/9", headers=headers).status_code == 500
        assert (
            http.post("/_o11ykit/faults/zz-error-7/fix", json={}, headers=headers).status_code
            == 200
        )
        assert http.get("/api/products/9", headers=headers).status_code == 200
        assert http.get("/_o11ykit/faults/audit", headers=headers).status_code == 200
        assert http.delete("/_o11ykit/faults", headers=headers).status_code == 200
    spans = o11ykit_spans.spans
    assert [s.attributes["url.path"] for s in servers(spans)] == [
        "/api/bug",
        "/api/orders",
        "/api/products/9",
        "/api/products/9",
    ]
    for span in spans:
        shown = span_text(span).lower()
        assert "fault" not in shown and "zz-" not in shown, shown
        assert "/_o11ykit" not in shown, shown
    bug, injected = servers(spans)[:2]
    assert set(injected.attributes) == set(bug.attributes)
    assert injected.attributes["error.type"] == bug.attributes["error.type"] == "RuntimeError"
    assert injected.status.status_code is bug.status.status_code is StatusCode.ERROR
    assert list(injected.events) == list(bug.events)
    assert injected.name == "GET /api/orders"


# -- the admin API in process -----------------------------------------------------------------


def test_without_a_token_the_admin_api_does_not_exist_and_faults_do_not_touch_it():
    app, engine = enabled_shop(token=None)
    engine.inject({"id": "down", "kind": "error"})
    with client(app) as http:
        assert http.get("/_o11ykit/faults", headers=AUTH).status_code == 404
        assert http.get("/api/orders").status_code == 500


def test_the_admin_api_and_health_checks_answer_even_when_every_request_fails():
    app, engine = enabled_shop()
    engine.inject({"id": "down", "kind": "exception"})
    engine.inject({"id": "hang", "kind": "timeout", "params": {"after_s": 30}})
    with client(app) as http:
        listed = http.get("/_o11ykit/faults", headers=AUTH)
        assert listed.status_code == 200
        assert [f["id"] for f in listed.json()["faults"]] == ["down", "hang"]
        assert set(listed.json()["kinds"]) == set(o11ykit.faults.GENERIC_KINDS)
        assert "unavailable" in listed.json()["kinds"]["pool_hold"]  # no sqlalchemy_engine
        # Untraced, so undiagnosable; failing, they would only get the service restarted.
        assert http.get("/health").status_code == 200
        assert http.delete("/_o11ykit/faults", headers=AUTH).json() == {"cleared": ["down", "hang"]}
        assert http.get("/api/orders").status_code == 200


def test_the_admin_api_refuses_and_explains():
    app, engine = enabled_shop()
    with client(app) as http:
        assert http.get("/_o11ykit/faults").status_code == 401
        wrong = http.get("/_o11ykit/faults", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401 and wrong.headers["WWW-Authenticate"] == "Bearer"
        assert http.get("/_o11ykit/faults", headers={"Authorization": TOKEN}).status_code == 401
        bad_json = http.post("/_o11ykit/faults", content=b"{", headers=AUTH)
        assert bad_json.status_code == 400 and "not JSON" in bad_json.json()["error"]
        bad_kind = http.post("/_o11ykit/faults", json={"id": "a", "kind": "nope"}, headers=AUTH)
        assert bad_kind.status_code == 400
        assert "kind: unknown kind 'nope'; accepted: latency" in bad_kind.json()["error"]
        missing = http.post("/_o11ykit/faults/ghost/fix", json={"fixed": True}, headers=AUTH)
        assert missing.status_code == 404 and "no fault 'ghost'" in missing.json()["error"]
        assert http.delete("/_o11ykit/faults/ghost", headers=AUTH).status_code == 404
        assert http.get("/_o11ykit/faults/ghost", headers=AUTH).status_code == 404
        assert http.put("/_o11ykit/faults", headers=AUTH).status_code == 405
        engine.inject({"id": "a", "kind": "latency", "params": {"ms": 1}})
        not_bool = http.post("/_o11ykit/faults/a/fix", json={"fixed": "yes"}, headers=AUTH)
        assert not_bool.status_code == 400
        actor = {**AUTH, "X-O11ykit-Actor": "dana"}
        undo = http.post("/_o11ykit/faults/a/fix", json={"fixed": False}, headers=actor)
        assert undo.status_code == 200 and undo.json()["fixed"] is False
        assert http.get("/_o11ykit/faults/a", headers=AUTH).json()["id"] == "a"
    assert [(e["action"], e["actor"]) for e in engine.audit.entries()] == [
        ("inject", "api"),
        ("unfix", "dana"),
    ]
    assert len(engine.faults()) == 1


# -- pool_hold's mechanism --------------------------------------------------------------------


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_the_pool_holder_exhausts_a_real_pool_and_gives_back(tmp_path):
    db = create_engine(
        f"sqlite:///{tmp_path / 'pool.db'}", pool_size=2, max_overflow=0, pool_timeout=0.2
    )
    holder = PoolHolder(db)
    holder.hold("leak", 2, 0.3)
    assert db.pool.checkedout() == 2 and holder.held == 2
    with pytest.raises(PoolTimeout):
        db.connect()
    assert wait_for(lambda: db.pool.checkedout() == 0), "held connections never came back"
    with db.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
    # Held long, released at once when the fault is cleared (or fixed).
    holder.hold("leak", 1, 60)
    holder.hold("other", 1, 60)
    holder.on_change("inject", ["leak"])
    assert db.pool.checkedout() == 2
    holder.on_change("clear", ["leak"])
    assert db.pool.checkedout() == 1
    holder.on_change("fix", ["other"])
    assert db.pool.checkedout() == 0 and holder.held == 0
    # A request that finds the pool exhausted fails like the leaking code would.
    holder.hold("leak", 2, 60)
    with pytest.raises(PoolTimeout):
        holder.hold("leak", 1, 60)
    assert holder.release() == 2 and db.pool.checkedout() == 0
    db.dispose()
