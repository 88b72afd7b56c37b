"""Each catalogue fault's contract, on a real stack (five services and the local store as
processes on loopback), on SQLite and on Postgres: with the default traffic (restricted
to the personas that reach the fault's code path, half on its focus), the documented
signal is absent before, present with the fault, and gone after the fix switch."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.control import StackFaults
from sample_app.faults import catalogue
from sample_app.faults.contract import play
from sample_app.stack import Stack, StackConfig
from tests.support.sample_stack import postgres_unavailable, postgres_url, seeded_copy

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request, seeded_template, tmp_path_factory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp(f"contract-{request.param}")
    if request.param == "postgres":
        reason = postgres_unavailable()
        if reason:
            pytest.skip(f"Postgres contract tests did not run: {reason}")
        config = StackConfig(data_dir=directory, database_url=postgres_url(), free_ports=True)
    else:
        config = StackConfig(data_dir=seeded_copy(seeded_template, directory), free_ports=True)
    running = Stack(config).start(progress=lambda _: None)
    try:
        yield running
    finally:
        running.stop()


@pytest.mark.parametrize("fault_id", list(catalogue.BY_ID))
def test_the_signal_appears_with_the_fault_and_goes_with_its_fix(stack: Stack, fault_id: str):
    fault = catalogue.get(fault_id)
    phases = play(
        fault, StackFaults.from_state(stack.state()), JaegerQuery(stack.query_url),
        stack.gateway_url, seed=sum(map(ord, fault_id)),
    )  # fmt: skip
    report = "\n".join(phase.describe() for phase in phases.values())
    assert all(m.absent for m in phases["before"].measurements), report
    assert all(m.present for m in phases["with fault"].measurements), report
    assert all(m.absent for m in phases["after fix"].measurements), report
