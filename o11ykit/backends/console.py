"""One readable line per span on stderr, for learners without any backend."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from o11ykit.config import Settings
from o11ykit.context import IDENTITY_KEYS
from o11ykit.privacy import Scrubber, scrubbed

_SHOWN = (*IDENTITY_KEYS, "http.route", "http.response.status_code", "db.system.name")


def format_span(span: ReadableSpan) -> str:
    duration_ms = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
    attributes = span.attributes or {}
    details = " ".join(f"{k}={attributes[k]}" for k in _SHOWN if k in attributes)
    error = " ERROR" if span.status.status_code is StatusCode.ERROR else ""
    service = span.resource.attributes.get("service.name", "?")
    trace_id = format(span.context.trace_id, "032x")
    return (
        f"[{service}] {span.kind.name:<8} {duration_ms:8.2f} ms  {span.name}{error}"
        f"  {details}  trace={trace_id[:12]}"
    ).rstrip()


class ConsoleTransport:
    target = "stderr"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send(self, spans: Sequence[ReadableSpan], timeout: float, scrubber: Scrubber) -> None:
        stream = self._stream or sys.stderr
        stream.write("".join(format_span(span) + "\n" for span in scrubbed(spans, scrubber)))
        stream.flush()

    def close(self) -> None:
        pass


def transport(settings: Settings) -> ConsoleTransport:
    return ConsoleTransport()


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return None
