"""`o11ykit doctor`: what is configured, from where, and does a span really arrive."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from o11ykit import backends
from o11ykit.backends import honeycomb, jaeger, local
from o11ykit.backends.jaeger_query import JaegerQuery, QueryError
from o11ykit.config import ConfigError, Settings, load_settings, masked
from o11ykit.instrumentation import enable_all
from o11ykit.privacy import Scrubber
from o11ykit.resource import build_resource
from o11ykit.settings_parsers import without_secrets
from o11ykit.setup import build_transport
from o11ykit.transport import ExportFailure

HINTS = {
    "connection refused": "Is the backend running and listening at that address?",
    "wrong protocol": "The port speaks the other OTLP protocol: 4318 is HTTP, 4317 is gRPC.",
    "bad key": "Check the API key (HONEYCOMB_API_KEY) and that it may send events.",
    "TLS": "Check the endpoint's scheme (http vs https) and its certificate; a certificate"
    " from a private CA needs that CA named by certificate (OTEL_EXPORTER_OTLP_CERTIFICATE).",
    "timed out": "The backend is slow or a firewall drops packets; retry or raise export_timeout.",
    "wrong path": "OTLP/HTTP expects /v1/traces; give the base URL and o11ykit adds the path.",
}

# A query API (Jaeger's, the store's) answers a POST with 405: the endpoint names it.
_METHOD_REFUSED = (
    "That port refuses POST: is it a query port (16686)? OTLP/HTTP is sent to 4318 (the"
    " store's --otlp-http-port)."
)


@dataclass
class Report:
    ok: bool = True
    lines: list[str] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        self.lines.append(text)

    def fail(self, text: str) -> None:
        self.ok = False
        self.lines.append("FAIL  " + text)


class _Keep(SpanExporter):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> SpanExportResult:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS


def make_test_span(settings: Settings) -> ReadableSpan:
    keep = _Keep()
    provider = TracerProvider(resource=build_resource(settings), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(keep))
    with provider.get_tracer("o11ykit.doctor").start_as_current_span(
        "o11ykit doctor test span", attributes={"o11ykit.doctor": True}
    ):
        pass
    return keep.spans[0]


class ReadBackProblem(NamedTuple):
    """Why a test span was not read back. `not_found`: the query API answered that it holds
    no such trace (yet), rather than being unreachable or something else answering."""

    message: str
    not_found: bool


def read_back(query_url: str, trace_id: str, wait: float = 3.0) -> ReadBackProblem | None:
    """Find the trace through the Jaeger API v3, with the client `o11ykit traces` uses: a
    404 is "not found" only in the query API's own words, not from a proxy or another port
    that has no such path. None when found, else what went wrong. Asked again for `wait`
    seconds only while the API says "not found" (the span may not be written yet): a wrong
    or unreachable address does not answer better a moment later, so that is said at once."""
    client = JaegerQuery(query_url, timeout=1.0)
    deadline = time.monotonic() + wait
    while True:
        try:
            if client.get_trace(trace_id) is not None:
                return None
        except QueryError as exc:
            return ReadBackProblem(str(exc), False)
        if time.monotonic() >= deadline:
            return ReadBackProblem("not found", True)
        time.sleep(0.2)


def honeycomb_slugs(settings: Settings) -> tuple[str | None, str | None]:
    """Team and environment slugs from Honeycomb's /1/auth, for a link to the trace."""
    base = settings.endpoint or honeycomb.ENDPOINTS[settings.honeycomb_region]
    request = urllib.request.Request(
        f"{base}/1/auth", headers={"X-Honeycomb-Team": settings.honeycomb_api_key or ""}
    )
    try:
        with urllib.request.urlopen(request, timeout=3.0) as answer:
            body = json.loads(answer.read())
    except (OSError, ValueError):
        return None, None
    return (body.get("team") or {}).get("slug"), (body.get("environment") or {}).get("slug")


