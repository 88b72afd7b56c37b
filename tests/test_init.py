"""init() as a service calls it: each case in a fresh process with its own global state."""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_python

pytestmark = pytest.mark.integration


def test_second_init_returns_the_same_handle_and_exports_once(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            import o11ykit
            endpoint = "{receiver.http_endpoint}"
            first = o11ykit.init(service_name="a", backend="otlp", endpoint=endpoint)
            second = o11ykit.init()
            assert first is second
            with first.tracer("t").start_as_current_span("once"):
                pass
            o11ykit.shutdown(timeout=5)
            """
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(lambda s: len(s) >= 1)
    assert [s["name"] for s in spans] == ["once"]


def test_attaches_to_an_existing_provider_and_says_so_once() -> None:
    result = run_python(
        """
        import logging
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
        theirs = TracerProvider(); memory = InMemorySpanExporter()
        theirs.add_span_processor(SimpleSpanProcessor(memory))
        trace.set_tracer_provider(theirs)
        import o11ykit
        handle = o11ykit.init(service_name="x")
        o11ykit.init()
        assert handle.provider is theirs and handle.attached and handle.processor is None
        with o11ykit.context(tenant_id="acme"):
            with trace.get_tracer("t").start_as_current_span("s"):
                pass
        print(memory.get_finished_spans()[0].attributes["tenant.id"])
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "acme"
    assert result.stderr.count("already installed") == 1


@pytest.mark.parametrize(
    ("chosen_by", "exports"),
    [
        # opentelemetry-instrument sets OTEL_TRACES_EXPORTER in every process it starts: it
        # configures the provider already installed, which exports the spans itself.
        ({"OTEL_TRACES_EXPORTER": "otlp"}, 0),
        ({"O11YKIT_BACKEND": "otlp"}, 1),
        ({"argument": "otlp"}, 1),
    ],
    ids=["OTEL_TRACES_EXPORTER", "O11YKIT_BACKEND", "argument"],
)
def test_an_existing_provider_gets_a_second_export_only_when_o11ykit_was_asked(
    tmp_path, chosen_by: dict[str, str], exports: int
) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    backend = chosen_by.pop("argument", None)
    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            from opentelemetry import trace
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
                InMemorySpanExporter,
            )
            theirs = TracerProvider(); memory = InMemorySpanExporter()
            theirs.add_span_processor(SimpleSpanProcessor(memory))
            trace.set_tracer_provider(theirs)
            import o11ykit
            o11ykit.init(service_name="x", backend={backend!r})
            with trace.get_tracer("t").start_as_current_span("s"):
                pass
            o11ykit.shutdown(timeout=5)
            print(len(memory.get_finished_spans()))
            """,
            env={**chosen_by, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint},
        )
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "1"  # their exporter has it either way
        # The shutdown above flushed o11ykit's export, if any, before the process ended.
        assert len(receiver.spans()) == exports, result.stderr


def test_init_makes_no_network_call_and_leaves_root_logging_alone() -> None:
    result = run_python(
        """
        import logging, socket
        def refuse(*a, **k):
            raise AssertionError("network call during init")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        root = logging.getLogger()
        before = (root.level, list(root.handlers), [h.formatter for h in root.handlers])
        import o11ykit
        o11ykit.init(service_name="quiet", backend="otlp", endpoint="http://127.0.0.1:9")
        assert (root.level, list(root.handlers), [h.formatter for h in root.handlers]) == before
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_bad_argument_raises_bad_environment_is_survived() -> None:
    result = run_python(
        """
        import o11ykit
        try:
            o11ykit.init(backend="zipkin")
        except o11ykit.ConfigError as exc:
            print("raised:", exc)
        handle = o11ykit.init(backend="none")
        print("backend:", handle.backend)
        """,
        env={"O11YKIT_SAMPLE_RATIO": "lots"},
    )
    assert result.returncode == 0, result.stderr
    assert "raised: o11ykit setting backend" in result.stdout
    assert "backend: none" in result.stdout
    assert result.stderr.count("O11YKIT_SAMPLE_RATIO='lots'") == 1


