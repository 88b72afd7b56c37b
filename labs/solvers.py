"""One solver per lab: a program that answers the lab's question from telemetry alone.

Solvers read the traces through the same client learners' tools use (Jaeger API v3, and
the local store's breakdown); they know the question, never the catalogue or the fault
that was injected. Each returns the structured answer, or None when the traces show no
such problem, which is what the negative controls check.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import datetime
from typing import Any

from o11ykit.backends.jaeger_query import JaegerQuery, SpanView, Trace

Answer = dict[str, Any]
Solver = Callable[[JaegerQuery, datetime, datetime], "Answer | None"]
SERVER = {"kind": "server"}
MIN_SPANS = 5
# Groups a breakdown lists at most (the store's limit); the rest are counted, not listed.
GROUPS_READ = 1000


def _children(trace: Trace) -> dict[str | None, list[SpanView]]:
    found: dict[str | None, list[SpanView]] = defaultdict(list)
    for span in trace.spans:
        found[span.parent_span_id].append(span)
    return found


def _self_ms(span: SpanView, children: dict[str | None, list[SpanView]]) -> float:
    return span.duration_ms - sum(c.duration_ms for c in children.get(span.span_id, ()))


def _server_ancestor(span: SpanView, trace: Trace) -> SpanView | None:
    by_id = {s.span_id: s for s in trace.spans}
    current = by_id.get(span.parent_span_id or "")
    while current is not None and current.kind != "server":
        current = by_id.get(current.parent_span_id or "")
    return current


def _is_sql(span: SpanView) -> bool:
    return any(key.startswith("db.") for key in span.attributes)


def _breakdown(query: JaegerQuery, by: str, start: datetime, end: datetime, **kw: Any) -> dict:
    return query.breakdown(by, start=start, end=end, limit=GROUPS_READ, **kw)


def _groups(query: JaegerQuery, by: str, start: datetime, end: datetime, **kw: Any) -> list[dict]:
    return _breakdown(query, by, start, end, **kw).get("groups") or []


def first_trace(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """The services one checkout crosses, and the span that spends most of its time itself."""
    traces = query.find_traces(
        "gateway", "POST /api/checkout", start=start, end=end, search_depth=20
    )
    complete = [t for t in traces if len({s.service for s in t.spans}) >= 2 and not t.errors]
    if not complete:
        return None
    trace = max(complete, key=lambda t: len(t.spans))
    children = _children(trace)
    slowest = max(trace.spans, key=lambda s: _self_ms(s, children))
    return {
        "service": slowest.service,
        "operation": slowest.name,
        "count": len({s.service for s in trace.spans}),
    }


def failing_tenant(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """The tenant whose edge requests fail far more than the rest, where, and how many users."""
    groups = [
        g
        for g in _groups(query, "tenant.id", start, end, service="gateway", where=SERVER)
        if g["value"] and g["count"] >= MIN_SPANS
    ]
    if not groups:
        return None
    worst = max(groups, key=lambda g: g["errorRate"])
    others = [g["errorRate"] for g in groups if g is not worst]
    if (
        worst["errors"] < 3
        or worst["errorRate"] < 0.1
        or worst["errorRate"] < 4 * max(others, default=0)
    ):
        return None
    tenant = worst["value"]
    culprits: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for trace in query.find_traces(
        "gateway", start=start, end=end, search_depth=50, attributes={"tenant.id": tenant}
    ):
        errors = [s for s in trace.spans if s.status == "error" and s.kind == "server"]
        if errors:
            deepest = max(errors, key=lambda s: s.start_ns)
            culprits[deepest.service] += 1
            types[str(deepest.attributes.get("error.type"))] += 1
    if not culprits:
        return None
    failed_at_the_edge = {**SERVER, "tenant.id": tenant, "status": "error"}
    _, users = distinct_users(query, start, end, service="gateway", where=failed_at_the_edge)
    lookup_error = types.most_common(1)[0][0] in ("KeyError", "LookupError", "TypeError")
    return {
        "service": culprits.most_common(1)[0][0],
        "attribute": {"tenant.id": tenant},
        "fault_class": "tenant-scoped data error" if lookup_error else "tenant-scoped error",
        "count": users,
    }


def distinct_users(
    query: JaegerQuery, start: datetime, end: datetime, **kw: Any
) -> tuple[str | None, int]:
    """The attribute that tells the spans' users apart, and how many distinct users: by
    enduser.id, or by enduser.pseudo.id on a stack that pseudonymises
    (O11YKIT_PSEUDONYM_KEY), where spans carry no enduser.id at all; (None, 0) for none."""
    for key in ("enduser.id", "enduser.pseudo.id"):
        answer = _breakdown(query, key, start, end, **kw)
        users = [g for g in answer.get("groups") or [] if g["value"]]
        if users:
            # Past the limit, the users the answer counts without listing them (a tenant
            # with thousands of customers, in a lab left running for an hour).
            return key, len(users) + int(answer.get("moreGroups") or 0)
    return None, 0


def _repeated_statements(trace: Trace) -> tuple[SpanView | None, int]:
    """The server span whose SQL repeats one statement the most, and how often."""
    best, most = None, 0
    for span in trace.spans:
        if not _is_sql(span):
            continue
        parent = _server_ancestor(span, trace)
        if parent is None:
            continue
        statement = span.attributes.get("db.query.text", span.name)
        count = sum(
            1
            for s in trace.spans
            if _is_sql(s)
            and s.attributes.get("db.query.text", s.name) == statement
            and _server_ancestor(s, trace) is parent
        )
        if count > most:
            best, most = parent, count
    return best, most


def n_plus_one(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    best: tuple[SpanView | None, int] = (None, 0)
    for service in query.services():
        for trace in query.find_traces(service, start=start, end=end, search_depth=40):
            found = _repeated_statements(trace)
            if found[1] > best[1]:
                best = found
    span, count = best
    if span is None or count < 5:
        return None
    return {
        "service": span.service,
        "operation": span.name,
        "fault_class": "N+1 queries",
        "count": count,
    }


def slow_query(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """The SQL statement that is slow on its own (one call per request, many milliseconds)."""
    # With an index, a small shop's report is fast; without one every report scans the
    # whole table, so even the fastest calls are slow: the floor is the tell, not the mean.
    durations: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for service in query.services():
        for operation in {o.name for o in query.operations(service, "server")}:
            traces = query.find_traces(service, operation, start=start, end=end, search_depth=30)
            for trace in traces:
                for span in trace.spans:
                    parent = _server_ancestor(span, trace) if _is_sql(span) else None
                    if parent is not None and parent.name == operation:
                        table = str(span.attributes.get("db.collection.name", ""))
                        durations[(span.service, operation, table)].append(span.duration_ms)
    floors = {k: sorted(v)[len(v) // 5] for k, v in durations.items() if len(v) >= MIN_SPANS}
    if not floors:
        return None
    (service, operation, table), floor = max(floors.items(), key=lambda item: item[1])
    if floor < 6.0:
        return None
    return {
        "service": service,
        "operation": operation,
        "attribute": {"db.collection.name": table},
        "fault_class": "missing index",
    }


def bad_deploy(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    for service in query.services():
        versions = [
            g
            for g in _groups(query, "service.version", start, end, service=service, where=SERVER)
            if g["count"] >= MIN_SPANS
        ]
        if len(versions) < 2:
            continue
        worst = max(versions, key=lambda g: g["errorRate"])
        rest = max(g["errorRate"] for g in versions if g is not worst)
        if worst["errors"] >= 3 and worst["errorRate"] >= max(0.1, 3 * rest):
            tenants = _groups(
                query,
                "tenant.id",
                start,
                end,
                service=service,
                where={**SERVER, "service.version": worst["value"], "status": "error"},
            )
            return {
                "service": service,
                "version": worst["value"],
                "fault_class": "bad deploy",
                "count": len([t for t in tenants if t["value"]]),
            }
    return None


def retry_storm(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """Several identical outbound calls under one server span: a client retrying."""
    best: tuple[SpanView | None, int] = (None, 0)
    for trace in query.find_traces("gateway", start=start, end=end, search_depth=60):
        calls: Counter[tuple[str, str]] = Counter()
        for span in trace.spans:
            if span.kind == "client" and not _is_sql(span):
                url = str(span.attributes.get("url.full", span.attributes.get("http.url", "")))
                calls[(span.parent_span_id or "", url)] += 1
        for (parent_id, _), count in calls.items():
            if count > best[1]:
                parent = next((s for s in trace.spans if s.span_id == parent_id), None)
                best = (parent, count)
    parent, count = best
    if parent is None or count < 3:
        return None
    return {
        "service": parent.service,
        "operation": parent.name,
        "fault_class": "retry storm",
        "count": count,
    }


def silent_failure(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """A tenant whose searches all answer OK with zero results."""
    for service in query.services():
        for operation in {o.name for o in query.operations(service, "server")}:
            tenants = _groups(query, "tenant.id", start, end, service=service, operation=operation)
            for tenant in tenants:
                if not tenant["value"] or tenant["count"] < MIN_SPANS or tenant["errors"]:
                    continue
                results = _groups(
                    query,
                    "app.search.results",
                    start,
                    end,
                    service=service,
                    operation=operation,
                    where={"tenant.id": tenant["value"]},
                )
                if not results or all(g["value"] is None for g in results):
                    break  # this operation records no result counts
                zero = sum(g["count"] for g in results if g["value"] == "0")
                if zero / tenant["count"] >= 0.9:
                    return {
                        "service": service,
                        "operation": operation,
                        "attribute": {"tenant.id": tenant["value"]},
                        "fault_class": "silent failure",
                    }
    return None


def gradual_degradation(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    """A server operation whose own latency keeps growing across the window: the first
    quarter against the last (halves blur a steady climb into a ratio under two)."""
    quarter = (end - start) / 4
    grown: list[tuple[float, str, str]] = []
    doubled = False
    for service in query.services():
        early = {
            g["value"]: g
            for g in _groups(query, "name", start, start + quarter, service=service, where=SERVER)
        }
        late = {
            g["value"]: g
            for g in _groups(query, "name", end - quarter, end, service=service, where=SERVER)
        }
        for name, group in late.items():
            before = early.get(name)
            if before and min(before["count"], group["count"]) >= MIN_SPANS:
                grown.append((group["p50Ms"] / max(before["p50Ms"], 1.0), service, name))
                doubled = doubled or group["p50Ms"] >= 2 * max(before["p50Ms"], 5.0)
    if not doubled:
        return None
    # A caller grows with its callee, by the same milliseconds on a larger base: once one
    # operation has doubled, the largest ratio is the one whose own time grows (catalog's
    # page, which may not clear the 5 ms floor yet, not the gateway's that waits for it).
    _, service, name = max(grown)
    return {"service": service, "operation": name, "fault_class": "gradual degradation"}


def pool_exhaustion(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    types = [
        g
        for g in _groups(query, "error.type", start, end, where={"status": "error"})
        if g["value"] and g["count"] >= MIN_SPANS
    ]
    for group in sorted(types, key=lambda g: -g["count"]):
        services = _groups(
            query, "service.name", start, end, where={"error.type": group["value"], **SERVER}
        )
        if not services:
            continue
        top = services[0]
        # A pool timeout: every failing request waited about the same, seconds long.
        if top["p50Ms"] >= 1000 and "timeout" in group["value"].lower():
            return {
                "service": top["value"],
                "attribute": {"error.type": group["value"]},
                "fault_class": "connection pool exhaustion",
            }
    return None


# The question names the shop: "one of the acme shop's biggest buyers". Other shops have
# resellers too, slowed by the same fault (the facilitator's guide asks about them); the
# one the account manager escalated is acme's, as the lab's own looks filter.
ESCALATED_TENANT = "acme"


def heavy_user(query: JaegerQuery, start: datetime, end: datetime) -> Answer | None:
    escalated = {**SERVER, "tenant.id": ESCALATED_TENANT}
    for service in query.services():
        if service == "gateway":
            continue
        users = [
            g
            for g in _groups(query, "enduser.id", start, end, service=service, where=escalated)
            if g["value"]
        ]
        if len(users) < 5:
            continue
        # Medians, not tails: one cold cache fill makes anybody's p95 look heavy.
        typical = statistics.median(g["p50Ms"] for g in users)
        # The user whose requests took the most time in all, and only once they have a
        # few spans. While the heavy user's first requests (seconds each) still run,
        # whoever shares the service with them is slowed too: the slowest of the users
        # with 3 spans was then a bystander, and a bystander with one slowed request can
        # have a higher p50 than the heavy user has by then, but not their total.
        heavy = max(users, key=lambda g: g["count"] * g["p50Ms"])
        if heavy["count"] >= 3 and heavy["p50Ms"] >= max(50.0, 4 * typical):
            # Their slowest operation relative to everyone's: what is heavy for them only.
            everyone = {
                g["value"]: g["p50Ms"]
                for g in _groups(query, "name", start, end, service=service, where=SERVER)
            }
            theirs = _groups(
                query,
                "name",
                start,
                end,
                service=service,
                where={**SERVER, "enduser.id": heavy["value"]},
            )
            slowest = max(theirs, key=lambda g: g["p50Ms"] / max(everyone.get(g["value"], 1), 1))
            return {
                "service": service,
                "operation": slowest["value"],
                "attribute": {"enduser.id": heavy["value"]},
                "fault_class": "one heavy user",
            }
    return None


SOLVERS: dict[str, Solver] = {
    "first-trace": first_trace,
    "failing-tenant": failing_tenant,
    "n-plus-one": n_plus_one,
    "slow-query": slow_query,
    "bad-deploy": bad_deploy,
    "retry-storm": retry_storm,
    "silent-failure": silent_failure,
    "gradual-degradation": gradual_degradation,
    "pool-exhaustion": pool_exhaustion,
    "heavy-user": heavy_user,
}
