"""The invoice batch job: marks a shop's orders as invoiced, in the background.

Its first version updated the shop's counter row and then did its work inside the same
transaction, holding the row (Postgres) or the whole database (SQLite) for the length of
the batch; checkouts of the shop update that row too and wait behind it.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry import trace
from sqlalchemy import Engine, text

import o11ykit

log = logging.getLogger("sample_app.orders.invoicing")
tracer = trace.get_tracer("sample_app.orders")
_MARK = text("UPDATE shop_counters SET invoiced_through = next_number - 1 WHERE shop = :shop")


def invoice(engine: Engine, shop: str, hold_s: float, *, in_transaction: bool) -> None:
    with o11ykit.context(tenant_id=shop), tracer.start_as_current_span("invoice batch"):
        if in_transaction:
            with engine.begin() as connection:
                connection.execute(_MARK, {"shop": shop})
                time.sleep(hold_s)  # rendering and sending the invoices, lock held
        else:
            with engine.begin() as connection:
                connection.execute(_MARK, {"shop": shop})
            time.sleep(hold_s)


def run_forever(engine: Engine, switches, stop: threading.Event) -> None:
    """Runs the job for every shop the counter-lock fault names, at its pace."""
    next_run: dict[str, float] = {}
    while not stop.wait(0.1):
        for fault in switches.injected("counter_lock_job"):
            params = fault.get("params", {})
            every = float(params.get("every_s", 2.0))
            hold = int(params.get("hold_ms", 1500)) / 1000
            for shop in fault.get("scope", {}).get("tenants") or ():
                now = time.monotonic()
                if next_run.get(shop, 0.0) > now:
                    continue
                next_run[shop] = now + every
                try:
                    invoice(engine, shop, hold, in_transaction=not fault.get("fixed"))
                except Exception:
                    log.exception("invoice batch for %s failed", shop)