def test_resource_describes_the_service(tmp_path) -> None:
    result = run_python(
        """
        import json, o11ykit
        handle = o11ykit.init(service_name="pay", backend="none", environment="staging")
        print(json.dumps(dict(handle.provider.resource.attributes)))
        """,
        env={"GITHUB_SHA": "0123456789abcdef0123"},
    )
    assert result.returncode == 0, result.stderr
    resource = json.loads(result.stdout)
    assert resource["service.name"] == "pay"
    assert resource["service.version"] == "0123456789ab"
    assert resource["deployment.environment.name"] == "staging"
    for key in ("service.instance.id", "host.name", "process.pid"):
        assert key in resource


def test_container_id_is_read_from_cgroup_files(tmp_path) -> None:
    from o11ykit.resource import detect_container_id

    container = "a" * 64
    (tmp_path / "cgroup").write_text(f"0::/system.slice/docker-{container}.scope\n")
    assert detect_container_id(tmp_path) == container
    (tmp_path / "cgroup").write_text("0::/\n")
    (tmp_path / "mountinfo").write_text(f"1 2 0:1 /var/lib/docker/containers/{container}/hosts\n")
    assert detect_container_id(tmp_path) == container
    (tmp_path / "mountinfo").write_text("nothing here\n")
    assert detect_container_id(tmp_path) is None


@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_shutdown_with_a_dead_backend_returns_within_its_timeout() -> None:
    result = run_python(
        """
        import socket, time, o11ykit
        # A port that accepts connections and never answers: the worst case for a flush.
        silent = socket.socket(); silent.bind(("127.0.0.1", 0)); silent.listen(16)
        port = silent.getsockname()[1]
        handle = o11ykit.init(service_name="s", backend="otlp",
                              endpoint=f"http://127.0.0.1:{port}", schedule_delay=30)
        for i in range(100):
            with handle.tracer("t").start_as_current_span(f"s{i}"):
                pass
        started = time.monotonic()
        o11ykit.shutdown(timeout=0.5)
        print(round(time.monotonic() - started, 3))
        """
    )
    assert result.returncode == 0, result.stderr
    assert float(result.stdout) < 1.0


