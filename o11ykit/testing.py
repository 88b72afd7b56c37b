"""A pytest fixture that captures the spans your own code produces.

    def test_checkout(o11ykit_spans):
        checkout(cart)
        assert o11ykit_spans.named("SELECT orders")[0].attributes["tenant.id"] == "acme"

Spans are captured as the backend would receive them (secrets scrubbed), and cleared,
with the tenant/user context, before and after every test. Registered as a pytest plugin
by the package, so the fixture is available wherever o11ykit is installed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

from o11ykit import state
from o11ykit.context import _current
from o11ykit.privacy import Scrubber, scrubbed


class SpanCapture(SpanProcessor):
    """Keeps ended spans while active; attached once per process to the o11ykit provider."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._scrubber = scrubber
        self._spans: list[ReadableSpan] = []
        self._lock = threading.Lock()
        self.active = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.active:
            clean = scrubbed([span], self._scrubber)[0]
            with self._lock:
                self._spans.append(clean)

    @property
    def spans(self) -> list[ReadableSpan]:
        with self._lock:
            return list(self._spans)

    def named(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.spans if s.name == name]

    def clear(self) -> None:
        with self._lock:
            self._spans.clear()

    def shutdown(self) -> None:
        self.active = False

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_capture: SpanCapture | None = None


def capture() -> SpanCapture:
    """The process's capture, attached to the current o11ykit handle (init'ing if needed)."""
    global _capture
    if _capture is None:
        from o11ykit.setup import init

        handle = state.current() or init(backend="none")
        settings = handle.settings
        _capture = SpanCapture(Scrubber(settings.scrub_keys, settings.scrub_allow))
        handle.provider.add_span_processor(_capture)
    return _capture


@pytest.fixture
def o11ykit_spans() -> Iterator[SpanCapture]:
    spans = capture()
    token = _current.set(None)
    spans.clear()
    spans.active = True
    try:
        yield spans
    finally:
        spans.active = False
        spans.clear()
        _current.reset(token)
