"""Libraries are instrumented when the service imports them, not imported by init().

The hook itself (o11ykit.instrumentation.on_import) on modules written for each test, then
init() in fresh interpreters with the real libraries and a real OTLP receiver.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import sys
import threading
import time
from collections.abc import Iterator
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

from o11ykit.instrumentation.on_import import when_imported
from tests.conftest import run_python


@pytest.fixture
def modules(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path for modules written by the test (named hooked_*); they are
    forgotten after."""
    sys.path.insert(0, str(tmp_path))
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in [name for name in sys.modules if name.startswith("hooked_")]:
            del sys.modules[name]
        importlib.invalidate_caches()


def _write(directory: Path, name: str, body: str = "") -> None:
    (directory / f"{name}.py").write_text(f"{body}\nDONE = True\n")
    importlib.invalidate_caches()


def test_the_callback_runs_once_the_module_has_run_and_before_the_importer_gets_it(modules):
    _write(modules, "hooked_plain")
    seen = []
    when_imported("hooked_plain", lambda module: seen.append(module.DONE))
    assert seen == []
    import hooked_plain

    assert seen == [True]
    # The module keeps its own loader (importlib.resources and the like ask it for data).
    assert type(hooked_plain.__loader__) is SourceFileLoader
    assert type(hooked_plain.__spec__.loader) is SourceFileLoader
    importlib.reload(hooked_plain)
    assert seen == [True], "once, not at every reload"


def test_an_imported_module_gets_its_callback_at_once(modules):
    _write(modules, "hooked_early")
    import hooked_early

    seen = []
    when_imported("hooked_early", seen.append)
    assert seen == [hooked_early]


def test_a_cancelled_callback_never_runs(modules):
    _write(modules, "hooked_cancelled")
    seen = []
    cancel = when_imported("hooked_cancelled", seen.append)
    assert cancel() is True
    assert cancel() is False
    import hooked_cancelled  # noqa: F401

    assert seen == []


def test_a_callback_importing_another_watched_module_finishes_first(modules):
    # As OpenTelemetry's httpx instrumentation imports httpx2: the second library's
    # callback must not run while the first callback's imports are half done.
    _write(modules, "hooked_second")
    _write(modules, "hooked_first")
    order = []

    def first(module):
        order.append("first begins")
        import hooked_second  # noqa: F401

        order.append("first ends")

    when_imported("hooked_first", first)
    when_imported("hooked_second", lambda module: order.append(f"second, DONE={module.DONE}"))
    import hooked_first  # noqa: F401

    assert order == ["first begins", "first ends", "second, DONE=True"]


def test_a_failing_callback_costs_the_import_nothing(modules, caplog):
    _write(modules, "hooked_failing", "VALUE = 42")

    def broken(module):
        raise RuntimeError("instrumentation broke")

    when_imported("hooked_failing", broken)
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        import hooked_failing

    assert hooked_failing.VALUE == 42
    assert "a hook on importing hooked_failing failed" in caplog.text
    assert "instrumentation broke" in caplog.text


