"""The sample system's faults honour the scope they are injected with, or refuse it.

Its code asks the engine through Switches: a ramp grows the share of calls that take
the bug; the kinds whose cause lies outside requests (planted data, a dropped index, a
background job) refuse the scope fields they cannot honour, and their fix path depends
only on whether the fault is injected and fixed.
"""

from __future__ import annotations

import pytest

from o11ykit.faults import FaultEngine, FaultSpecError
from o11ykit.faults.matching import could_match, route_matcher
from sample_app import dataset
from sample_app.control import Overrides, build_spec
from sample_app.faults import catalogue
from sample_app.runtime import Switches, kind_specs
from tests.support.fake_clock import Clock

KEYS = [f"{i:032x}" for i in range(2000)]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> FaultEngine:
    return FaultEngine(kinds=kind_specs(catalogue.KINDS), tenants=dataset.shop_slugs(), clock=clock)


def share_broken(switches: Switches, kind: str) -> set[str]:
    return {k for k in KEYS if switches.broken(kind, tenant="acme", user="u", key=k)}


def test_a_ramp_grows_the_share_of_calls_that_take_the_bug(engine, clock):
    switches = Switches(engine)
    engine.inject(build_spec(catalogue.get("n-plus-one"), Overrides(ramp_s=600)))
    clock.now += 1
    assert len(share_broken(switches, "lazy_items")) / len(KEYS) < 0.01
    clock.now += 299
    halfway = share_broken(switches, "lazy_items")
    assert len(halfway) / len(KEYS) == pytest.approx(0.5, abs=0.04)
    clock.now += 150
    assert halfway <= share_broken(switches, "lazy_items")  # who was hit stays hit
    clock.now += 150
    assert len(share_broken(switches, "lazy_items")) == len(KEYS)
    engine.fix("n-plus-one")
    assert not share_broken(switches, "lazy_items")


@pytest.mark.parametrize(
    ("fault_id", "overrides", "field"),
    [
        ("null-currency", Overrides(percent=50), "percent"),
        ("null-currency", Overrides(users=["globex-c00001"]), "users"),
        ("null-currency", Overrides(routes=["/products"]), "routes"),
        ("null-currency", Overrides(onset_s=600), "onset_s"),
        ("null-currency", Overrides(ramp_s=60), "ramp_s"),
        ("null-currency", Overrides(versions=["1.8.0"]), "versions"),
        ("missing-index", Overrides(tenants=["acme"]), "tenants"),
        ("missing-index", Overrides(percent=10), "percent"),
        ("counter-lock", Overrides(routes=["/orders"]), "routes"),
        ("counter-lock", Overrides(users=["hooli-c00001"]), "users"),
        # One buffer for the service: views outside the scope would trim it again.
        ("creeping-buffer", Overrides(tenants=["acme"]), "tenants"),
        ("creeping-buffer", Overrides(percent=50), "percent"),
        ("creeping-buffer", Overrides(ramp_s=60), "ramp_s"),
    ],
)
def test_a_scope_a_kind_cannot_honour_is_refused_at_injection(engine, fault_id, overrides, field):
    fault = catalogue.get(fault_id)
    message = rf"scope.{field}: kind {fault.kind} cannot honour it"
    with pytest.raises(FaultSpecError, match=message):
        build_spec(fault, overrides)
    spec = build_spec(fault)
    spec["scope"] = {**spec["scope"], **_as_scope(overrides)}
    with pytest.raises(FaultSpecError, match=message):
        engine.inject(spec)
    assert engine.faults() == []


def _as_scope(overrides: Overrides) -> dict:
    scope = {k: list(getattr(overrides, k)) for k in ("tenants", "users", "routes", "versions")}
    scope = {k: v for k, v in scope.items() if v}
    for name in ("percent", "onset_s", "ramp_s"):
        if getattr(overrides, name) is not None:
            scope[name] = getattr(overrides, name)
    return scope


def test_the_scope_such_kinds_honour_is_still_accepted(engine):
    spec = build_spec(catalogue.get("null-currency"), Overrides(tenants=["acme", "globex"]))
    assert engine.inject(spec).scope.tenants == ("acme", "globex")
    engine.inject(build_spec(catalogue.get("missing-index")))
    engine.inject(build_spec(catalogue.get("counter-lock")))


def test_null_currency_is_fixed_for_every_request_of_its_tenants(engine, clock):
    switches = Switches(engine)
    assert not switches.fixed("null_currency", tenant="globex")  # nothing injected
    engine.inject(build_spec(catalogue.get("null-currency")))
    assert not switches.fixed("null_currency", tenant="globex")
    engine.fix("null-currency")
    clock.now += 3600
    # No request context, no key, any user: the fix depends on the switch alone.
    assert switches.fixed("null_currency", tenant="globex")
    assert not switches.fixed("null_currency", tenant="acme")  # its data was never broken
    engine.fix("null-currency", False)
    assert not switches.fixed("null_currency", tenant="globex")
    engine.fix("null-currency")
    engine.clear("null-currency")
    assert not switches.fixed("null_currency", tenant="globex")
    assert not Switches(None).fixed("null_currency", tenant="globex")


@pytest.mark.parametrize(
    ("route", "template", "matches"),
    [
        ("/products", "/products/{product_id}", True),  # a prefix: every path under it
        ("/products/42", "/products/{product_id}", True),  # a parameter takes any segment
        ("/products/", "/products", True),
        ("/product", "/products/{product_id}", False),  # segment-wise, not by characters
        ("/products/42/reviews", "/products/{product_id}", False),  # deeper than the route
        ("/products/*", "/products/{product_id}", True),
        ("/products/*", "/products", False),  # `*` is one segment, no fewer
        ("/prod*", "/products", True),
        ("/prod*", "/products/{product_id}", False),
        ("/*/42", "/products/{product_id}", True),
        ("/files/a/b", "/files/{rest:path}", True),  # a path parameter: any depth
        ("/api/**", "/api/a/{b}", True),
        ("/api/**", "/x/{y}", True),  # `**` against parameters: unsure, so never refused
        ("/api/**", "/health", False),  # a route without parameters is one path: exact
        ("/", "/anything/{x}", True),
        ("/x", "/", False),
        ("/*", "/", True),  # `*` may be empty
    ],
)
def test_could_match_tells_a_scope_route_that_no_path_of_a_route_can_take(route, template, matches):
    assert could_match(route, template) is matches
    # A route without parameters is a path itself: route_matcher, which matches requests,
    # agrees.
    if "{" not in template:
        assert route_matcher([route])(template) is matches


def test_a_version_none_of_the_fault_s_processes_runs_is_refused():
    fault = catalogue.get("empty-search")  # catalog 1.7.3 and its canary 1.8.0
    assert build_spec(fault, Overrides(versions=["1.8.0"]))["scope"]["versions"] == ["1.8.0"]
    with pytest.raises(FaultSpecError) as refused:
        build_spec(fault, Overrides(versions=["1.8.0", "1.9.0"]))
    assert str(refused.value) == (
        "scope.versions: '1.9.0' is not a version of catalog, catalog-canary, where"
        " empty-search is injected; accepted: 1.7.3, 1.8.0"
    )
