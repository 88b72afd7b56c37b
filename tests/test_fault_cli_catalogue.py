"""`o11ykit fault` by catalogue id, without --url, against admin APIs that stand in for a stack.

Each stand-in service is o11ykit's own admin API on a fault engine with the catalogue's
kinds, served on loopback, and a state file names them as `o11ykit app up` writes it: no
database, no seeding, no processes. What the tests check is what the services recorded.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from o11ykit import cli
from o11ykit.faults import AuditLog
from o11ykit.faults.admin import AdminApi
from o11ykit.faults.engine import FaultEngine
from sample_app import dataset, stack
from sample_app.control import StackFaults, _kind_specs

TOKEN = "test-token"
# The services the faults used here live in: null-currency is in catalog and its canary.
SERVICES = ("catalog", "catalog-canary", "orders", "payments")
# The routes a running catalog (and its canary) gives its engine, as enable() reads them.
CATALOG_ROUTES = ("/products", "/products/{product_id}", "/prices", "/health")


@dataclass
class FakeStack:
    data_dir: Path
    engines: dict[str, FaultEngine]
    urls: dict[str, str]

    @property
    def audit_file(self) -> Path:
        return self.data_dir / "fault-audit.jsonl"

    def audit_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.audit_file.read_text().splitlines()]


@pytest.fixture
def fake_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStack]:
    data_dir = tmp_path / "stack"
    data_dir.mkdir()
    engines, urls, servers = {}, {}, []
    kinds, tenants = _kind_specs(), dataset.shop_slugs()
    for name in SERVICES:
        # One audit file for every service, as `app up` gives them.
        audit = AuditLog(data_dir / "fault-audit.jsonl")
        routes = (lambda: CATALOG_ROUTES) if name.startswith("catalog") else None
        engines[name] = FaultEngine(kinds=kinds, tenants=tenants, audit=audit, routes=routes)
        url, server, thread = _serve(AdminApi(engines[name], TOKEN))
        urls[name] = url
        servers.append((server, thread))
    state = {
        "data_dir": str(data_dir),
        "token": TOKEN,
        "services": {name: {"url": url, "port": 0, "pid": None} for name, url in urls.items()},
    }
    (data_dir / stack.STATE_FILE).write_text(json.dumps(state))
    # Found through $O11YKIT_APP_DIR, not from the working directory.
    monkeypatch.setenv("O11YKIT_APP_DIR", str(data_dir))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("USER", "bob")
    try:
        yield FakeStack(data_dir, engines, urls)
    finally:
        for server, _ in servers:
            server.should_exit = True
        for _, thread in servers:
            thread.join(timeout=5)


def _serve(app: AdminApi) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        thread.join(0.01)
    assert server.started, "the stand-in admin API did not start"
    return f"http://127.0.0.1:{port}", server, thread


def fault(*argv: str) -> int:
    return cli.main(["fault", *argv])


def test_audit_without_url_lists_who_did_what_in_each_service(fake_stack, capsys):
    """It printed the faults' status, as `fault status` does."""
    assert fault("inject", "null-currency", "--actor", "alice") == 0
    assert fault("fix", "null-currency", "--actor", "carol") == 0
    capsys.readouterr()

    assert fault("audit") == 0

    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ", 1)[1] for line in lines] == [
        "inject  null-currency  by alice  in catalog",
        "inject  null-currency  by alice  in catalog-canary",
        "fix     null-currency  by carol  in catalog",
        "fix     null-currency  by carol  in catalog-canary",
    ]
    times = [line.split("  ", 1)[0] for line in lines]
    assert times == sorted(times)


def test_the_actor_named_reaches_the_audit_log_and_else_the_generic_default(fake_stack):
    """Faults named by catalogue id were recorded as done by "api", whoever did them."""
    assert fault("inject", "heavy-user", "--actor", "alice") == 0
    assert fault("clear", "heavy-user") == 0  # USER=bob, no --actor

    assert [(e["action"], e["fault"], e["actor"]) for e in fake_stack.audit_lines()] == [
        ("inject", "heavy-user", "alice"),
        ("clear", "heavy-user", "cli:bob"),  # as `o11ykit fault clear --url` records it
    ]


def test_the_stack_is_found_through_data_dir(fake_stack, monkeypatch, capsys):
    """`--data-dir` was an unrecognized argument: a stack started with `app up --data-dir`
    could not be reached."""
    monkeypatch.delenv("O11YKIT_APP_DIR")
    assert fault("inject", "heavy-user", "--data-dir", str(fake_stack.data_dir)) == 0
    assert "injected heavy-user into orders" in capsys.readouterr().out
    assert [f["id"] for f in fake_stack.engines["orders"].faults()] == ["heavy-user"]


