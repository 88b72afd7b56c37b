"""Counting outcomes while a run goes on, and the summary a run returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from sample_app.traffic.journal import Outcome


@dataclass(frozen=True)
class TrafficSummary:
    total: int  # requests that ended, answered or not
    by_status: dict[int, int]  # answered requests by HTTP status
    transport_errors: int  # no answer: refused, reset, timed out
    errors: int  # 5xx plus transport errors
    cancelled: int  # still in flight when the run stopped; not counted in total
    by_persona: dict[str, int]
    by_route: dict[str, int]
    by_tenant: dict[str, int]
    errors_by_tenant: dict[str, int]
    visits: int  # visits started
    elapsed_s: float

    @property
    def rate(self) -> float:
        """The achieved rate: requests ended per second of the run."""
        return self.total / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "total": self.total,
            "rate": round(self.rate, 2),
            "elapsed_s": round(self.elapsed_s, 3),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "transport_errors": self.transport_errors,
            "errors": self.errors,
            "cancelled": self.cancelled,
            "visits": self.visits,
            "by_persona": self.by_persona,
            "by_route": self.by_route,
            "by_tenant": self.by_tenant,
            "errors_by_tenant": self.errors_by_tenant,
        }


def status_line(tally: Tally, elapsed_s: float) -> str:
    """One line for a person watching: requests, rate, statuses, errors."""
    statuses = " ".join(f"{code}:{n}" for code, n in sorted(tally.by_status.items()))
    if tally.transport_errors:
        statuses = f"{statuses} no-answer:{tally.transport_errors}".strip()
    rate = tally.total / elapsed_s if elapsed_s > 0 else 0.0
    return (
        f"{tally.total} requests  {rate:.1f}/s  [{statuses or '-'}]  "
        f"errors {tally.errors}  {elapsed_s:.1f} s"
    )


@dataclass
class Tally:
    """The running counts; read by the progress line, frozen into a TrafficSummary."""

    by_status: Counter[int] = field(default_factory=Counter)
    by_persona: Counter[str] = field(default_factory=Counter)
    by_route: Counter[str] = field(default_factory=Counter)
    by_tenant: Counter[str] = field(default_factory=Counter)
    errors_by_tenant: Counter[str] = field(default_factory=Counter)
    total: int = 0
    transport_errors: int = 0
    errors: int = 0
    cancelled: int = 0
    visits: int = 0

    def record(self, outcome: Outcome) -> None:
        if outcome.cancelled:
            self.cancelled += 1
            return
        self.total += 1
        if outcome.status is None:
            self.transport_errors += 1
        else:
            self.by_status[outcome.status] += 1
        self.by_persona[outcome.persona] += 1
        self.by_route[outcome.route] += 1
        self.by_tenant[outcome.tenant] += 1
        if outcome.failed:
            self.errors += 1
            self.errors_by_tenant[outcome.tenant] += 1

    def freeze(self, elapsed_s: float) -> TrafficSummary:
        return TrafficSummary(
            total=self.total,
            by_status=dict(self.by_status),
            transport_errors=self.transport_errors,
            errors=self.errors,
            cancelled=self.cancelled,
            by_persona=dict(self.by_persona.most_common()),
            by_route=dict(self.by_route.most_common()),
            by_tenant=dict(self.by_tenant.most_common()),
            errors_by_tenant=dict(self.errors_by_tenant.most_common()),
            visits=self.visits,
            elapsed_s=elapsed_s,
        )
