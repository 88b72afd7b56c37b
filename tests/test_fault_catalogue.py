"""The catalogue is consistent: every fault defined once, every switch read by real code,
every scope and focus naming things that exist, and the docs generated from it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from o11ykit.faults.kinds import GENERIC_KINDS
from sample_app import dataset, seed, topology
from sample_app.control import Overrides, build_spec
from sample_app.faults import catalogue, reference
from sample_app.traffic import PERSONAS

ROOT = Path(__file__).resolve().parent.parent


def test_at_least_twelve_faults_of_distinct_classes():
    classes = [fault.fault_class for fault in catalogue.FAULTS]
    assert len(catalogue.FAULTS) >= 12
    assert len(set(classes)) == len(classes)
    assert len(catalogue.BY_ID) == len(catalogue.FAULTS)


@pytest.mark.parametrize("fault", catalogue.FAULTS, ids=lambda f: f.id)
def test_each_fault_names_things_that_exist(fault: catalogue.Fault):
    assert set(fault.services) <= set(topology.BY_NAME)
    assert fault.kind in catalogue.KINDS_BY_NAME or fault.kind in GENERIC_KINDS
    if fault.kind in catalogue.KINDS_BY_NAME:
        for service in fault.services:
            assert fault.kind in {k.name for k in catalogue.kinds_of(service)}, service
    if fault.focus.tenant:
        dataset.shop(fault.focus.tenant)
    assert set(fault.focus.personas) <= set(PERSONAS)
    for signal in fault.signals:
        assert signal.service in {s.service_name for s in topology.SERVICES}
    assert fault.story and fault.mechanism and fault.fix and fault.mitigation
    build_spec(fault)  # the default scope is a valid engine spec


@pytest.mark.parametrize("kind", catalogue.KINDS, ids=lambda k: k.name)
def test_each_switch_is_read_by_its_service_code(kind: catalogue.Kind):
    code = "\n".join(
        p.read_text() for p in (ROOT / "sample_app/services" / kind.service).glob("*.py")
    )
    assert f'"{kind.name}"' in code, f"{kind.service} never asks about {kind.name}"


def test_the_heavy_user_fault_s_focus_is_the_heaviest_history_by_far():
    # Order history without its LIMIT is slow in proportion to a customer's orders: the
    # lab's answer (its focus user, a reseller) must be the heaviest user, not the shop's
    # most loyal ordinary customer. Until 2026-12-07 acme-c00000 held 22,000 orders.
    orders = Counter(order[2] for order, _ in seed._orders(now=0))
    focus = catalogue.BY_ID["heavy-user"].focus.user
    resellers = set(dataset.resellers())
    assert focus in resellers
    assert 4_400 <= orders[focus] <= 4_600  # "about 4,500", as the lab and the catalogue say
    longest_other = max(n for customer, n in orders.items() if customer not in resellers)
    assert min(orders[r] for r in resellers) >= 10 * longest_other


def test_bad_overrides_are_refused_with_the_accepted_values():
    fault = catalogue.get("null-currency")
    with pytest.raises(ValueError, match=r"percent.*0 to 100"):
        build_spec(fault, Overrides(percent=150))
    with pytest.raises(ValueError, match="unknown tenant 'nope'"):
        build_spec(fault, Overrides(tenants=["nope"]))
    with pytest.raises(ValueError, match="share"):
        build_spec(fault, Overrides(params={"share": 7}))
    with pytest.raises(KeyError, match="the catalogue has"):
        catalogue.get("no-such-fault")


def test_the_docs_table_is_generated_from_the_catalogue():
    assert (ROOT / "docs/fault-catalogue.md").read_text() == reference.render(), (
        "regenerate: python -m sample_app.faults.reference > docs/fault-catalogue.md"
    )
