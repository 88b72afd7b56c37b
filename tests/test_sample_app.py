"""The sample system as users run it: real processes on loopback, tenant and user on every
span of every service, guarded fault control, and `o11ykit app` leaving nothing behind."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from o11ykit.backends.jaeger_query import JaegerQuery
from o11ykit.faults import FaultSpecError
from o11ykit.store.server import StoreServer
from sample_app import stack as stack_module
from sample_app import topology
from sample_app.control import Overrides, StackFaults
from sample_app.stack import Stack, StackConfig, running
from tests.support.sample_stack import o11ykit_command as _o11ykit
from tests.support.sample_stack import processes_of as _processes_of
from tests.support.sample_stack import seeded_copy
from tests.support.sample_stack import wait_gone as _wait_gone

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def stack(seeded_template, tmp_path_factory) -> Iterator[Stack]:
    directory = seeded_copy(seeded_template, tmp_path_factory.mktemp("app"))
    with running(StackConfig(data_dir=directory, free_ports=True)) as started:
        yield started


def _trace(query: JaegerQuery, trace_id: str, services: int) -> object:
    deadline, found = time.monotonic() + 20, None
    while time.monotonic() < deadline:
        found = query.get_trace(trace_id)
        if found is not None and len({s.service for s in found.spans}) >= services:
            return found
        time.sleep(0.2)
    seen = sorted({(s.service, s.name) for s in found.spans}) if found else None
    raise AssertionError(
        f"trace {trace_id} did not reach the store with {services} services: {seen}"
    )


def _checkout(stack: Stack, trace_id: str) -> int:
    """POST a checkout for globex's customer c00042 in trace `trace_id`; the status."""
    headers = {
        "X-Tenant-ID": "globex",
        "X-User-ID": "globex-c00042",
        "traceparent": f"00-{trace_id}-{os.urandom(8).hex()}-01",
    }
    items = {"items": [{"product_id": 1401, "quantity": 1}]}
    # urllib, not httpx: earlier tests in this process may have instrumented httpx, and its
    # instrumentation would replace our traceparent with one of its own.
    request = urllib.request.Request(
        f"{stack.gateway_url}/api/checkout",
        data=json.dumps(items).encode(),
        method="POST",
        headers={**headers, "Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        return opener.open(request, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_tenant_and_user_reach_every_span_of_every_service(stack: Stack):
    # Payments declines 3% of charges (by a hash of the order reference), and a declined
    # order is never written, so orders has no SQL span then: try again, on a new trace.
    for _ in range(5):
        trace_id = os.urandom(16).hex()
        status = _checkout(stack, trace_id)
        if status != 402:
            break
    assert status == 201
    trace = _trace(JaegerQuery(stack.query_url), trace_id, 4)
    assert {s.service for s in trace.spans} == {"gateway", "orders", "catalog", "payments"}
    assert {s.attributes.get("tenant.id") for s in trace.spans} == {"globex"}
    assert {s.attributes.get("enduser.id") for s in trace.spans} == {"globex-c00042"}
    sql = [s for s in trace.spans if "db.system.name" in s.attributes]
    assert {s.service for s in sql} == {"catalog", "orders"}
    versions = {s.service: s.resource.get("service.version") for s in trace.spans}
    assert versions == {
        "gateway": "1.4.2",
        "orders": "2.3.0",
        "catalog": "1.7.3",
        "payments": "0.9.1",
    }


def test_the_stacks_store_keeps_a_bounded_number_of_spans(stack: Stack):
    # The store's eviction itself is tested with the store; here, that the stack asks for it.
    command = stack.store.process.args
    assert command[command.index("--max-spans") + 1] == str(stack_module.STORE_MAX_SPANS)


def test_the_edge_refuses_requests_it_cannot_attribute(stack: Stack):
    gateway = stack.gateway_url
    assert httpx.get(f"{gateway}/api/products/1").status_code == 400
    assert (
        httpx.get(f"{gateway}/api/products/1", headers={"X-Tenant-ID": "nope"}).status_code == 404
    )
    staff_only = httpx.get(
        f"{gateway}/api/staff/sales", headers={"X-Tenant-ID": "acme", "X-User-ID": "acme-c00001"}
    )
    assert staff_only.status_code == 403


def test_a_bad_fault_spec_is_refused_and_changes_nothing(stack: Stack):
    faults = StackFaults.from_state(stack.state())
    with pytest.raises(KeyError, match="the catalogue has"):
        faults.inject("no-such-fault")
    with pytest.raises(FaultSpecError, match="unknown tenant"):
        faults.inject("null-currency", Overrides(tenants=["nope"]))
    with pytest.raises(FaultSpecError, match="percent"):
        faults.inject("bad-canary", Overrides(percent=101))
    assert all(not held for held in faults.status().values())
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "o11ykit.cli",
            "fault",
            "inject",
            "null-currency",
            "--percent",
            "250",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env={**os.environ, "O11YKIT_APP_DIR": str(stack.data_dir)},
        timeout=30,
    )
    assert cli.returncode == 2 and "0 to 100" in cli.stderr
    assert all(not held for held in faults.status().values())


def test_a_fault_leaves_no_label_in_the_telemetry(stack: Stack):
    faults = StackFaults.from_state(stack.state())
    start = datetime.now(timezone.utc)
    faults.inject("null-currency")
    try:
        headers = {"X-Tenant-ID": "globex", "X-User-ID": "globex-c00001"}
        for product in range(1401, 1431):
            httpx.get(f"{stack.gateway_url}/api/products/{product}", headers=headers)
        time.sleep(1.0)
        query = JaegerQuery(stack.query_url)
        end = datetime.now(timezone.utc) + timedelta(seconds=1)
        traces = [
            t
            for service in ("gateway", "catalog")
            for t in query.find_traces(service, start=start, end=end, search_depth=100)
        ]
        assert any(t.errors for t in traces), "the fault did not fail any request"
        text = json.dumps(
            [
                [s.name, s.attributes, s.resource, [e.name for e in s.events]]
                for t in traces
                for s in t.spans
            ],
            default=str,
        ).lower()
        for word in ("null-currency", "null_currency", "fault", "inject"):
            assert word not in text
        operations = {o.name for service in query.services() for o in query.operations(service)}
        assert not any("_o11ykit" in name for name in operations)
    finally:
        faults.clear("null-currency")


# ---- `o11ykit app` as a learner runs it ------------------------------------------------------


def test_up_status_down_leaves_no_process_behind(seeded_template, tmp_path):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    # A temporary directory of its own: the other test worker's stores come and go in the
    # shared one (one was once counted as this test's leftover).
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    env = {"TMPDIR": str(temporary), "USER": "dana"}
    up = _o11ykit(
        "app", "up", "--free-ports", "--fault", "empty-search", data_dir=data_dir, env=env
    )
    try:
        assert up.returncode == 0, up.stderr
        assert "the sample system is up" in up.stdout
        state_file = data_dir / stack_module.STATE_FILE
        assert state_file.stat().st_mode & 0o777 == 0o600  # it holds the fault token
        status = _o11ykit("app", "status", data_dir=data_dir, env=env)
        assert status.returncode == 0 and status.stdout.count("healthy") == 5, status.stdout
        assert status.stdout.count("empty-search") == 2  # set at start, in catalog and canary
        audit = _o11ykit("fault", "audit", data_dir=data_dir, env=env)
        assert audit.stdout.count("cli:dana") == 2, audit.stdout  # who ran `app up --fault`
        # Where `o11ykit traces --url` must go when the store listens on free ports.
        query_url = json.loads(state_file.read_text())["query_url"]
        assert f"trace store     {query_url}" in status.stdout
    finally:
        down = _o11ykit("app", "down", data_dir=data_dir, env=env)
    assert down.returncode == 0 and "store" in down.stdout
    assert _wait_gone(data_dir) == []
    assert not state_file.exists()
    # Nor a file: the store logged beside the services, and its start left nothing in /tmp.
    assert "o11ykit store: stopped" in (data_dir / "logs" / "store.log").read_text()
    assert list(temporary.iterdir()) == []


def test_the_stack_starts_from_a_process_running_grpc(seeded_template, tmp_path):
    # With gRPC's threads in the starting process, each service's fork once aborted
    # (SIGABRT, an empty log) in the preexec_fn it ran before exec: sample_app/with_parent.py.
    with StoreServer(tmp_path / "store", http_port=0, grpc_port=0, query_port=0) as store:
        assert store.grpc_port  # its server's threads are running
        data_dir = seeded_copy(seeded_template, tmp_path / "d")
        with running(StackConfig(data_dir=data_dir, free_ports=True)) as started:
            assert httpx.get(f"{started.gateway_url}/health").status_code == 200
    assert _wait_gone(data_dir) == []


def _occupy_gateway_port(sock: socket.socket) -> int:
    """Listen on a port for the gateway whose offset leaves every other port of the stack
    free, so the start can only fail on this one. Below the ephemeral range (32768 and up
    on Linux), where a client connection elsewhere in the suite could take the store's
    moved port between this check and the start."""
    for port in range(10_000, 24_000, 7):
        offset = port - 8080
        others = [s.port + offset for s in topology.SERVICES if s.name != "gateway"]
        others += [default + offset for default in StackConfig.store_ports]
        if all(stack_module.port_is_free(other) for other in others):
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            sock.listen()
            return port
    raise AssertionError("no offset with the gateway's port alone taken")


def test_a_port_is_free_once_only_time_wait_connections_hold_it():
    # A connection whose server side closed first lingers in TIME_WAIT on the server's port
    # (or on an ephemeral port a client used), where uvicorn and the store, which set
    # SO_REUSEADDR, can listen at once.
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not stack_module.port_is_free(port)  # listening: taken
        with socket.create_connection(("127.0.0.1", port)):
            accepted, _ = server.accept()
            accepted.close()  # the server's side closes first: its end enters TIME_WAIT
    assert stack_module.port_is_free(port)


def test_a_port_in_use_fails_the_start_and_leaves_nothing(seeded_template, tmp_path):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    with socket.socket() as taken:
        port = _occupy_gateway_port(taken)
        up = _o11ykit("app", "up", "--port-offset", str(port - 8080), data_dir=data_dir)
    assert up.returncode == 1
    assert f"port {port} for gateway is in use" in up.stderr
    too_far = _o11ykit("app", "up", "--port-offset", "60000", data_dir=data_dir)
    assert too_far.returncode == 2 and "--port-offset 60000" in too_far.stderr
    assert _wait_gone(data_dir) == []


def test_a_service_that_cannot_start_stops_the_others(seeded_template, tmp_path):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    up = _o11ykit(
        "app",
        "up",
        "--free-ports",
        "--database-url",
        "postgresql+psycopg://nobody@127.0.0.1:1/none",
        data_dir=data_dir,
    )
    assert up.returncode == 1
    assert "o11ykit app up:" in up.stderr
    assert _wait_gone(data_dir) == []


def test_ctrl_c_in_the_foreground_stops_everything(seeded_template, tmp_path):
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    env = {**os.environ, "O11YKIT_APP_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "o11ykit.cli", "app", "up", "--free-ports", "--foreground"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (data_dir / stack_module.STATE_FILE).exists():
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.1)
        assert len(_processes_of(data_dir)) >= 6
        process.send_signal(signal.SIGINT)
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert _wait_gone(data_dir) == []


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_up_starts_stops_what_was_started(seeded_template, tmp_path, signal_number):
    """A detached stack's processes run in sessions of their own: killed during start-up,
    before the state file, `up` left them running where `down` could not find them."""
    data_dir = seeded_copy(seeded_template, tmp_path / "d")
    env = {**os.environ, "O11YKIT_APP_DIR": str(data_dir)}
    process = subprocess.Popen(
        [sys.executable, "-m", "o11ykit.cli", "app", "up", "--free-ports"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    first_service_log = data_dir / "logs" / f"{topology.SERVICES[0].name}.log"
    try:
        deadline = time.monotonic() + 60
        while not first_service_log.exists():  # the store is up and a service spawned
            assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
            time.sleep(0.05)
        process.send_signal(signal_number)
        assert process.wait(30) == 130, process.stdout.read()
        assert "everything started was stopped" in process.stdout.read()
        assert _wait_gone(data_dir) == []
    finally:
        if process.poll() is None:
            process.kill()
        for pid in _processes_of(data_dir):  # what the failure left behind, if it failed
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_a_stop_signal_caught_inside_an_exec_does_not_end_the_process_by_sigint(
    python_snippet, signal_name
):
    """CPython kills itself with SIGINT at exit once a KeyboardInterrupt has left an exec()
    of a string, caught or not; dataclasses exec their methods while modules load, and a
    signal landing there made `up` exit -2 instead of 130 (a CI run did)."""
    result = python_snippet(
        f"""
        import os, signal
        from sample_app import cli

        with cli._stop_signals_interrupt():
            try:
                exec("os.kill(os.getpid(), signal.{signal_name})\\nimport time\\ntime.sleep(5)")
            except KeyboardInterrupt:
                print("stopped")
        """
    )  # ends without sys.exit(): -c exits at once on SystemExit, as `python -m` does not
    assert (result.returncode, result.stdout) == (0, "stopped\n"), result.stderr


def test_a_signal_the_caller_ignores_stays_ignored_while_up_starts(python_snippet):
    # nohup ignores SIGHUP, a shell's background job SIGINT: `up` must not stop on them.
    result = python_snippet(
        """
        import os, signal, time
        from sample_app import cli

        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        with cli._stop_signals_interrupt():
            os.kill(os.getpid(), signal.SIGHUP)
            time.sleep(0.2)
            print("started")
        print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN)
        """
    )
    assert (result.returncode, result.stdout) == (0, "started\nTrue\n"), result.stderr


def test_a_second_signal_does_not_cut_the_foreground_stacks_stopping_short(python_snippet):
    result = python_snippet(
        """
        import os, signal, threading, time, types
        from sample_app import cli

        class Running:  # one service that runs until stopped
            process = types.SimpleNamespace(poll=lambda: None)
            services = {"x": types.SimpleNamespace(process=process)}

            def stop(self):
                os.kill(os.getpid(), signal.SIGINT)  # an impatient second Ctrl-C
                time.sleep(0.2)
                print("stopped everything")

        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        print("returned", cli._stay_attached(Running()))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["stopped everything", "returned 0"], result.stdout


def test_an_unknown_fault_is_refused_before_anything_starts(tmp_path, capsys):
    from o11ykit import cli

    data_dir = tmp_path / "d"
    with pytest.raises(SystemExit) as exited:
        cli.main(["app", "up", "--free-ports", "--data-dir", str(data_dir), "--fault", "n-plus-2"])
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "argument --fault: unknown fault 'n-plus-2'; the catalogue has: null-currency," in err
    assert not data_dir.exists()  # nothing seeded, nothing started


@pytest.mark.parametrize("url", ["mysql://x", "postgres://bob:pw@db/shop", "sqlite:///x.db"])
def test_a_database_url_not_for_postgres_is_refused_not_ignored(url, tmp_path, capsys):
    """Such a URL was ignored: the services ran on SQLite files unknown to whoever set it."""
    from o11ykit import cli
    from sample_app import db

    with pytest.raises(ValueError, match=re.escape("accepted: postgresql://... or postgresql+")):
        db.is_postgres(url)
    assert db.is_postgres("postgresql+psycopg://bob:pw@db/shop") and not db.is_postgres(None)
    data_dir = tmp_path / "d"
    command = ["app", "up", "--free-ports", "--data-dir", str(data_dir), "--database-url", url]
    with pytest.raises(SystemExit) as exited:
        cli.main(command)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "error: argument --database-url: database URL " in err and "pw" not in err, err
    assert not data_dir.exists()  # nothing seeded, nothing started
    # From the environment, as DATABASE_URL, and to the seeding command alike.
    seeding = subprocess.run(
        [sys.executable, "-m", "sample_app.seed", "--data-dir", str(data_dir)],
        cwd=REPO,
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert seeding.returncode == 2 and "Traceback" not in seeding.stderr, seeding.stderr
    assert "argument --database-url: database URL " in seeding.stderr
    assert not data_dir.exists()


def test_free_ports_are_never_one_port_for_two_services(monkeypatch, tmp_path):
    # The system may hand the same free port to consecutive askers: nobody listens on it yet.
    handed_out = iter([41001, 41001, 41002, 41001, 41003, 41004, 41005])
    monkeypatch.setattr(stack_module, "free_port", lambda: next(handed_out))
    monkeypatch.setattr(stack_module, "port_is_free", lambda port: True)

    ports = Stack(StackConfig(data_dir=tmp_path, free_ports=True))._ports()

    assert sorted(ports.values()) == [41001, 41002, 41003, 41004, 41005]


def test_one_port_given_to_two_services_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(stack_module, "port_is_free", lambda port: True)
    config = StackConfig(data_dir=tmp_path, ports={"catalog": 41001, "orders": 41001})

    with pytest.raises(stack_module.StackError, match="port 41001 is given to catalog and orders"):
        Stack(config)._ports()


@pytest.mark.parametrize("command", ["up", "down", "status", "traffic"])
def test_a_data_dir_that_is_a_file_is_one_line_not_a_traceback(tmp_path, command):
    not_a_directory = tmp_path / "notes.txt"
    not_a_directory.write_text("")

    done = _o11ykit("app", command, data_dir=not_a_directory)

    assert done.returncode == 1
    assert done.stderr == (
        f"o11ykit app: cannot use {not_a_directory} as the data directory: Not a directory\n"
    )


class _InstantStack:
    """Stands in for the Stack in `o11ykit app up`: up at once, and says when it is stopped."""

    stopped = 0

    def __init__(self, config: StackConfig) -> None:
        self.services: dict = {}

    def start(self, progress=print) -> _InstantStack:
        return self

    def state(self) -> dict:
        return {"services": {}}

    def stop(self) -> None:
        type(self).stopped += 1


@pytest.mark.parametrize(("foreground", "code"), [(True, 0), (False, 130)])
def test_ctrl_c_just_after_the_stack_is_up_still_stops_everything(
    monkeypatch, tmp_path, foreground, code
):
    """The window between the state file and the foreground wait (printing the addresses):
    a Ctrl-C there escaped, left the store running and exited with a traceback."""
    from sample_app import cli

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setenv("O11YKIT_APP_DIR", str(tmp_path))
    monkeypatch.setattr(stack_module, "Stack", _InstantStack)
    monkeypatch.setattr(StackFaults, "from_state", classmethod(lambda cls, state, **_: None))
    monkeypatch.setattr(cli, "_print_where", interrupted)
    _InstantStack.stopped = 0
    arguments = ["app", "up", "--free-ports"] + (["--foreground"] if foreground else [])
    from o11ykit.cli import main

    try:
        returned = main(arguments)
    except KeyboardInterrupt:
        pytest.fail("the Ctrl-C escaped `o11ykit app up` without stopping the stack")
    assert returned == code
    assert _InstantStack.stopped == 1


@pytest.mark.parametrize(
    "resource", ["deployment.environment.name=production", "deployment.environment=prod"]
)
def test_a_service_told_it_is_production_by_otel_resource_attributes_refuses_faults(
    python_snippet, tmp_path, resource
):
    # The workshop's default environment must not outrank what the deployment declares.
    result = python_snippet(
        """
        from fastapi.testclient import TestClient
        from o11ykit import state
        from sample_app.services.payments.app import app

        client = TestClient(app)
        admin = client.get("/_o11ykit/faults", headers={"Authorization": "Bearer t"})
        print(admin.status_code, state.current().settings.environment)
        """,
        env={
            "SAMPLE_APP_DATA_DIR": str(tmp_path),
            "O11YKIT_BACKEND": "none",
            "O11YKIT_FAULTS": "true",
            "O11YKIT_FAULTS_TOKEN": "t",
            "OTEL_RESOURCE_ATTRIBUTES": resource,
        },
    )
    assert result.returncode == 0, result.stderr
    status, environment = result.stdout.split()
    assert status == "404" and environment == resource.split("=")[1]
    assert result.stderr.count("refused in production") == 1, result.stderr


@pytest.mark.parametrize(
    ("resource", "said"),
    [
        ("deployment.environment.name=prod-eu", "'prod-eu'"),
        # Malformed: it may name production, and nobody can say it does not.
        ("deployment.environment.name=production,x", "cannot be read"),
    ],
)
def test_app_up_with_another_backend_refuses_a_production_environment(tmp_path, resource, said):
    # With --backend otlp the caller's OTEL_ settings reach the services: production there
    # stops the start, rather than being overwritten with "workshop".
    env = {**os.environ, "OTEL_RESOURCE_ATTRIBUTES": resource}
    env.update(O11YKIT_APP_DIR=str(tmp_path / "d"), CI="true")
    result = subprocess.run(
        [sys.executable, "-m", "o11ykit.cli", "app", "up", "--free-ports", "--backend", "otlp"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert said in result.stderr and "does not start" in result.stderr
    assert not (tmp_path / "d" / stack_module.STATE_FILE).exists()
