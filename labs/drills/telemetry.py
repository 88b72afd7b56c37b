"""What a drill reads from the traces: is the system healthy again, and what did the
incident cost (tenants, distinct users, errors, latency before and during)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from labs.drills.scenario import Scenario
from labs.drills.words import say
from labs.solvers import distinct_users
from o11ykit.backends.jaeger_query import JaegerQuery
from sample_app.faults import signals

EDGE = {"kind": "server"}
MIN_SAMPLES = 10


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


@dataclass(frozen=True)
class Health:
    healthy: bool
    samples: int
    error_rate: float | None
    p95_ms: float | None
    cause_signal: str

    def describe(self, language: str = "en") -> str:
        if self.error_rate is None:
            return say(language, "not_enough_traffic", samples=self.samples)
        return say(
            language,
            "health",
            error_rate=f"{self.error_rate:.1%}",
            p95=f"{self.p95_ms:.0f}",
            samples=self.samples,
            cause=say(language, self.cause_signal),  # gone, still present or unknown
        )


def health(query: JaegerQuery, scenario: Scenario, end: datetime, window_s: float) -> Health:
    """Recovery is judged from telemetry, never from the fault switch."""
    start = end - timedelta(seconds=window_s)
    answer = query.breakdown("service.name", start=start, end=end, service="gateway", where=EDGE)
    groups = answer.get("groups") or []
    if not groups or groups[0]["count"] < MIN_SAMPLES:
        return Health(False, groups[0]["count"] if groups else 0, None, None, "unknown")
    edge = groups[0]
    limits = scenario.recovery
    causes = [signals.measure(query, s, start, end) for s in scenario.root_fault.signals]
    cause_gone = all(not m.present for m in causes)
    healthy = (
        edge["errorRate"] <= limits.error_rate and edge["p95Ms"] <= limits.p95_ms and cause_gone
    )
    return Health(
        healthy,
        edge["count"],
        edge["errorRate"],
        edge["p95Ms"],
        "gone" if cause_gone else "still present",
    )


@dataclass(frozen=True)
class Impact:
    tenants: list[str]
    distinct_users: int
    user_attribute: str
    errors: int
    requests: int
    p50_before_ms: float | None
    p95_before_ms: float | None
    p50_during_ms: float | None
    p95_during_ms: float | None


def _latency(
    query: JaegerQuery, start: datetime, end: datetime
) -> tuple[float | None, float | None]:
    groups = (
        query.breakdown("service.name", start=start, end=end, service="gateway", where=EDGE).get(
            "groups"
        )
        or []
    )
    return (groups[0]["p50Ms"], groups[0]["p95Ms"]) if groups else (None, None)


def impact(query: JaegerQuery, incident: tuple[datetime, datetime], before: datetime) -> Impact:
    """The incident's cost as the edge saw it: failed requests, by tenant and by user."""
    start, end = incident
    failing = {**EDGE, "status": "error"}
    tenants = query.breakdown(
        "tenant.id", start=start, end=end, service="gateway", where=failing, limit=1000
    )
    attribute, users = distinct_users(query, start, end, service="gateway", where=failing)
    total = query.breakdown("service.name", start=start, end=end, service="gateway", where=EDGE)
    p50_before, p95_before = _latency(query, before, start)
    p50_during, p95_during = _latency(query, start, end)
    return Impact(
        tenants=sorted(g["value"] for g in tenants.get("groups") or [] if g["value"]),
        distinct_users=users,
        user_attribute=attribute or "enduser.id",
        errors=int(tenants.get("total") or 0),
        requests=int(total.get("total") or 0),
        p50_before_ms=p50_before,
        p95_before_ms=p95_before,
        p50_during_ms=p50_during,
        p95_during_ms=p95_during,
    )