@pytest.mark.parametrize("given", ["--data-dir", "O11YKIT_APP_DIR"])
def test_without_a_stack_the_message_names_where_it_looked_and_how_to_point_elsewhere(
    tmp_path, monkeypatch, capsys, given
):
    empty = tmp_path / "no-stack-here"
    argv = ["fault", "inject", "heavy-user"]
    if given == "--data-dir":
        argv += ["--data-dir", str(empty)]
    else:
        monkeypatch.setenv("O11YKIT_APP_DIR", str(empty))

    assert cli.main(argv) == 2

    err = capsys.readouterr().err
    assert f"no sample system runs from {empty} (no {stack.STATE_FILE} there)" in err, err
    assert "--data-dir" in err and "$O11YKIT_APP_DIR" in err and "--url and --token" in err
    assert "Traceback" not in err


def test_clearing_a_fault_nobody_holds_is_refused_as_fixing_it_is(fake_stack, capsys):
    """`clear` said "cleared heavy-user" (exit 0) where `fix` said it is not injected."""
    assert fault("fix", "heavy-user") == 2
    fixing = capsys.readouterr().err
    assert fault("clear", "heavy-user") == 2
    clearing = capsys.readouterr().err
    assert "no fault 'heavy-user' is injected" in fixing
    assert clearing == fixing
    # Every fault, when none is injected: nothing to clear, no mistake.
    assert fault("clear") == 0
    assert capsys.readouterr().out == "nothing to clear\n"
    assert not fake_stack.audit_file.exists()  # nothing recorded as cleared


def test_a_fault_held_by_one_of_its_services_is_still_cleared(fake_stack, capsys):
    assert fault("inject", "null-currency") == 0
    fake_stack.engines["catalog"].clear("null-currency")  # by hand, in one service
    capsys.readouterr()

    assert fault("clear", "null-currency") == 0

    assert capsys.readouterr().out == "cleared null-currency\n"
    assert fake_stack.engines["catalog-canary"].faults() == []


def test_labs_and_drills_may_clear_what_is_gone_already(fake_stack):
    faults = StackFaults(fake_stack.urls, TOKEN)
    assert faults.clear("heavy-user") == []  # nothing was cleared, and that is no error
    faults.inject("heavy-user")
    assert faults.clear("heavy-user") == ["heavy-user"]


def test_a_param_without_a_value_is_refused_as_the_generic_mode_refuses_it(fake_stack, capsys):
    """It said `params.ms: '' is not accepted`, naming neither --param nor its form."""
    assert fault("inject", "slow-provider", "--param", "ms") == 2
    assert capsys.readouterr().err == (
        "o11ykit fault: --param 'ms': accepted: NAME=VALUE, e.g. ms=300\n"
    )
    assert fake_stack.engines["payments"].faults() == []


def test_a_misspelt_route_or_a_version_no_process_runs_is_refused_and_injects_nothing(
    fake_stack, capsys
):
    assert fault("inject", "empty-search", "--route", "/prodcts") == 2
    assert "scope.routes: '/prodcts' matches no route of this service; its routes: /health," in (
        capsys.readouterr().err
    )
    assert fault("inject", "empty-search", "--version", "1.9") == 2
    assert "scope.versions: '1.9' is not a version of catalog, catalog-canary" in (
        capsys.readouterr().err
    )
    assert all(not engine.faults() for engine in fake_stack.engines.values())
    assert fault("inject", "empty-search", "--route", "/products/*", "--version", "1.8.0") == 0
    assert [f["id"] for f in fake_stack.engines["catalog-canary"].faults()] == ["empty-search"]


def test_labs_and_drills_name_themselves_in_the_audit_log(fake_stack):
    from labs import model
    from labs.drills.drill import Drill
    from labs.session import LabSession

    state = json.loads((fake_stack.data_dir / stack.STATE_FILE).read_text())
    LabSession(model.get("failing-tenant"), state).inject()
    Drill({**state, "query_url": "http://127.0.0.1:9"}).faults.inject("heavy-user")
    assert [(e["action"], e["fault"], e["actor"]) for e in fake_stack.audit_lines()] == [
        ("inject", "null-currency", "lab:failing-tenant"),
        ("inject", "null-currency", "lab:failing-tenant"),  # catalog and its canary
        ("inject", "heavy-user", "drill"),
    ]
