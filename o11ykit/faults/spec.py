"""What a fault is: its kind, its parameters and its scope, parsed strictly from plain data.

A spec comes from a facilitator's JSON, CLI flags or code; every mistake is reported with
the field's name and what it accepts, so a drill is never started with a typo that makes
the fault silently match nobody.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from o11ykit.faults.matching import could_match

_ID = re.compile(r"[a-z0-9-]{1,64}")
# Ids the admin API's own paths take: a fault named `audit` could be injected, but
# /_o11ykit/faults/audit answers with the audit log, so it could never be shown or cleared.
RESERVED_IDS = ("audit",)
_FIELDS = ("id", "kind", "params", "scope", "fixed")
_SCOPE_FIELDS = ("tenants", "users", "routes", "versions", "percent", "seed", "onset_s", "ramp_s")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


class FaultSpecError(ValueError):
    """A fault spec o11ykit cannot use; the message names the field and what it accepts."""


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a kind. A default of None makes it required."""

    type: type
    default: Any = None
    min: float | None = None
    max: float | None = None
    help: str = ""

    def accepted(self) -> str:
        if self.type is bool:
            return "true or false"
        if self.type is str:
            return "a string"
        noun = "a whole number" if self.type is int else "a number"
        if self.min is not None and self.max is not None:
            return f"{noun} from {self.min:g} to {self.max:g}"
        if self.min is not None:
            return f"{noun} >= {self.min:g}"
        if self.max is not None:
            return f"{noun} <= {self.max:g}"
        return noun

    def parse(self, value: Any) -> Any:
        """The typed value; numbers may come as text (CLI flags), nothing else is guessed."""
        if self.type is str:
            if not isinstance(value, str):
                raise ValueError
            return value
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower() if isinstance(value, str) else None
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)  # ValueError for text that is not a number
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError
        if self.type is int:
            if number != int(number):
                raise ValueError
            number = int(number)
        if (self.min is not None and number < self.min) or (
            self.max is not None and number > self.max
        ):
            raise ValueError
        return number

    def describe(self) -> dict[str, Any]:
        return {
            "type": self.type.__name__,
            "default": self.default,
            "min": self.min,
            "max": self.max,
            "help": self.help,
        }


@dataclass(frozen=True)
class KindSpec:
    """A kind of fault: its name, its parameters and what it does.

    `unavailable` says why this service cannot inject it (e.g. pool_hold without a
    SQLAlchemy engine); such a kind is listed but refused. `scope_fields` names the scope
    fields the kind can honour (None: all): one that acts outside requests (a data import,
    a dropped index, a background job) cannot honour `users`, `routes` or `percent`, and
    a spec that sets one is refused rather than silently ignored.
    """

    name: str
    params: Mapping[str, ParamSpec] = field(default_factory=dict)
    help: str = ""
    unavailable: str | None = None
    scope_fields: tuple[str, ...] | None = None

    def with_defaults(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            **{k: p.default for k, p in self.params.items() if p.default is not None},
            **params,
        }

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "help": self.help,
            "params": {name: p.describe() for name, p in self.params.items()},
        }
        if self.unavailable:
            described["unavailable"] = self.unavailable
        if self.scope_fields is not None:
            described["scope_fields"] = list(self.scope_fields)
        return described


@dataclass(frozen=True)
class Scope:
    """Who and what a fault touches. An empty tuple means everyone."""

    tenants: tuple[str, ...] = ()
    users: tuple[str, ...] = ()
    # Each a path prefix (`/api/orders`, also matching `/api/orders/7`) or a glob where `*`
    # is one path segment and `**` any number (`/api/products/*`).
    routes: tuple[str, ...] = ()
    # service.version values; in any other version the fault is inert.
    versions: tuple[str, ...] = ()
    percent: float = 100.0
    seed: int = 0
    onset_s: float = 0.0
    ramp_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "tenants": list(self.tenants),
            "users": list(self.users),
            "routes": list(self.routes),
            "versions": list(self.versions),
            "percent": self.percent,
            "seed": self.seed,
            "onset_s": self.onset_s,
            "ramp_s": self.ramp_s,
        }