def run(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Report:
    report = Report()
    try:
        settings = load_settings(arguments, environ)
    except ConfigError as exc:
        report.fail(str(exc))
        return report
    backend = backends.choose(settings)
    report.say(f"o11ykit doctor: backend {backend}")
    report.say()
    report.say("Settings (value, where it came from):")
    for name, (value, source) in masked(settings).items():
        report.say(f"  {name:<26} {value or '-':<40} {source}")
    report.say()
    # init() enables a library once the service imports it; here each is imported and
    # enabled now, so a broken one is named before the service meets it.
    report.say("Instrumentations, as init() would enable them here once each is imported:")
    provider = TracerProvider(shutdown_on_exit=False)
    for name, status in enable_all(settings, provider, wait_for_import=False).items():
        report.say(f"  {name:<12} {status}")
    report.say()
    _send_test_span(settings, report)
    return report


def _send_test_span(settings: Settings, report: Report) -> None:
    try:
        backend, transport = build_transport(settings.replace(sources={"backend": "argument"}))
    except ConfigError as exc:
        report.fail(str(exc))
        return
    if transport is None:
        report.say("Backend none: nothing is exported, so there is nothing to test.")
        return
    span = make_test_span(settings)
    trace_id = format(span.context.trace_id, "032x")
    try:
        transport.send([span], settings.export_timeout, Scrubber())
    except ExportFailure as failure:
        report.fail(f"test span not accepted by {without_secrets(transport.target)}: {failure}")
        hint = HINTS.get(failure.kind)
        if failure.kind == "server error" and "answered HTTP 405" in failure.detail:
            hint = _METHOD_REFUSED
        if hint:
            report.say("      " + hint)
        return
    finally:
        transport.close()
    report.say(f"OK    test span {trace_id} accepted by {without_secrets(transport.target)}")
    _link_and_read_back(settings, backend, trace_id, report)


def _link_and_read_back(settings: Settings, backend: str, trace_id: str, report: Report) -> None:
    if backend in ("local", "jaeger"):
        query = local.query_url(settings) if backend == "local" else jaeger.ui_url(settings)
        problem = read_back(query, trace_id)
        if problem is None:
            report.say(f"OK    read back through the query API at {without_secrets(query)}")
            if backend == "local":
                _store_status(query, report)
        elif backend == "jaeger" and problem.not_found:
            # Jaeger answered without the span: a collector between may batch or sample it.
            report.say(
                f"NOTE  could not read it back ({problem.message}); Jaeger may sit behind a"
                " collector"
            )
        else:
            report.fail(f"test span sent but not readable: {problem.message}")
            report.say(
                f"      {'a store' if backend == 'local' else 'Jaeger'} on other ports?"
                " --query-url (or O11YKIT_QUERY_URL) names its query port"
            )
        link = backends.BY_NAME[backend].trace_link(settings, trace_id)
    elif backend == "honeycomb":
        team, environment = honeycomb_slugs(settings)
        link = honeycomb.trace_link(settings, trace_id, team, environment)
    else:
        link = backends.BY_NAME[backend].trace_link(settings, trace_id)
    if link:
        report.say(f"Link  {link}")


def _store_status(query_url: str, report: Report) -> None:
    """What the local store holds, and a note when it dropped spans it had accepted: the
    test span arrived, yet a store that drops batches loses a service's spans."""
    try:
        status = JaegerQuery(query_url, timeout=1.0).status()
    except QueryError as exc:
        report.say(f"NOTE  could not read the store's status: {exc}")
        return
    report.say(
        f"      the store holds spans: {status['spans']:,}, services: {status['services']:,},"
        f" evicted by retention: {status['evictedSpans']:,}"
    )
    if status["droppedSpans"]:
        report.say(
            f"NOTE  the store dropped {status['droppedSpans']:,} spans it had accepted;"
            " its log says why"
        )


def main(arguments: Mapping[str, Any], out: TextIO) -> int:
    report = run(arguments)
    out.write("\n".join(report.lines) + "\n")
    out.write(("doctor: all good\n") if report.ok else "doctor: problems found\n")
    return 0 if report.ok else 1
