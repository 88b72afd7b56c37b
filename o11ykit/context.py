"""Who a unit of work is for: the tenant and user, held in a context variable.

The edge middleware sets it once per request; `o11ykit.context()` sets it for jobs and
scripts. The stamping processor copies it onto every span the service starts, and the log
record factory onto every log record.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import INVALID_SPAN_CONTEXT, NonRecordingSpan, SpanContext, TraceFlags

from o11ykit.privacy import pseudonymize

TENANT_ID = "tenant.id"
ENDUSER_ID = "enduser.id"
ENDUSER_PSEUDO_ID = "enduser.pseudo.id"
IDENTITY_KEYS = (TENANT_ID, ENDUSER_ID, ENDUSER_PSEUDO_ID)
_IDENTITY_CACHE_LIMIT = 4096


@dataclass(frozen=True)
class Identity:
    attributes: Mapping[str, str]

    @property
    def tenant_id(self) -> str | None:
        return self.attributes.get(TENANT_ID)


@dataclass
class IdentityPolicy:
    """How raw ids become attributes; init() replaces it with the configured one."""

    pseudonym_key: str | None = None
    _cache: dict[tuple, Identity | None] = field(default_factory=dict, repr=False)

    def identity(
        self, tenant_id: str | None, user_id: str | None, *, pseudonymized: bool = False
    ) -> Identity | None:
        # The same few tenants and users come back request after request; an identity
        # (and its HMAC) is computed once per key in force.
        key = (tenant_id, user_id, pseudonymized, self.pseudonym_key)
        found = self._cache.get(key)
        if found is None:
            found = self._build(tenant_id, user_id, pseudonymized)
            if len(self._cache) >= _IDENTITY_CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _build(
        self, tenant_id: str | None, user_id: str | None, pseudonymized: bool
    ) -> Identity | None:
        attributes: dict[str, str] = {}
        if tenant_id:
            attributes[TENANT_ID] = str(tenant_id)
        if user_id:
            if pseudonymized:
                attributes[ENDUSER_PSEUDO_ID] = str(user_id)
            elif self.pseudonym_key:
                attributes[ENDUSER_PSEUDO_ID] = pseudonymize(self.pseudonym_key, str(user_id))
            else:
                attributes[ENDUSER_ID] = str(user_id)
        return Identity(MappingProxyType(attributes)) if attributes else None


policy = IdentityPolicy()
# The parent of work that must not be traced (health checks): unsampled, so with the
# parent-based sampler nothing below it is recorded. It is no trace, and logs say so.
UNTRACED_SPAN_CONTEXT = SpanContext(1, 1, is_remote=False, trace_flags=TraceFlags(0))
UNTRACED = trace.set_span_in_context(NonRecordingSpan(UNTRACED_SPAN_CONTEXT))
_current: ContextVar[Identity | None] = ContextVar("o11ykit.identity", default=None)


def current_identity() -> Identity | None:
    return _current.get()


def set_identity(identity: Identity | None) -> Token:
    """For hot paths; elsewhere `use_identity` reads better."""
    return _current.set(identity)


def reset_identity(token: Token) -> None:
    _current.reset(token)


@contextmanager
def use_identity(identity: Identity | None) -> Iterator[Identity | None]:
    token = _current.set(identity)
    try:
        yield identity
    finally:
        _current.reset(token)


@contextmanager
def context(tenant_id: str | None = None, user_id: str | None = None) -> Iterator[Identity | None]:
    """Attribute the work inside the block to a tenant and user, e.g. in a job or script.

    Spans started inside, and log records written inside, carry `tenant.id` and
    `enduser.id` (or `enduser.pseudo.id` when a pseudonym key is configured).
    """
    with use_identity(policy.identity(tenant_id, user_id)) as identity:
        yield identity


def stamp(span: trace.Span, identity: Identity | None) -> None:
    """Put the identity on a span without overwriting what code set explicitly."""
    if identity is None or not span.is_recording():
        return
    existing = getattr(span, "attributes", None) or {}
    missing = {k: v for k, v in identity.attributes.items() if k not in existing}
    if missing:
        span.set_attributes(missing)


class StampingProcessor(SpanProcessor):
    """Copies the current tenant and user onto every span as it starts."""

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        identity = _current.get()
        if identity is not None:
            stamp(span, identity)

    def on_end(self, span: ReadableSpan) -> None:
        pass

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


_ABSENT = "-"


class _YieldingFields(dict):
    """A log record's attributes, in which the correlation fields o11ykit filled in give
    way to the caller's `extra`.

    The record factory runs before `Logger.makeRecord` applies `extra`, and makeRecord
    raises KeyError for an `extra` key the record already has: `extra={"trace_id": ...}`
    would crash the caller. So the fields o11ykit set answer "absent" to that membership
    test (`in`) for as long as they hold o11ykit's value; reading them, and formatting
    with `%(trace_id)s`, see them as usual. Neither Logger nor any handler is patched.
    """

    __slots__ = ("_ours",)

    def __contains__(self, key: object) -> bool:
        ours = self._ours.get(key, _NOT_OURS)  # type: ignore[call-overload]
        if ours is not _NOT_OURS and dict.get(self, key, _NOT_OURS) is ours:
            return False
        return dict.__contains__(self, key)

    def __reduce__(self) -> tuple:
        # A pickled record (QueueHandler, multiprocessing) carries a plain dict.
        return (dict, (dict(self),))


_NOT_OURS = object()


def _correlation(span_context: SpanContext, identity: Identity | None) -> dict[str, str]:
    if span_context.is_valid and span_context is not UNTRACED_SPAN_CONTEXT:
        trace_id = format(span_context.trace_id, "032x")
        span_id = format(span_context.span_id, "016x")
    else:
        trace_id = span_id = _ABSENT
    attributes = identity.attributes if identity is not None else {}
    return {
        "trace_id": trace_id,
        "span_id": span_id,
        TENANT_ID: attributes.get(TENANT_ID, _ABSENT),
        ENDUSER_ID: attributes.get(ENDUSER_ID, _ABSENT),
        ENDUSER_PSEUDO_ID: attributes.get(ENDUSER_PSEUDO_ID, _ABSENT),
    }


def correlating_record_factory(
    previous: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Wrap a log record factory so every record carries trace and tenant correlation;
    a field the caller passes in `extra` replaces o11ykit's."""

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            correlation = _correlation(trace.get_current_span().get_span_context(), _current.get())
            fields = _YieldingFields(record.__dict__)
            fields.update(correlation)
            fields._ours = correlation
            record.__dict__ = fields
        except Exception:  # an odd record class: it goes uncorrelated, never raises
            pass
        return record

    factory.o11ykit_previous = previous  # type: ignore[attr-defined]
    return factory


class _UncorrelatedFields(logging.Filter):
    """Gives o11ykit's own records the correlation fields the record factory has not: those
    written during init(), before the factory is installed, or with the logging
    integration off. A service's format naming %(trace_id)s must not fail on them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _correlation(INVALID_SPAN_CONTEXT, None).items():
            record.__dict__.setdefault(key, value)
        return True


_OWN_LOGGER = logging.getLogger("o11ykit")
if not any(isinstance(f, _UncorrelatedFields) for f in _OWN_LOGGER.filters):
    _OWN_LOGGER.addFilter(_UncorrelatedFields())
