"""Each catalogue fault's contract, on a real stack (five services and the local store as
processes on loopback), on SQLite and on Postgres (those involving a database): with the
default traffic (restricted to the personas that reach the fault's code path, half on its
focus), the documented signal is absent before, present with the fault, and gone after
the fix switch."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.control import StackFaults
from sample_app.faults import catalogue
from sample_app.faults.contract import play
from sample_app.services.orders.models import CUSTOMER_MAX_LENGTH
from sample_app.stack import Stack, StackConfig
from tests.support.sample_stack import postgres_unavailable, postgres_url, seeded_copy

# serial: each fault's signal is a latency or error rate measured on the running system.
pytestmark = [pytest.mark.integration, pytest.mark.serial]


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


# Faults whose mechanism involves no database: a provider's latency, a timeout with retries,
# a decommissioned address, a canary's formatter, a buffer in memory. Which database the
# services use changes nothing in how they behave, so they run on SQLite alone (~35 s
# less on Postgres).
NO_DATABASE_IN_MECHANISM = {
    "slow-provider",
    "retry-storm",
    "dependency-down",
    "bad-canary",
    "creeping-buffer",
}


def test_the_faults_named_as_involving_no_database_exist():
    assert set(catalogue.BY_ID) >= NO_DATABASE_IN_MECHANISM


@pytest.mark.parametrize("fault_id", list(catalogue.BY_ID))
def test_the_signal_appears_with_the_fault_and_goes_with_its_fix(stack: Stack, fault_id: str):
    if fault_id in NO_DATABASE_IN_MECHANISM and stack.config.database_url:
        pytest.skip(f"{fault_id} runs on SQLite only: its mechanism involves no database")
    fault = catalogue.get(fault_id)
    phases = play(
        fault, StackFaults.from_state(stack.state()), JaegerQuery(stack.query_url),
        stack.gateway_url, seed=sum(map(ord, fault_id)),
    )  # fmt: skip
    report = "\n".join(phase.describe() for phase in phases.values())
    assert all(m.absent for m in phases["before"].measurements), report
    assert all(m.present for m in phases["with fault"].measurements), report
    assert all(m.absent for m in phases["after fix"].measurements), report


# ---- what must not differ between the databases ----------------------------------------------


def _checkout_as(stack: Stack, customer: str) -> httpx.Response:
    with httpx.Client(trust_env=False, timeout=10) as client:
        return client.post(
            f"{stack.gateway_url}/api/checkout",
            json={"items": [{"product_id": 1401, "quantity": 1}]},
            headers={"X-Tenant-ID": "globex", "X-User-ID": customer},
        )


def test_an_over_long_customer_is_refused_before_the_card_is_charged(stack: Stack):
    """SQLite kept a 61-character customer that Postgres refused, and Postgres refused it
    only when the order was written, after payments had charged the card."""
    refused = _checkout_as(stack, "globex-" + "x" * (CUSTOMER_MAX_LENGTH - 6))
    assert refused.status_code == 422, refused.text
    assert f"at most {CUSTOMER_MAX_LENGTH} characters" in refused.text
    longest = _checkout_as(stack, "globex-" + "x" * (CUSTOMER_MAX_LENGTH - 7))
    assert longest.status_code in (201, 402), longest.text  # 402: a declined card
