"""A fault's contract, played on a running stack: the signal is absent before, present
with the fault, and gone after its fix switch. The contract tests and the stack benchmark
run this; it drives the default traffic generator, restricted to the personas that reach
the fault's code path and with half the visits on the fault's focus (shop or customer),
flowing while the signal is measured each second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.control import StackFaults
from sample_app.faults import catalogue, signals
from sample_app.traffic import BackgroundTraffic, TrafficConfig

POLL_S = 1.0
RATE = 40.0


@dataclass
class Phase:
    name: str
    measurements: list[signals.Measurement] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        lines = [f"{self.name} ({self.seconds:.1f} s):"]
        lines += [f"  {m.describe()}" for m in self.measurements]
        return "\n".join(lines)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def traffic_for(
    fault: catalogue.Fault, gateway_url: str, seed: int, seconds: float
) -> TrafficConfig:
    focus = fault.focus
    return TrafficConfig(
        base_url=gateway_url,
        rate=RATE,
        duration_s=seconds,
        seed=seed,
        personas=list(focus.personas) or None,
        focus_tenant=focus.tenant,
        focus_user=focus.user,
        focus_share=0.5 if focus.tenant else 0.0,
        concurrency=12,
    )


def observe(
    fault: catalogue.Fault,
    query: JaegerQuery,
    gateway_url: str,
    *,
    want: str,  # "present" or "absent"
    seed: int,
    max_s: float = 14.0,
    name: str = "",
) -> Phase:
    """Traffic flows while the signal is measured each second, until every signal of the
    fault is `want` or max_s passes."""
    phase = Phase(name or want)
    started = time.monotonic()
    window_start = _now() - timedelta(milliseconds=50)
    with BackgroundTraffic(traffic_for(fault, gateway_url, seed, max_s + 5)):
        while True:
            time.sleep(POLL_S)
            phase.measurements = [
                signals.measure(query, signal, window_start, _now()) for signal in fault.signals
            ]
            phase.seconds = time.monotonic() - started
            if all(getattr(m, want) for m in phase.measurements) or phase.seconds >= max_s:
                return phase


def play(
    fault: catalogue.Fault, faults: StackFaults, query: JaegerQuery, gateway_url: str, seed: int = 1
) -> dict[str, Phase]:
    """Before, with the fault, after its fix: the three phases of the contract."""
    phases = {"before": observe(fault, query, gateway_url, want="absent", seed=seed, name="before")}
    faults.inject(fault.id)
    try:
        phases["with fault"] = observe(
            fault, query, gateway_url, want="present", seed=seed + 1, name="with fault"
        )
        faults.fix(fault.id)
        time.sleep(fault.settle_s)
        phases["after fix"] = observe(
            fault, query, gateway_url, want="absent", seed=seed + 2, name="after fix"
        )
    finally:
        faults.clear(fault.id)
    return phases
