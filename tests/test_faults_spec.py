"""Fault specs: parsed strictly, and every refusal names the field and what it accepts."""

from __future__ import annotations

import dataclasses

import pytest

from o11ykit.faults import GENERIC_KINDS, FaultSpec, FaultSpecError, KindSpec, ParamSpec, Scope

N_PLUS_ONE = KindSpec(
    "n_plus_one",
    {
        "queries": ParamSpec(int, None, 1, 500, "extra queries per item"),
        "log": ParamSpec(bool, False),
    },
    "one query per item instead of one join",
)
KINDS = {**GENERIC_KINDS, "n_plus_one": N_PLUS_ONE}


def parse(data, **kw):
    return FaultSpec.from_dict(data, kinds=KINDS, **kw)


def test_a_full_spec_round_trips():
    data = {
        "id": "slow-orders-1",
        "kind": "latency",
        "params": {"ms": 250, "jitter_ms": 10},
        "scope": {
            "tenants": ["acme"],
            "users": ["u-1", "u-2"],
            "routes": ["/api/orders", "/api/products/*"],
            "versions": ["1.4.2"],
            "percent": 25,
            "seed": 7,
            "onset_s": 5,
            "ramp_s": 60,
        },
        "fixed": True,
    }
    spec = parse(data)
    assert spec == FaultSpec(
        id="slow-orders-1",
        kind="latency",
        params={"ms": 250, "jitter_ms": 10},
        scope=Scope(
            tenants=("acme",),
            users=("u-1", "u-2"),
            routes=("/api/orders", "/api/products/*"),
            versions=("1.4.2",),
            percent=25.0,
            seed=7,
            onset_s=5.0,
            ramp_s=60.0,
        ),
        fixed=True,
    )
    assert parse(spec.to_dict()) == spec
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.kind = "error"  # type: ignore[misc]


def test_the_smallest_spec_means_everyone_always():
    spec = parse({"id": "e", "kind": "error"})
    assert spec.scope == Scope()
    assert spec.params == {} and spec.fixed is False
    assert spec.to_dict()["scope"]["percent"] == 100.0


def test_numbers_given_as_text_are_converted_to_the_params_type():
    # What the CLI sends: `--param ms=300`.
    assert parse({"id": "l", "kind": "latency", "params": {"ms": "300"}}).params == {"ms": 300}
    spec = parse({"id": "n", "kind": "n_plus_one", "params": {"queries": "5", "log": "true"}})
    assert spec.params == {"queries": 5, "log": True}


@pytest.mark.parametrize(
    ("data", "field", "accepted"),
    [
        ({"kind": "error"}, "id:", "a-z, 0-9 and '-'"),
        ({"id": "Bad_Id", "kind": "error"}, "id:", "a-z, 0-9 and '-'"),
        ({"id": "x" * 65, "kind": "error"}, "id:", "1 to 64"),
        ({"id": "a", "kind": "latncy"}, "kind:", "latency, error, exception, timeout, pool_hold"),
        ({"id": "a", "kind": "error", "colour": 1}, "colour", "id, kind, params, scope, fixed"),
        ({"id": "a", "kind": "error", "params": {"code": 500}}, "params.code", "status"),
        ({"id": "a", "kind": "error", "params": {"status": 404}}, "params.status", "500 to 599"),
        ({"id": "a", "kind": "error", "params": {"status": 500.5}}, "params.status", "whole"),
        ({"id": "a", "kind": "error", "params": {"status": True}}, "params.status", "500 to 599"),
        ({"id": "a", "kind": "latency", "params": {"ms": "fast"}}, "params.ms", "0 to 600000"),
        ({"id": "a", "kind": "latency", "params": {"ms": -1}}, "params.ms", "0 to 600000"),
        ({"id": "a", "kind": "exception", "params": {"message": 5}}, "params.message", "string"),
        ({"id": "a", "kind": "latency", "params": [1]}, "params:", "ms, jitter_ms"),
        ({"id": "a", "kind": "n_plus_one"}, "params.queries", "required"),
        ({"id": "a", "kind": "error", "scope": {"percent": 101}}, "scope.percent", "0 to 100"),
        ({"id": "a", "kind": "error", "scope": {"percent": -1}}, "scope.percent", "0 to 100"),
        ({"id": "a", "kind": "error", "scope": {"percent": "all"}}, "scope.percent", "0 to 100"),
        ({"id": "a", "kind": "error", "scope": {"onset_s": -1}}, "scope.onset_s", ">= 0"),
        ({"id": "a", "kind": "error", "scope": {"ramp_s": -0.5}}, "scope.ramp_s", ">= 0"),
        ({"id": "a", "kind": "error", "scope": {"seed": 1.5}}, "scope.seed", "whole number"),
        ({"id": "a", "kind": "error", "scope": {"tenant": ["x"]}}, "scope: unknown", "tenants"),
        ({"id": "a", "kind": "error", "scope": {"tenants": [""]}}, "scope.tenants", "non-empty"),
        ({"id": "a", "kind": "error", "scope": {"users": [7]}}, "scope.users", "non-empty"),
        ({"id": "a", "kind": "error", "scope": {"routes": ["api"]}}, "scope.routes", "'/'"),
        ({"id": "a", "kind": "error", "scope": []}, "scope:", "tenants, users, routes"),
        ({"id": "a", "kind": "error", "fixed": "yes"}, "fixed:", "true or false"),
        ([1, 2], "JSON object", "id, kind, params, scope, fixed"),
    ],
)
def test_every_refusal_names_the_field_and_what_it_accepts(data, field, accepted):
    with pytest.raises(FaultSpecError) as caught:
        parse(data)
    message = str(caught.value)
    assert field in message and accepted in message, message
    assert isinstance(caught.value, ValueError)


