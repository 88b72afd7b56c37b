"""Import/initialisation cost, measured in fresh interpreters.

Each case runs in its own ``python -c`` child (so nothing is already imported)
which times the statements with ``perf_counter`` and prints the milliseconds;
we keep the median of several runs. Interpreter start-up is deliberately outside
the timed region: it is the same for every case.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import textwrap

# Lines above a "# timed" line are set-up that runs untimed in the same interpreter.
CASES: dict[str, str] = {
    "import o11ykit": """
        import o11ykit
    """,
    "o11ykit import + init(backend='none'), cold": """
        import o11ykit
        o11ykit.init(service_name="x", backend="none")
    """,
    "o11ykit import + init(backend='none'), app libraries already imported": """
        import fastapi, sqlalchemy, httpx, requests
        # timed
        import o11ykit
        o11ykit.init(service_name="x", backend="none")
    """,
    # What a service that imports its libraries after init() pays in all: each is
    # instrumented as it loads (docs/instrumentation.md).
    "o11ykit import + init(backend='none'), then the app libraries imported": """
        import o11ykit
        o11ykit.init(service_name="x", backend="none")
        import fastapi, sqlalchemy, httpx, requests
    """,
    "the app libraries alone (import only)": """
        import fastapi, sqlalchemy, httpx, requests
    """,
    "OTel pieces o11ykit uses (import only)": """
        import opentelemetry.sdk.trace, opentelemetry.sdk.resources
        import opentelemetry.propagators.composite, opentelemetry.baggage.propagation
    """,
    "plain OTel setup (import + provider + BSP + OTLP HTTP exporter)": """
        from opentelemetry import trace
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        provider = TracerProvider(resource=Resource.create({"service.name": "x"}))
        provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint="http://127.0.0.1:9/v1/traces"))
        )
        trace.set_tracer_provider(provider)
    """,
}

_WRAPPER = """
import time
{prelude}
_t0 = time.perf_counter()
{body}
print("BENCH_MS", (time.perf_counter() - _t0) * 1000.0)
"""


def _time_once(body: str, cwd: str, timeout: float) -> float:
    prelude, _, timed = textwrap.dedent(body).strip().rpartition("# timed")
    code = _WRAPPER.format(prelude=prelude.strip(), body=timed.strip())
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_MS "):
            return float(line.split()[1])
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    raise RuntimeError(tail)


def measure(cwd: str, runs: int = 7, timeout: float = 30.0) -> dict[str, dict[str, object]]:
    """Median milliseconds per case; a case that fails records its error instead."""
    results: dict[str, dict[str, object]] = {}
    for name, body in CASES.items():
        samples: list[float] = []
        try:
            # One discarded run first: it warms the page cache. The repository's bytecode
            # was compiled beforehand (common.compile_sources), whatever the environment.
            _time_once(body, cwd, timeout)
            for _ in range(runs):
                samples.append(_time_once(body, cwd, timeout))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            results[name] = {"error": str(exc)}
            continue
        results[name] = {
            "median_ms": statistics.median(samples),
            "min_ms": min(samples),
            "max_ms": max(samples),
            "runs": runs,
        }
    return results
