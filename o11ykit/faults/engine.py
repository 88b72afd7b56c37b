"""The faults in force in this process, and the one question code asks: does one touch me now?

Requests read a snapshot that is replaced whole on every change, so the hot path takes no
lock and costs one attribute check while nothing is injected. Changes are serialised by
a lock and audited in the order they happen.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from opentelemetry import trace

from o11ykit.config import ConfigError
from o11ykit.context import ENDUSER_ID, ENDUSER_PSEUDO_ID, TENANT_ID, current_identity, policy
from o11ykit.faults.audit import AuditLog, rfc3339_now
from o11ykit.faults.kinds import GENERIC_KINDS
from o11ykit.faults.matching import draw, route_matcher
from o11ykit.faults.spec import FaultSpec, KindSpec
from o11ykit.privacy import pseudonymize

Listener = Callable[[str, list[str]], None]
log = logging.getLogger("o11ykit")
# The path of the request being handled, set by the fault middleware: a service's own
# code asks about its custom kinds without naming a route, and `routes` scopes still hold.
request_route: ContextVar[str | None] = ContextVar("o11ykit_fault_route", default=None)


@dataclass(frozen=True)
class ActiveFault:
    """A fault that touches this call. `intensity` grows 0 -> 1 over the ramp (1 without
    one); `share` is where this call fell within the fault's matched share, in [0, 1)."""

    spec: FaultSpec
    fixed: bool
    intensity: float
    params: Mapping[str, Any]
    share: float = 0.0

    def param(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            raise KeyError(
                f"kind {self.spec.kind} has no param {name!r}; it has: {', '.join(self.params)}"
            ) from None

    @property
    def reached(self) -> bool:
        """For all-or-nothing kinds: during a ramp, the share of calls hit grows with
        intensity, and a call hit at one intensity stays hit at every higher one."""
        return self.share < self.intensity


@dataclass(frozen=True)
class _Entry:
    spec: FaultSpec
    started: float  # the engine clock at injection
    injected_at: str
    params: Mapping[str, Any]
    route_matches: Callable[[str], bool] | None
    users: frozenset[str]

    def as_dict(self) -> dict[str, Any]:
        return {**self.spec.to_dict(), "injected_at": self.injected_at, "fixed": self.spec.fixed}


class FaultEngine:
    """Holds the injected faults of one service process and answers `active(kind, ...)`."""

    def __init__(
        self,
        *,
        service_version: str | None = None,
        kinds: Mapping[str, KindSpec] | None = None,
        tenants: Collection[str] | None = None,
        users: Collection[str] | None = None,
        audit: AuditLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        guard: Callable[[], str | None] | None = None,
        routes: Callable[[], Collection[str] | None] | None = None,
    ) -> None:
        """`guard` answers why injection may not run (production), or None; asked on every
        use, it turns the engine off for good the first time it answers. `routes` gives the
        service's route templates when a spec is injected (None: unknown, any scope route
        accepted), so a scope route that matches none of them is refused."""
        self.service_version = service_version
        self.kinds: Mapping[str, KindSpec] = MappingProxyType({**GENERIC_KINDS, **(kinds or {})})
        self.tenants = frozenset(tenants) if tenants is not None else None
        self.users = frozenset(users) if users is not None else None
        self.audit = audit if audit is not None else AuditLog()
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._by_kind: Mapping[str, tuple[_Entry, ...]] = {}
        self._keys = itertools.count()
        self._listeners: list[Listener] = []
        self._guard = guard
        self._routes = routes
        self.refused: str | None = None

    # -- changing what is injected ---------------------------------------------------------

    def inject(self, spec: FaultSpec | Mapping[str, Any], actor: str = "api") -> FaultSpec:
        """Inject (or replace, same id) a fault; FaultSpecError changes nothing, and so does
        ConfigError, raised when the guard refused injection here (production)."""
        if not self.allowed():
            raise ConfigError(self.refused or "fault injection is refused")
        data = spec.to_dict() if isinstance(spec, FaultSpec) else spec
        parsed = FaultSpec.from_dict(
            data,
            kinds=self.kinds,
            tenants=self.tenants,
            users=self.users,
            routes=self._routes() if self._routes else None,
        )
        kind = self.kinds[parsed.kind]
        entry = _Entry(
            spec=parsed,
            started=self._clock(),
            injected_at=rfc3339_now(),
            params=MappingProxyType(kind.with_defaults(parsed.params)),
            route_matches=route_matcher(parsed.scope.routes) if parsed.scope.routes else None,
            users=_users_as_recorded(parsed.scope.users),
        )
        with self._lock:
            self._entries.pop(parsed.id, None)  # a replacement goes to the end, as new
            self._entries[parsed.id] = entry
            self._publish()
            self.audit.record("inject", parsed.id, actor, parsed.to_dict())
        self._notify("inject", [parsed.id])
        return parsed

    def fix(self, fault_id: str, fixed: bool = True, actor: str = "api") -> FaultSpec:
        """Flip a fault's fix switch; the fault stays injected and listed."""
        with self._lock:
            entry = self._find(fault_id)
            spec = dataclasses.replace(entry.spec, fixed=bool(fixed))
            self._entries[fault_id] = dataclasses.replace(entry, spec=spec)
            self._publish()
            self.audit.record("fix" if fixed else "unfix", fault_id, actor)
        self._notify("fix" if fixed else "unfix", [fault_id])
        return spec

    def clear(self, fault_id: str | None = None, actor: str = "api") -> list[str]:
        """Remove one fault, or all of them (None); returns the ids cleared."""
        with self._lock:
            if fault_id is None:
                cleared = list(self._entries)
            else:
                self._find(fault_id)
                cleared = [fault_id]
            for cleared_id in cleared:
                del self._entries[cleared_id]
                self.audit.record("clear", cleared_id, actor)
            self._publish()
        if cleared:
            self._notify("clear", cleared)
        return cleared

    def allowed(self) -> bool:
        """False for good once the guard refused injection: every fault is then cleared
        (held connections go back), nothing matches and nothing can be injected."""
        if self.refused is not None:
            return False
        reason = self._guard() if self._guard is not None else None
        if reason is None:
            return True
        with self._lock:
            if self.refused is not None:
                return False
            self.refused = reason
            cleared = list(self._entries)
            self._entries.clear()
            for cleared_id in cleared:
                self.audit.record("clear", cleared_id, "production-guard")
            self._publish()
        log.warning("%s; it is now off (faults cleared: %s)", reason, ", ".join(cleared) or "none")
        if cleared:
            self._notify("clear", cleared)
        return False

    def subscribe(self, listener: Listener) -> None:
        """Call `listener(action, fault_ids)` after each change (e.g. to release resources)."""
        self._listeners.append(listener)

    def _find(self, fault_id: str) -> _Entry:
        entry = self._entries.get(fault_id)
        if entry is None:
            injected = ", ".join(self._entries) or "none"
            raise KeyError(f"no fault {fault_id!r} is injected; injected: {injected}")
        return entry

    def _publish(self) -> None:
        by_kind: dict[str, list[_Entry]] = {}
        for entry in self._entries.values():
            by_kind.setdefault(entry.spec.kind, []).append(entry)
        self._by_kind = {kind: tuple(entries) for kind, entries in by_kind.items()}

    def _notify(self, action: str, fault_ids: list[str]) -> None:
        for listener in self._listeners:
            listener(action, fault_ids)

    # -- reading ---------------------------------------------------------------------------

    @property
    def has_faults(self) -> bool:
        return bool(self._by_kind)

    def faults(self) -> list[dict[str, Any]]:
        """Each injected fault: its spec, when it was injected (RFC 3339) and its fix switch."""
        self.allowed()
        with self._lock:
            return [entry.as_dict() for entry in self._entries.values()]

    def fault(self, fault_id: str) -> dict[str, Any]:
        """One fault as faults() lists it; KeyError when it is not injected."""
        with self._lock:
            return self._find(fault_id).as_dict()

    def injected(self, kind: str) -> tuple[FaultSpec, ...]:
        """Every injected fault of `kind`, whoever it is scoped to, fixed or not: for the
        kinds that act outside requests (data, schema, background jobs), whose fix path
        depends only on whether the fault is injected and fixed."""
        entries = self._by_kind.get(kind)
        if not entries or not self.allowed():
            return ()
        return tuple(entry.spec for entry in entries)

    def describe_kinds(self) -> dict[str, Any]:
        return {name: kind.describe() for name, kind in self.kinds.items()}

    def active(
        self,
        kind: str,
        *,
        route: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        key: str | None = None,
    ) -> ActiveFault | None:
        """The first fault of `kind` that touches this call, fixed or not; None if none does.

        tenant and user default to the current o11ykit identity, route to the path of the
        request being handled (None outside one); key (for the percent draw) to the current
        trace id, so a trace is in or out in every service alike.
        """
        if not self._by_kind:
            return None
        found = self.all_active(kind, route=route, tenant=tenant, user=user, key=key)
        return found[0] if found else None

    def broken(
        self,
        kind: str,
        *,
        route: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        key: str | None = None,
    ) -> ActiveFault | None:
        """Like active(), but only a fault whose fix switch is off."""
        if not self._by_kind:
            return None
        found = self.all_active(kind, route=route, tenant=tenant, user=user, key=key)
        return next((fault for fault in found if not fault.fixed), None)

    def all_active(
        self,
        kind: str,
        *,
        route: str | None = None,
        tenant: str | None = None,
        user: str | None = None,
        key: str | None = None,
    ) -> list[ActiveFault]:
        """Every fault of `kind` that touches this call, in the order they were injected."""
        candidates = self._by_kind.get(kind)
        if not candidates or not self.allowed():
            return []
        if route is None:
            route = request_route.get()
        users: tuple[str | None, ...] = (user,)
        if tenant is None or user is None:
            identity = current_identity()
            attributes = identity.attributes if identity is not None else {}
            if tenant is None:
                tenant = attributes.get(TENANT_ID)
            if user is None:
                # With a pseudonym key only the pseudonym is known (see _users_as_recorded).
                users = (attributes.get(ENDUSER_ID), attributes.get(ENDUSER_PSEUDO_ID))
        now = self._clock()
        # The draw's key is found at most once per call, and only when a fault needs it.
        keys: list[str] = [key] if key is not None else []

        def call_key() -> str:
            if not keys:
                keys.append(self._default_key())
            return keys[0]

        found: list[ActiveFault] = []
        for entry in candidates:
            active = _match(entry, self.service_version, route, tenant, users, call_key, now)
            if active is not None:
                found.append(active)
        return found

    def _default_key(self) -> str:
        span = trace.get_current_span()
        if span.is_recording():
            return format(span.get_span_context().trace_id, "032x")
        return f"call-{next(self._keys)}"


def _match(
    entry: _Entry,
    service_version: str | None,
    route: str | None,
    tenant: str | None,
    users: tuple[str | None, ...],
    call_key: Callable[[], str],
    now: float,
) -> ActiveFault | None:
    scope = entry.spec.scope
    if scope.versions and service_version not in scope.versions:
        return None
    if scope.tenants and tenant not in scope.tenants:
        return None
    if scope.users and not any(u in entry.users for u in users if u):
        return None
    if entry.route_matches is not None and (route is None or not entry.route_matches(route)):
        return None
    elapsed = now - entry.started - scope.onset_s
    if elapsed < 0:
        return None
    intensity = 1.0 if scope.ramp_s <= 0 else min(1.0, elapsed / scope.ramp_s)
    share = 0.0
    if scope.percent < 100.0 or scope.ramp_s > 0:
        fraction = scope.percent / 100.0
        value = draw(scope.seed, call_key())
        if value >= fraction:
            return None
        share = value / fraction
    return ActiveFault(entry.spec, entry.spec.fixed, intensity, entry.params, share)


def _users_as_recorded(users: tuple[str, ...]) -> frozenset[str]:
    """The scoped user ids, plus their pseudonyms when a pseudonym key is in force: the
    facilitator names raw ids, the request's context may hold only the pseudonym."""
    key = policy.pseudonym_key
    return frozenset(users) | (
        frozenset(pseudonymize(key, u) for u in users) if key else frozenset()
    )