def test_a_failed_init_installs_nothing_and_a_retry_exports_once(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            import o11ykit, o11ykit.setup
            from opentelemetry import propagate, trace
            from opentelemetry.sdk.trace import TracerProvider
            endpoint = "{receiver.http_endpoint}"
            try:
                o11ykit.init(service_name="a", backend="otlp", endpoint=endpoint,
                             baggage_propagate_to="10.0.0.0/33,*.internal")
            except o11ykit.ConfigError as exc:
                print("raised:", exc)
            # Any builder failing (here a bug, simulated) must leave nothing behind either.
            build_propagator = o11ykit.setup.build_propagator
            def broken(settings):
                raise RuntimeError("simulated")
            o11ykit.setup.build_propagator = broken
            textmap = propagate.get_global_textmap()
            try:
                o11ykit.init(service_name="a", backend="otlp", endpoint=endpoint)
            except RuntimeError:
                pass
            assert not isinstance(trace.get_tracer_provider(), TracerProvider)
            assert propagate.get_global_textmap() is textmap
            o11ykit.setup.build_propagator = build_propagator
            handle = o11ykit.init(service_name="a", backend="otlp", endpoint=endpoint)
            with handle.tracer("t").start_as_current_span("once"):
                pass
            o11ykit.shutdown(timeout=5)
            """
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(lambda s: len(s) >= 1)
    assert "raised: o11ykit setting baggage_propagate_to" in result.stdout
    assert "10.0.0.0/33" in result.stdout
    assert [s["name"] for s in spans] == ["once"]


def test_bad_baggage_hosts_in_the_environment_are_survived() -> None:
    result = run_python(
        """
        import o11ykit
        print(o11ykit.init(backend="none").settings.baggage_propagate_to[0])
        """,
        env={"O11YKIT_BAGGAGE_PROPAGATE_TO": "10.0.0.0/33,*.internal"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "localhost"  # the default list
    assert result.stderr.count("O11YKIT_BAGGAGE_PROPAGATE_TO='10.0.0.0/33,*.internal'") == 1


def test_init_after_shutdown_says_what_it_cannot_change_and_stamps_once(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            import o11ykit
            from o11ykit.context import StampingProcessor
            stamped = []
            on_start = StampingProcessor.on_start
            def counting(self, span, parent_context=None):
                stamped.append(span.name)
                on_start(self, span, parent_context)
            StampingProcessor.on_start = counting
            endpoint = "{receiver.http_endpoint}"
            o11ykit.init(service_name="a", backend="otlp", endpoint=endpoint)
            o11ykit.shutdown(timeout=5)
            handle = o11ykit.init(service_name="b", backend="otlp", endpoint=endpoint,
                                  sample_ratio=0.5, debug=True)
            o11ykit.shutdown(timeout=5)
            handle = o11ykit.init(service_name="b", backend="otlp", endpoint=endpoint,
                                  sample_ratio=0.5, debug=True)
            with o11ykit.context(tenant_id="acme"):
                # Sampled by the first init's provider, which keeps every trace.
                with handle.tracer("t").start_as_current_span("after"):
                    pass
            o11ykit.shutdown(timeout=5)
            print(stamped)
            """
        )
        assert result.returncode == 0, result.stderr
        spans = receiver.wait_for_spans(lambda s: len(s) >= 1)
    assert result.stdout.strip() == "['after']"
    assert [s["name"] for s in spans] == ["after"]
    warnings = [line for line in result.stderr.splitlines() if "after shutdown()" in line]
    assert len(warnings) == 1, result.stderr
    assert "service_name, sample_ratio" in warnings[0]
    assert "debug" not in warnings[0]  # applied: not baked into the provider


def test_a_query_in_the_otlp_base_endpoint_stays_a_query_on_the_wire(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            """
            import o11ykit
            handle = o11ykit.init(service_name="q")
            with handle.tracer("t").start_as_current_span("queried"):
                pass
            o11ykit.shutdown(timeout=5)
            """,
            env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"{receiver.http_endpoint}?token=abc"},
        )
        assert result.returncode == 0, result.stderr
        requests = receiver.wait_for_requests(lambda r: len(r) >= 1)
    assert [r["path"] for r in requests] == ["/v1/traces?token=abc"]


def test_a_header_with_a_control_character_is_refused_and_never_logged(tmp_path) -> None:
    from tests.support.otlp_receiver import OtlpReceiver

    with OtlpReceiver(tmp_path) as receiver:
        result = run_python(
            f"""
            import o11ykit
            handle = o11ykit.init(service_name="h", backend="otlp",
                                  endpoint="{receiver.http_endpoint}")
            with handle.tracer("t").start_as_current_span("sent"):
                pass
            o11ykit.shutdown(timeout=5)
            print(handle.settings.headers, handle.stats().last_error)
            """,
            env={"O11YKIT_HEADERS": "x-api-key=SEKRITKEY%0Ainjected: 1"},
        )
        assert result.returncode == 0, result.stderr
        requests = receiver.wait_for_requests(lambda r: len(r) >= 1)
    assert result.stdout.strip() == "{} None"
    assert "SEKRITKEY" not in result.stdout + result.stderr
    assert result.stderr.count("O11YKIT_HEADERS=***") == 1
    assert "control character" in result.stderr
    assert "x-api-key" not in requests[0]["headers"] and "injected" not in requests[0]["headers"]


