"""Injecting, fixing and clearing catalogue faults on a running stack, by id.

A catalogue fault may live in several services (the catalog and its canary share the
data-error fault). Each injection is validated against the catalogue first and applied
to every service or to none: if one service refuses, the ones already changed are
restored, so a bad spec changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from o11ykit.faults import FaultAdminError, FaultClient, FaultSpec, FaultSpecError, KindSpec
from o11ykit.faults.kinds import GENERIC_KINDS
from sample_app import dataset, topology
from sample_app.faults import catalogue


@dataclass
class Overrides:
    """What a facilitator may change about a catalogue fault's scope and parameters."""

    tenants: Sequence[str] = ()
    users: Sequence[str] = ()
    routes: Sequence[str] = ()
    versions: Sequence[str] = ()
    percent: float | None = None
    seed: int | None = None
    onset_s: float | None = None
    ramp_s: float | None = None
    params: dict[str, Any] = field(default_factory=dict)
    fixed: bool = False


def _kind_specs() -> dict[str, KindSpec]:
    from sample_app.runtime import kind_specs

    return {**GENERIC_KINDS, **kind_specs(catalogue.KINDS)}


def build_spec(fault: catalogue.Fault, overrides: Overrides | None = None) -> dict[str, Any]:
    """The engine spec for a catalogue fault; raises FaultSpecError for a bad override."""
    overrides = overrides or Overrides()
    scope = dict(fault.scope)
    for name in ("tenants", "users", "routes", "versions"):
        given = getattr(overrides, name)
        if given:
            scope[name] = list(given)
    for name in ("percent", "seed", "onset_s", "ramp_s"):
        given = getattr(overrides, name)
        if given is not None:
            scope[name] = given
    spec = {
        "id": fault.id,
        "kind": fault.kind,
        "params": {**fault.params, **overrides.params},
        "scope": scope,
        "fixed": overrides.fixed,
    }
    customers = None  # any user id is accepted: customers are too many to list
    parsed = FaultSpec.from_dict(
        spec, kinds=_kind_specs(), tenants=dataset.shop_slugs(), users=customers
    )
    _check_versions(fault, parsed.scope.versions)
    return spec


def _check_versions(fault: catalogue.Fault, versions: Sequence[str]) -> None:
    """A version none of the fault's processes runs would leave the fault injected and
    never firing. Each service checks its routes itself; only here are all its versions
    known (the catalog and its canary are two processes, one version each)."""
    running = sorted({topology.BY_NAME[name].version for name in fault.services})
    for version in versions:
        if version not in running:
            raise FaultSpecError(
                f"scope.versions: {version!r} is not a version of {', '.join(fault.services)},"
                f" where {fault.id} is injected; accepted: {', '.join(running)}"
            )


class StackFaults:
    """The catalogue's faults on one running stack (URLs and token from its state file).
    `actor` names who acts in the services' audit log (None: the admin API's "api")."""

    def __init__(
        self,
        service_urls: Mapping[str, str],
        token: str,
        timeout: float = 5.0,
        *,
        actor: str | None = None,
    ) -> None:
        self.clients = {
            name: FaultClient(url, token, timeout=timeout, actor=actor)
            for name, url in service_urls.items()
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any], *, actor: str | None = None) -> StackFaults:
        urls = {name: info["url"] for name, info in state["services"].items()}
        return cls(urls, state["token"], actor=actor)

    def inject(self, fault_id: str, overrides: Overrides | None = None) -> dict[str, Any]:
        fault = catalogue.get(fault_id)
        spec = build_spec(fault, overrides)
        done: list[str] = []
        try:
            for service in fault.services:
                self.clients[service].inject(spec)
                done.append(service)
        except FaultAdminError:
            for service in done:
                self.clients[service].clear(fault.id)
            raise
        return spec

    def fix(self, fault_id: str, fixed: bool = True) -> None:
        fault = catalogue.get(fault_id)
        for service in fault.services:
            self.clients[service].fix(fault.id, fixed)

    def clear(self, fault_id: str | None = None, *, missing_ok: bool = True) -> list[str]:
        """Clear one fault (or all of them); returns the ids that were cleared. A fault no
        service holds is nothing to clear, or, with missing_ok=False, the services' 404
        (FaultAdminError), as `fix` gives: labs and drills clear what may be gone already,
        a facilitator naming a fault that is not injected has made a mistake."""
        if fault_id is not None:
            fault = catalogue.get(fault_id)
            held, missing = False, None
            for service in fault.services:
                try:
                    self.clients[service].clear(fault.id)
                    held = True
                except FaultAdminError as exc:
                    if exc.status != 404:
                        raise
                    missing = exc
            if not held and missing is not None and not missing_ok:
                raise missing
            return [fault.id] if held else []
        cleared: set[str] = set()
        for client in self.clients.values():
            cleared.update(client.clear())
        return sorted(cleared)

    def status(self) -> dict[str, list[dict[str, Any]]]:
        """The faults each service holds now."""
        return {name: client.list() for name, client in self.clients.items()}

    def audit(self) -> list[dict[str, Any]]:
        """Every service's audit entries, oldest first, each with its `service`: a fault
        that lives in two services is injected, fixed and cleared in each."""
        entries = [
            {**entry, "service": name}
            for name, client in self.clients.items()
            for entry in client.audit()
        ]
        return sorted(entries, key=lambda entry: entry["time"])  # RFC 3339 UTC: sorts as text


__all__ = ["FaultSpecError", "Overrides", "StackFaults", "build_spec"]
