"""Baggage rules: who may send us tenant and user, and to whom we pass them on.

Inbound baggage is an outside caller's word, so the edge ignores it unless the service is
configured as internal. Outbound, baggage goes only to hosts the service trusts, decided
from the client span that is current when an instrumentation injects headers.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from opentelemetry import baggage as otel_baggage
from opentelemetry import trace
from opentelemetry.baggage.propagation import W3CBaggagePropagator
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import (
    CarrierT,
    Getter,
    Setter,
    TextMapPropagator,
    default_getter,
    default_setter,
)

from o11ykit.context import IDENTITY_KEYS, current_identity
from o11ykit.settings_parsers import SINGLE_LABEL, ip_literal

_DESTINATION_KEYS = ("server.address", "net.peer.name", "url.full", "http.url")


class HostTrust:
    """Matches host names and IP addresses against names, *.suffixes, IPs and CIDR ranges.

    Patterns are those settings_parsers.host_patterns accepts; anything else raises
    ValueError here, before init() installs anything.
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        self._names: set[str] = set()
        self._suffixes: list[str] = []
        self._networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        self._single_label = False
        for pattern in (p.strip().lower() for p in patterns):
            if pattern == SINGLE_LABEL:
                self._single_label = True
            elif pattern.startswith("*."):
                self._suffixes.append(pattern[1:])
            elif "/" in pattern:
                self._networks.append(ipaddress.ip_network(pattern, strict=False))
            elif (address := ip_literal(pattern)) is not None:
                self._networks.append(ipaddress.ip_network(address))
            elif pattern:
                self._names.add(pattern)
        self._verdicts: dict[str, bool] = {}

    def trusts(self, host: str | None) -> bool:
        if not host:
            return False
        verdict = self._verdicts.get(host)
        if verdict is None:
            verdict = self._decide(host.strip("[]").lower().rstrip("."))
            if len(self._verdicts) < 1024:
                self._verdicts[host] = verdict
        return verdict

    def _decide(self, host: str) -> bool:
        if host in self._names:
            return True
        # Before the name rules: `134744072` has no dot but is 8.8.8.8, not a compose service.
        address = ip_literal(host)
        if address is not None:
            return any(address in network for network in self._networks)
        if self._single_label and "." not in host:
            return True
        return any(host.endswith(suffix) for suffix in self._suffixes)


def destination_host(span: trace.Span) -> str | None:
    """The peer host of a client span, from whichever convention its instrumentation uses."""
    attributes: Mapping[str, Any] = getattr(span, "attributes", None) or {}
    for key in _DESTINATION_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value:
            return urlsplit(value).hostname if "://" in value else value
    return None


def read_inbound(
    header_value: str | None, max_entries: int, max_value_length: int
) -> dict[str, str]:
    """Tenant and user entries from a W3C baggage header, capped in count and length."""
    found: dict[str, str] = {}
    if not header_value:
        return found
    for entry in header_value.split(",")[:max_entries]:
        key, sep, raw = entry.partition("=")
        key = key.strip()
        if not sep or key not in IDENTITY_KEYS:
            continue
        value = unquote(raw.split(";", 1)[0].strip())
        if value and len(value) <= max_value_length:
            found[key] = value
    return found


class TrustedBaggagePropagator(TextMapPropagator):
    """W3C baggage, sent only to trusted hosts and read only when inbound is trusted."""

    def __init__(
        self,
        trust: HostTrust,
        trust_inbound: bool,
        max_entries: int = 8,
        max_value_length: int = 128,
    ) -> None:
        self._trust = trust
        self._trust_inbound = trust_inbound
        self._max_entries = max_entries
        self._max_value_length = max_value_length
        self._w3c = W3CBaggagePropagator()

    def extract(
        self, carrier: CarrierT, context: Context | None = None, getter: Getter = default_getter
    ) -> Context:
        base = context if context is not None else Context()
        if not self._trust_inbound:
            return base
        extracted = otel_baggage.get_all(self._w3c.extract(carrier, Context(), getter))
        kept = [
            (key, value)
            for key, value in list(extracted.items())[: self._max_entries]
            if len(str(value)) <= self._max_value_length
        ]
        for key, value in kept:
            base = otel_baggage.set_baggage(key, value, base)
        return base

    def inject(
        self, carrier: CarrierT, context: Context | None = None, setter: Setter = default_setter
    ) -> None:
        span = trace.get_current_span(context)
        if not self._trust.trusts(destination_host(span)):
            return
        identity = current_identity()
        if identity is not None:
            for key, value in identity.attributes.items():
                context = otel_baggage.set_baggage(key, value, context)
        self._w3c.inject(carrier, context, setter)

    @property
    def fields(self) -> set[str]:
        return self._w3c.fields