@dataclass(frozen=True)
class FaultSpec:
    id: str
    kind: str
    params: dict[str, Any]
    scope: Scope
    fixed: bool = False

    @classmethod
    def from_dict(
        cls,
        data: Mapping[str, Any],
        *,
        kinds: Mapping[str, KindSpec],
        tenants: Collection[str] | None = None,
        users: Collection[str] | None = None,
        routes: Collection[str] | None = None,
    ) -> FaultSpec:
        """Parse and check a spec; FaultSpecError names the first field that is wrong.

        `tenants`, `users`: the ones the service knows (None: any). `routes`: the service's
        route templates; a scope route that can match none of them is refused (None: any).
        """
        if not isinstance(data, Mapping):
            raise FaultSpecError("a fault spec is a JSON object with fields: " + ", ".join(_FIELDS))
        _no_unknown("", data, _FIELDS)
        fault_id = data.get("id")
        if not isinstance(fault_id, str) or not _ID.fullmatch(fault_id):
            raise FaultSpecError(
                f"id: {fault_id!r} is not accepted; accepted: 1 to 64 of a-z, 0-9 and '-'"
            )
        if fault_id in RESERVED_IDS:
            raise FaultSpecError(
                f"id: {fault_id!r} is reserved (GET /_o11ykit/faults/{fault_id} is the admin "
                "API's audit log); accepted: any other 1 to 64 of a-z, 0-9 and '-'"
            )
        kind = _kind(data.get("kind"), kinds)
        return cls(
            id=fault_id,
            kind=kind.name,
            params=_params(kind, data.get("params", {})),
            scope=_honoured(kind, _scope(data.get("scope", {}), tenants, users, routes)),
            fixed=_flag("fixed", data.get("fixed", False)),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "params": dict(self.params),
            "scope": self.scope.to_dict(),
            "fixed": self.fixed,
        }


def _no_unknown(prefix: str, data: Mapping[str, Any], accepted: tuple[str, ...]) -> None:
    unknown = sorted(str(k) for k in data if k not in accepted)
    if unknown:
        where = f"{prefix}: " if prefix else ""
        raise FaultSpecError(
            f"{where}unknown field(s) {', '.join(unknown)}; accepted: {', '.join(accepted)}"
        )


def _kind(name: Any, kinds: Mapping[str, KindSpec]) -> KindSpec:
    kind = kinds.get(name) if isinstance(name, str) else None
    if kind is None:
        raise FaultSpecError(f"kind: unknown kind {name!r}; accepted: {', '.join(kinds)}")
    if kind.unavailable:
        raise FaultSpecError(f"kind: {name} is not available in this service: {kind.unavailable}")
    return kind


def _params(kind: KindSpec, given: Any) -> dict[str, Any]:
    if not isinstance(given, Mapping):
        raise FaultSpecError(f"params: must be an object; accepted keys: {_names(kind)}")
    parsed: dict[str, Any] = {}
    for name, value in given.items():
        param = kind.params.get(name)
        if param is None:
            raise FaultSpecError(
                f"params.{name}: unknown param of kind {kind.name}; accepted: {_names(kind)}"
            )
        try:
            parsed[name] = param.parse(value)
        except (TypeError, ValueError):
            raise FaultSpecError(
                f"params.{name}: {value!r} is not accepted; accepted: {param.accepted()}"
            ) from None
    missing = [n for n, p in kind.params.items() if p.default is None and n not in parsed]
    if missing:
        raise FaultSpecError(f"params.{missing[0]}: required by kind {kind.name}")
    return parsed


def _names(kind: KindSpec) -> str:
    return ", ".join(kind.params) or "none (this kind takes no params)"