def test_threads_importing_at_once_get_the_module_after_its_one_callback(modules):
    _write(modules, "hooked_slow", "import time\ntime.sleep(0.3)")
    calls, seen = [], {}

    def slow_callback(module):
        time.sleep(0.1)  # another thread's import must wait for this too
        calls.append(module.DONE)

    when_imported("hooked_slow", slow_callback)

    def importer(n):
        module = importlib.import_module("hooked_slow")
        seen[n] = (module.DONE, list(calls))

    threads = [threading.Thread(target=importer, args=(n,)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert calls == [True]
    assert seen == {n: (True, [True]) for n in range(3)}


def test_a_watched_module_that_is_not_there_fails_to_import_as_ever(modules):
    cancel = when_imported("hooked_missing", lambda module: None)
    with pytest.raises(ModuleNotFoundError, match="hooked_missing"):
        importlib.import_module("hooked_missing")
    assert cancel() is True, "still waiting for a module that may yet appear"


LIBRARIES = ("sqlalchemy", "httpx", "requests")
WAITING = "waiting: instrumented when the service imports {}"


def test_init_imports_no_library_and_each_is_traced_once_imported(tmp_path) -> None:
    """A real run: init() first, then the service imports SQLAlchemy, requests and httpx
    and uses them; their spans reach a real OTLP receiver, and a real server gets each
    request's CLIENT span as its parent. (Importing OpenTelemetry's httpx instrumentation
    imports httpx2 where it is installed: its own instrumentation waits for httpx's.)"""
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            import json, sys, threading
            from http.server import BaseHTTPRequestHandler, HTTPServer
            import o11ykit
            handle = o11ykit.init(service_name="lazy", backend="otlp",
                                  endpoint="{receiver.http_endpoint}")
            before = {{name: name in sys.modules for name in {LIBRARIES!r}}}
            statuses = dict(handle.instrumentations)

            received = []
            class Handler(BaseHTTPRequestHandler):
                def do_GET(self):
                    received.append(self.headers.get("traceparent"))
                    self.send_response(204)
                    self.end_headers()
                def log_message(self, *args):
                    pass
            server = HTTPServer(("127.0.0.1", 0), Handler)
            threading.Thread(target=server.serve_forever, daemon=True).start()

            import httpx
            import requests
            import sqlalchemy
            tracer = handle.tracer("lazy")
            with tracer.start_as_current_span("work") as work:
                engine = sqlalchemy.create_engine("sqlite://")
                with engine.connect() as connection:
                    connection.execute(sqlalchemy.text("SELECT 1"))
                requests.get(f"http://127.0.0.1:{{server.server_port}}/requests", timeout=5)
                httpx.get(f"http://127.0.0.1:{{server.server_port}}/httpx", timeout=5)
            after = {{name: handle.instrumentations[name] for name in {(*LIBRARIES, "httpx2")!r}}}
            server.shutdown()
            o11ykit.shutdown(timeout=5)
            print(json.dumps({{
                "before": before,
                "statuses": statuses,
                "after": after,
                "work": format(work.get_span_context().span_id, "016x"),
                "traceparents": received,
            }}))
            """
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(lambda s: len(s) >= 4)
    out = json.loads(result.stdout)
    assert out["before"] == {name: False for name in LIBRARIES}
    for name in LIBRARIES:
        assert out["statuses"][name] == WAITING.format(name)
    assert out["after"]["requests"] == out["after"]["httpx"] == "active"
    assert out["after"]["sqlalchemy"].startswith("active (SQLAlchemy")
    if importlib.util.find_spec("httpx2") is not None:
        # Imported by httpx's instrumentation, or not yet: never found half-imported.
        assert out["after"]["httpx2"] in ("active", WAITING.format("httpx2"))
    (select,) = [span for span in spans if span["name"] == "SELECT"]
    assert select["kind"] == "CLIENT" and select["parent_span_id"] == out["work"]
    clients = {span["span_id"]: span for span in spans if span["name"] == "GET"}
    assert len(clients) == 2 and len(out["traceparents"]) == 2
    for traceparent in out["traceparents"]:
        client = clients[traceparent.split("-")[2]]
        assert client["kind"] == "CLIENT" and client["parent_span_id"] == out["work"]


def test_a_library_imported_after_shutdown_is_left_alone() -> None:
    result = run_python(
        """
        import json
        import o11ykit
        handle = o11ykit.init(backend="none")
        o11ykit.shutdown()
        import requests
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        print(json.dumps([
            handle.instrumentations["requests"],
            RequestsInstrumentor().is_instrumented_by_opentelemetry,
        ]))
        """
    )
    assert result.returncode == 0, result.stderr
    status, instrumented = json.loads(result.stdout)
    assert status == "skipped: o11ykit shut down before the service imported requests"
    assert instrumented is False


@pytest.mark.skipif(
    importlib.util.find_spec("httpx2") is None,
    reason="httpx2 is not installed here (it needs Python 3.11 or later)",
)
def test_httpx_is_traced_when_httpx2_was_imported_before_init() -> None:
    """Enabling httpx2 imports OpenTelemetry's httpx instrumentation, which imports httpx:
    httpx was enabled from inside that import, found no instrumentor, and was skipped."""
    result = run_python(
        """
        import httpx2
        import o11ykit
        handle = o11ykit.init(service_name="order", backend="none")
        print(handle.instrumentations["httpx"], "|", handle.instrumentations["httpx2"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "active | active", result.stderr