def test_the_id_the_audit_log_is_served_under_is_reserved():
    """A fault `audit` was injected, but GET or DELETE /_o11ykit/faults/audit reaches the
    audit log: it could never be shown or cleared."""
    with pytest.raises(FaultSpecError) as caught:
        parse({"id": "audit", "kind": "error"})
    message = str(caught.value)
    assert message.startswith("id: 'audit' is reserved"), message
    assert "/_o11ykit/faults/audit" in message and "accepted: any other" in message
    assert parse({"id": "audit-slow", "kind": "error"}).id == "audit-slow"


def test_tenants_and_users_are_checked_only_against_known_ones_when_given():
    data = {"id": "a", "kind": "error", "scope": {"tenants": ["initech"], "users": ["u-9"]}}
    assert parse(data).scope.tenants == ("initech",)
    with pytest.raises(
        FaultSpecError, match=r"scope.tenants: unknown tenant 'initech'; accepted: acme, globex"
    ):
        parse(data, tenants={"globex", "acme"})
    with pytest.raises(FaultSpecError, match=r"scope.users: unknown user 'u-9'; accepted: u-1"):
        parse(data, tenants={"initech"}, users=["u-1"])


def test_a_kind_the_service_cannot_offer_is_refused_with_the_reason():
    kinds = {
        **KINDS,
        "pool_hold": dataclasses.replace(GENERIC_KINDS["pool_hold"], unavailable="no engine"),
    }
    with pytest.raises(
        FaultSpecError, match="kind: pool_hold is not available in this service: no engine"
    ):
        FaultSpec.from_dict({"id": "p", "kind": "pool_hold"}, kinds=kinds)


def test_scope_fields_a_kind_cannot_honour_are_refused_naming_field_and_kind():
    backfill = KindSpec(
        "backfill", help="rows written for whole tenants", scope_fields=("tenants",)
    )
    kinds = {**KINDS, "backfill": backfill}
    spec = {"id": "b", "kind": "backfill", "scope": {"tenants": ["acme"]}}
    assert FaultSpec.from_dict(spec, kinds=kinds).scope.tenants == ("acme",)
    for name, value in [
        ("users", ["u-1"]),
        ("routes", ["/api/orders"]),
        ("versions", ["2.0"]),
        ("percent", 50),
        ("seed", 3),
        ("onset_s", 60),
        ("ramp_s", 300),
    ]:
        refused = {**spec, "scope": {"tenants": ["acme"], name: value}}
        with pytest.raises(
            FaultSpecError,
            match=rf"scope.{name}: kind backfill cannot honour it; "
            r"the scope fields it honours: tenants",
        ):
            FaultSpec.from_dict(refused, kinds=kinds)
    # The defaults are no scope at all, so naming them is not refused.
    FaultSpec.from_dict({**spec, "scope": {"percent": 100, "ramp_s": 0}}, kinds=kinds)
    whole = {**KINDS, "schema": KindSpec("schema", scope_fields=())}
    with pytest.raises(FaultSpecError, match=r"scope.tenants: kind schema .* none"):
        FaultSpec.from_dict({"id": "s", "kind": "schema", "scope": {"tenants": ["a"]}}, kinds=whole)
    assert backfill.describe()["scope_fields"] == ["tenants"]
    assert "scope_fields" not in N_PLUS_ONE.describe()  # None: every field


def test_generic_kinds_and_their_params():
    assert list(GENERIC_KINDS) == ["latency", "error", "exception", "timeout", "pool_hold"]
    assert set(GENERIC_KINDS["latency"].params) == {"ms", "jitter_ms"}
    assert set(GENERIC_KINDS["error"].params) == {"status"}
    assert set(GENERIC_KINDS["exception"].params) == {"message"}
    assert set(GENERIC_KINDS["timeout"].params) == {"after_s"}
    assert set(GENERIC_KINDS["pool_hold"].params) == {"connections", "hold_s"}
    for kind in GENERIC_KINDS.values():
        described = kind.describe()
        assert described["help"]
        assert all(p["help"] and p["default"] is not None for p in described["params"].values())
