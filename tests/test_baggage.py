"""Baggage rules: trusted destinations only, inbound read only when trusted, capped."""

from __future__ import annotations

import pytest
from opentelemetry import baggage, trace
from opentelemetry.sdk.trace import TracerProvider

from o11ykit.baggage import HostTrust, TrustedBaggagePropagator, read_inbound
from o11ykit.config import DEFAULT_BAGGAGE_HOSTS
from o11ykit.context import policy, use_identity
from o11ykit.settings_parsers import host_patterns

default_trust = HostTrust(DEFAULT_BAGGAGE_HOSTS)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "172.20.0.5",
        "192.168.1.1",
        "orders",
        "catalog.internal",
        "db.local",
        "api.default.svc",
        "api.ns.svc.cluster.local",
    ],
)
def test_default_trust_covers_internal_hosts(host: str) -> None:
    assert default_trust.trusts(host)


@pytest.mark.parametrize(
    "host", ["api.stripe.com", "8.8.8.8", "example.org", "internal.evil.com", "", None]
)
def test_default_trust_excludes_the_outside(host: str | None) -> None:
    assert not default_trust.trusts(host)


def _client_span(url: str) -> trace.Span:
    tracer = TracerProvider(shutdown_on_exit=False).get_tracer("t")
    return tracer.start_span("GET", attributes={"url.full": url})


def test_outbound_baggage_only_to_trusted_hosts() -> None:
    propagator = TrustedBaggagePropagator(default_trust, trust_inbound=False)
    identity = policy.identity("acme", "u-1")
    with use_identity(identity):
        for url, expected in (("http://orders:8000/x", True), ("https://api.stripe.com/v1", False)):
            span = _client_span(url)
            carrier: dict[str, str] = {}
            propagator.inject(carrier, trace.set_span_in_context(span))
            assert ("tenant.id=acme" in carrier.get("baggage", "")) is expected, url


def test_inbound_baggage_ignored_unless_trusted() -> None:
    carrier = {"baggage": "tenant.id=evil"}
    untrusted = TrustedBaggagePropagator(default_trust, trust_inbound=False).extract(carrier)
    assert baggage.get_all(untrusted) == {}
    trusted = TrustedBaggagePropagator(default_trust, trust_inbound=True).extract(carrier)
    assert baggage.get_all(trusted) == {"tenant.id": "evil"}


def test_inbound_reading_caps_count_length_and_keys() -> None:
    long_value = "x" * 500
    header = f"foo=1,tenant.id=acme,enduser.id={long_value},enduser.pseudo.id=p1;prop=1"
    assert read_inbound(header, max_entries=8, max_value_length=128) == {
        "tenant.id": "acme",
        "enduser.pseudo.id": "p1",
    }
    assert read_inbound(header, max_entries=1, max_value_length=128) == {}


def test_trusted_inbound_baggage_is_capped_before_it_travels_on() -> None:
    propagator = TrustedBaggagePropagator(
        default_trust, trust_inbound=True, max_entries=2, max_value_length=5
    )
    context = propagator.extract({"baggage": "a=1,b=toolongvalue,c=3,d=4"})
    assert baggage.get_all(context) == {"a": "1"}


# Each is 8.8.8.8 to the resolver, though it has no dot (or is written as IPv6).
@pytest.mark.parametrize("host", ["134744072", "0x08080808", "8.8.2056", "[::ffff:8.8.8.8]"])
def test_numeric_forms_of_a_public_address_are_not_trusted(host: str) -> None:
    assert not default_trust.trusts(host)
    propagator = TrustedBaggagePropagator(default_trust, trust_inbound=False)
    with use_identity(policy.identity("acme", "u-1")):
        carrier: dict[str, str] = {}
        propagator.inject(carrier, trace.set_span_in_context(_client_span(f"http://{host}/x")))
    assert "baggage" not in carrier


@pytest.mark.parametrize("host", ["2130706433", "0x7f000001", "10.258", "[::ffff:10.0.0.1]"])
def test_numeric_forms_are_judged_as_the_address_they_denote(host: str) -> None:
    assert default_trust.trusts(host)
    assert HostTrust(["8.8.8.8"]).trusts("134744072")


def test_every_pattern_the_setting_accepts_is_understood_here() -> None:
    patterns = host_patterns("db_1,orders.internal,*.corp,8.8.4.4,::1,10.0.0.0/8,<single-label>")
    trust = HostTrust(patterns)
    for host in ("db_1", "orders.internal", "a.corp", "8.8.4.4", "::1", "10.9.9.9", "cache"):
        assert trust.trusts(host), host