def _scope(
    given: Any,
    tenants: Collection[str] | None,
    users: Collection[str] | None,
    routes: Collection[str] | None,
) -> Scope:
    if not isinstance(given, Mapping):
        raise FaultSpecError("scope: must be an object; accepted: " + ", ".join(_SCOPE_FIELDS))
    _no_unknown("scope", given, _SCOPE_FIELDS)
    return Scope(
        tenants=_known("tenants", _texts("tenants", given.get("tenants", ())), tenants),
        users=_known("users", _texts("users", given.get("users", ())), users),
        routes=_routes(_texts("routes", given.get("routes", ())), routes),
        versions=_texts("versions", given.get("versions", ())),
        percent=_number("percent", given.get("percent", 100.0), 0.0, 100.0),
        seed=_seed(given.get("seed", 0)),
        onset_s=_number("onset_s", given.get("onset_s", 0.0), 0.0, None),
        ramp_s=_number("ramp_s", given.get("ramp_s", 0.0), 0.0, None),
    )


_UNSCOPED = Scope()


def _honoured(kind: KindSpec, scope: Scope) -> Scope:
    if kind.scope_fields is None:
        return scope
    for name in _SCOPE_FIELDS:
        if name == "seed" and "percent" in kind.scope_fields:
            continue  # the seed only picks which share `percent` takes
        if name not in kind.scope_fields and getattr(scope, name) != getattr(_UNSCOPED, name):
            honoured = ", ".join(kind.scope_fields) or "none (it acts on the whole service)"
            raise FaultSpecError(
                f"scope.{name}: kind {kind.name} cannot honour it; "
                f"the scope fields it honours: {honoured}"
            )
    return scope


def _texts(name: str, value: Any) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(
        isinstance(v, str) and v.strip() for v in items
    ):
        raise FaultSpecError(
            f"scope.{name}: {value!r} is not accepted; accepted: a list of non-empty strings "
            "(empty: everyone)"
        )
    return tuple(dict.fromkeys(v.strip() for v in items))


def _known(name: str, values: tuple[str, ...], known: Collection[str] | None) -> tuple[str, ...]:
    if known is not None:
        unknown = [v for v in values if v not in known]
        if unknown:
            raise FaultSpecError(
                f"scope.{name}: unknown {name[:-1]} {unknown[0]!r}; "
                f"accepted: {', '.join(sorted(known))}"
            )
    return values


def _routes(values: tuple[str, ...], known: Collection[str] | None) -> tuple[str, ...]:
    for route in values:
        if not route.startswith("/"):
            raise FaultSpecError(
                f"scope.routes: {route!r} is not accepted; accepted: paths starting with '/', "
                "as a prefix (/api/orders) or a glob (/api/products/*)"
            )
        # A misspelt route would be injected, listed, and never fire: the drill would run
        # with no fault in it.
        if known and not any(could_match(route, template) for template in known):
            listed = sorted(set(known))
            shown = ", ".join(listed[:_ROUTES_SHOWN])
            more = f" and {len(listed) - _ROUTES_SHOWN} more" if len(listed) > _ROUTES_SHOWN else ""
            raise FaultSpecError(
                f"scope.routes: {route!r} matches no route of this service; its routes: "
                f"{shown}{more}"
            )
    return values


_ROUTES_SHOWN = 30


def _number(name: str, value: Any, low: float, high: float | None) -> float:
    accepted = f"a number from {low:g} to {high:g}" if high is not None else f"a number >= {low:g}"
    try:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ValueError
        number = float(value)
    except ValueError:
        number = float("nan")
    if not (low <= number and (high is None or number <= high)) or number == float("inf"):
        raise FaultSpecError(f"scope.{name}: {value!r} is not accepted; accepted: {accepted}")
    return number


def _seed(value: Any) -> int:
    try:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError
        return int(value)
    except ValueError:
        raise FaultSpecError(
            f"scope.seed: {value!r} is not accepted; accepted: a whole number"
        ) from None


def _flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise FaultSpecError(f"{name}: {value!r} is not accepted; accepted: true or false")
    return value