def test_an_app_is_not_instrumented_when_fastapi_is_left_out() -> None:
    result = run_python(
        """
        import json
        from fastapi import FastAPI
        import o11ykit
        from o11ykit.instrumentation.asgi import TracingMiddleware
        app, later = FastAPI(), FastAPI()
        handle = o11ykit.init(backend="none", app=app, instrumentations="sqlalchemy")
        o11ykit.instrument_app(later)
        wired = [any(m.cls is TracingMiddleware for m in a.user_middleware) for a in (app, later)]
        print(json.dumps([handle.instrumentations["fastapi"], wired]))
        """
    )
    assert result.returncode == 0, result.stderr
    status, wired = json.loads(result.stdout)
    # The words o11ykit doctor prints for the same setting.
    assert status == "skipped: not in the instrumentations setting"
    assert wired == [False, False]


def test_a_bad_app_raises_clearly_and_installs_nothing() -> None:
    result = run_python(
        """
        import logging
        from fastapi import FastAPI
        from opentelemetry import propagate, trace
        from opentelemetry.sdk.trace import TracerProvider
        import o11ykit
        from o11ykit import state
        textmap, factory = propagate.get_global_textmap(), logging.getLogRecordFactory()
        for app in (object(), FastAPI):
            try:
                o11ykit.init(backend="none", app=app)
            except o11ykit.ConfigError as exc:
                print("raised:", exc)
            assert not isinstance(trace.get_tracer_provider(), TracerProvider)
            assert propagate.get_global_textmap() is textmap
            assert logging.getLogRecordFactory() is factory
            assert state.current() is None
        handle = o11ykit.init(backend="none")
        try:
            o11ykit.instrument_app(42)
        except o11ykit.ConfigError as exc:
            print("raised again:", exc)

        class Odd:  # add_middleware that fails in its own way, once init() has installed all
            def add_middleware(self, *args, **kwargs):
                raise TypeError("odd framework")

        o11ykit.instrument_app(Odd())
        print("status:", handle.instrumentations["fastapi"])
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("raised: o11ykit init(app=...) got a object")
    assert "FastAPI or Starlette application" in lines[0] and "add_middleware" in lines[0]
    assert lines[1].startswith("raised: o11ykit init(app=...) got the class FastAPI")
    assert lines[2].startswith("raised again: o11ykit init(app=...) got a int")
    assert lines[3] == "status: skipped: TypeError: odd framework"
    assert "could not instrument the app: TypeError: odd framework" in result.stderr


def test_debug_logs_one_line_with_the_backend_and_each_integration() -> None:
    code = """
        from fastapi import FastAPI
        import o11ykit
        o11ykit.init(backend="none", app=FastAPI(), debug={debug})
        o11ykit.init(app=FastAPI())
        """
    result = run_python(code.format(debug=True))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "o11ykit debug:" in line]
    assert len(lines) == 1, result.stderr
    assert "backend=none" in lines[0] and "pid=" in lines[0]
    # Said after the app is wired, so its status is the final one.
    assert "fastapi: active: server span by o11ykit" in lines[0] and "sqlalchemy: " in lines[0]
    quiet = run_python(code.format(debug=False))
    assert quiet.returncode == 0, quiet.stderr
    assert "o11ykit debug" not in quiet.stderr


def test_o11ykit_warnings_during_init_fit_a_format_naming_the_correlation_fields() -> None:
    """A service may configure the documented format before init(): o11ykit's own warnings
    about its settings come before the record factory that fills those fields."""
    result = run_python(
        """
        import logging
        logging.basicConfig(format="%(levelname)s [%(trace_id)s %(tenant.id)s] %(message)s")
        import o11ykit
        o11ykit.init(service_name="svc", backend="none")
        """,
        env={"O11YKIT_SAMPLE_RATIO": "2"},
    )
    assert result.returncode == 0, result.stderr
    assert "Logging error" not in result.stderr, result.stderr
    assert "WARNING [- -] o11ykit setting sample_ratio" in result.stderr
