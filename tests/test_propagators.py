"""OTEL_PROPAGATORS (the propagators setting): which formats carry the trace context, in
which order, and what happens to a format o11ykit cannot build. Two real services talking
B3 are in tests/test_two_services.py."""

from __future__ import annotations

import logging
import sys

import pytest

from o11ykit import config
from o11ykit.config import ConfigError, load_settings
from o11ykit.instrumentation.asgi import _EdgeRules
from o11ykit.setup import build_propagator

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def _fields(propagators: str) -> set[str]:
    return set(build_propagator(load_settings({"propagators": propagators}, {})).fields)


def test_the_default_is_w3c_trace_context_and_o11ykit_s_trusted_baggage() -> None:
    assert load_settings({}, {}).propagators == ("tracecontext", "baggage")
    assert _fields("tracecontext,baggage") == {"traceparent", "tracestate", "baggage"}


def test_each_format_writes_its_own_headers_and_none_writes_nothing() -> None:
    assert _fields("b3") == {"b3"}
    assert _fields("b3multi") == {"x-b3-traceid", "x-b3-spanid", "x-b3-sampled"}
    assert _fields("none") == set()


def test_b3_in_and_out() -> None:
    propagator = build_propagator(load_settings({"propagators": "b3,tracecontext"}, {}))
    context = propagator.extract({"b3": f"{TRACE_ID}-{SPAN_ID}-1"})
    carrier: dict[str, str] = {}
    propagator.inject(carrier, context)
    assert carrier["b3"] == f"{TRACE_ID}-{SPAN_ID}-1"
    assert carrier["traceparent"] == f"00-{TRACE_ID}-{SPAN_ID}-01"


def test_otel_propagators_is_read_and_a_bad_value_says_what_is_accepted(caplog) -> None:
    settings = load_settings({}, {"OTEL_PROPAGATORS": "b3multi, baggage,b3multi"})
    assert settings.propagators == ("b3multi", "baggage")
    assert settings.sources["propagators"] == "OTEL_PROPAGATORS"
    config._reported.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        for value in ("jaeger", "none,b3"):
            assert load_settings({}, {"OTEL_PROPAGATORS": value}).propagators == (
                "tracecontext",
                "baggage",
            )
    jaeger, alone = [r.getMessage() for r in caplog.records]
    assert "unknown: jaeger; accepted values: a comma-separated list of tracecontext" in jaeger
    assert "none means no propagation, so it stands alone" in alone


def test_b3_without_its_package(monkeypatch, caplog) -> None:
    """From an argument a ConfigError naming the package; from OTEL_PROPAGATORS said once,
    and the service propagates the other formats."""
    monkeypatch.setitem(sys.modules, "opentelemetry.propagators.b3", None)  # import fails
    with pytest.raises(ConfigError, match=r"pip install 'o11ykit\[b3\]'"):
        build_propagator(load_settings({"propagators": "b3,tracecontext"}, {}))
    config._reported.clear()
    settings = load_settings({}, {"OTEL_PROPAGATORS": "b3,tracecontext"})
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        built = build_propagator(settings)
        build_propagator(settings)
    assert set(built.fields) == {"traceparent", "tracestate"}
    assert [r.getMessage() for r in caplog.records] == [
        "o11ykit setting propagators names b3, whose package is not installed: pip install"
        " 'o11ykit[b3]' (opentelemetry-propagator-b3); b3 is left out"
    ]


def test_the_edge_looks_for_the_context_headers_of_the_formats_it_reads() -> None:
    default = _EdgeRules(load_settings({}, {}))
    b3 = _EdgeRules(load_settings({"propagators": "b3multi,baggage"}, {}))
    context = {name for name, role in default.wanted.items() if role == "context"}
    assert context == {b"traceparent"}
    context = {name for name, role in b3.wanted.items() if role == "context"}
    assert context == {b"b3", b"x-b3-traceid"}


def test_inbound_baggage_is_trusted_only_where_baggage_is_propagated() -> None:
    trusting = {"baggage_trust_inbound": True}
    assert _EdgeRules(load_settings(trusting, {})).trust_baggage
    assert not _EdgeRules(
        load_settings({**trusting, "propagators": "tracecontext"}, {})
    ).trust_baggage
    assert not _EdgeRules(load_settings({}, {})).trust_baggage
