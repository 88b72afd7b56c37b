"""The engine: which calls a fault touches, when, how hard; fix, clear and the audit."""

from __future__ import annotations

import json
import logging
import threading

import pytest
from opentelemetry import trace

import o11ykit
from o11ykit.config import ConfigError
from o11ykit.context import policy
from o11ykit.faults import AuditLog, FaultEngine, FaultSpecError, KindSpec, ParamSpec
from tests.support.fake_clock import Clock

N_PLUS_ONE = KindSpec("n_plus_one", {"queries": ParamSpec(int, 10, 1, 500)}, "extra queries")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def engine(clock: Clock) -> FaultEngine:
    return FaultEngine(service_version="2.0.0", kinds={"n_plus_one": N_PLUS_ONE}, clock=clock)


def fault(fault_id: str = "f", kind: str = "latency", params=None, **scope):
    return {"id": fault_id, "kind": kind, "params": params or {}, "scope": scope}


def test_nothing_injected_answers_none_quickly(engine):
    assert not engine.has_faults
    assert engine.active("latency") is None and engine.broken("latency") is None
    assert engine.faults() == []


def test_an_unscoped_fault_touches_every_call_with_its_params_filled(engine):
    engine.inject(fault(params={"ms": 120}))
    active = engine.active("latency", key="any")
    assert active is not None and active.spec.id == "f"
    assert active.params == {"ms": 120, "jitter_ms": 0}
    assert active.param("ms") == 120 and active.intensity == 1.0 and not active.fixed
    with pytest.raises(KeyError, match="has no param 'status'; it has: ms, jitter_ms"):
        active.param("status")
    assert engine.active("error") is None  # another kind


def test_tenant_and_user_come_from_the_arguments_or_the_o11ykit_context(engine):
    engine.inject(fault(tenants=["acme"], users=["u-1"]))
    assert engine.active("latency", tenant="acme", user="u-1") is not None
    assert engine.active("latency", tenant="acme", user="u-2") is None
    assert engine.active("latency", tenant="globex", user="u-1") is None
    assert engine.active("latency") is None  # no context: no tenant
    with o11ykit.context(tenant_id="acme", user_id="u-1"):
        assert engine.active("latency") is not None
    with o11ykit.context(tenant_id="acme", user_id="u-3"):
        assert engine.active("latency") is None
        assert engine.active("latency", user="u-1") is not None


def test_users_scoped_by_raw_id_match_when_only_the_pseudonym_is_known(engine, monkeypatch):
    monkeypatch.setattr(policy, "pseudonym_key", "drill-key")
    engine.inject(fault(users=["u-1"]))
    with o11ykit.context(tenant_id="acme", user_id="u-1") as identity:
        assert "enduser.id" not in identity.attributes
        assert engine.active("latency") is not None
    with o11ykit.context(tenant_id="acme", user_id="u-2"):
        assert engine.active("latency") is None


def test_routes_match_by_prefix_and_by_glob(engine):
    engine.inject(fault(routes=["/api/orders", "/api/products/*", "/admin/**/export"]))
    touched = [
        "/api/orders",
        "/api/orders/",
        "/api/orders/17",
        "/api/products/42",
        "/admin/a/b/export",
    ]
    untouched = ["/api/orders-archive", "/api/products", "/api/products/42/reviews", "/health"]
    for path in touched:
        assert engine.active("latency", route=path) is not None, path
    for path in untouched:
        assert engine.active("latency", route=path) is None, path
    # A fault scoped to routes never touches code that does not say where it runs.
    assert engine.active("latency") is None


def test_a_fault_for_other_versions_is_inert(clock):
    for version, expected in (("2.0.0", True), ("1.9.0", False), (None, False)):
        engine = FaultEngine(service_version=version, clock=clock)
        engine.inject(fault(versions=["2.0.0", "2.0.1"]))
        assert (engine.active("latency") is not None) is expected, version


def test_percent_is_decided_by_the_key_the_same_way_every_time(engine, clock):
    engine.inject(fault(percent=30, seed=11))
    answers = [engine.active("latency", key=f"trace-{i}") is not None for i in range(10_000)]
    assert abs(sum(answers) / len(answers) - 0.30) <= 0.02
    # Another engine (another service) with the same seed gives the same answers.
    other = FaultEngine(clock=clock)
    other.inject(fault(percent=30, seed=11))
    again = [other.active("latency", key=f"trace-{i}") is not None for i in range(10_000)]
    assert again == answers
    other.inject(fault(percent=30, seed=12))
    reseeded = [other.active("latency", key=f"trace-{i}") is not None for i in range(10_000)]
    assert reseeded != answers


def test_percent_edges(engine):
    engine.inject(fault("none", percent=0))
    engine.inject(fault("all", kind="error", percent=100))
    assert not any(engine.active("latency", key=str(i)) for i in range(1000))
    assert all(engine.active("error", key=str(i)) for i in range(1000))


def test_the_default_key_is_the_trace_id_so_a_trace_gets_one_answer(engine, o11ykit_spans):
    engine.inject(fault(percent=50))
    tracer = trace.get_tracer("test")
    for _ in range(20):
        with tracer.start_as_current_span("request") as span:
            trace_id = format(span.get_span_context().trace_id, "032x")
            first = engine.active("latency") is not None
            assert all((engine.active("latency") is not None) == first for _ in range(5))
            assert (engine.active("latency", key=trace_id) is not None) == first
    # Outside a recording span each call draws anew (a per-engine counter).
    assert not trace.get_current_span().is_recording()
    outside = [engine.active("latency") is not None for _ in range(400)]
    assert 100 < sum(outside) < 300


def test_onset_delays_the_fault_and_ramp_grows_its_intensity(engine, clock):
    engine.inject(fault(onset_s=10, ramp_s=20))
    assert engine.active("latency") is None
    clock.now += 9.9
    assert engine.active("latency") is None
    clock.now += 0.1
    assert engine.active("latency").intensity == pytest.approx(0.0)
    clock.now += 5
    assert engine.active("latency").intensity == pytest.approx(0.25)
    clock.now += 10
    assert engine.active("latency").intensity == pytest.approx(0.75)
    clock.now += 100
    assert engine.active("latency").intensity == 1.0


def test_during_a_ramp_the_share_reached_grows_and_keeps_who_it_hit(engine, clock):
    engine.inject(fault(kind="error", ramp_s=100))
    keys = [f"k{i}" for i in range(2000)]
    shares = []
    hit_before: set[str] = set()
    for _ in range(4):
        clock.now += 25
        hit = {k for k in keys if engine.active("error", key=k).reached}
        assert hit_before <= hit
        hit_before = hit
        shares.append(len(hit) / len(keys))
    assert shares[0] == pytest.approx(0.25, abs=0.04)
    assert shares[1] == pytest.approx(0.5, abs=0.04)
    assert shares[3] == 1.0


def test_when_the_guard_refuses_the_engine_is_off_for_good_and_says_so_once(clock, caplog):
    refusal: list[str] = []
    engine = FaultEngine(clock=clock, guard=lambda: refusal[0] if refusal else None)
    heard: list[tuple[str, list[str]]] = []
    engine.subscribe(lambda action, ids: heard.append((action, ids)))
    engine.inject(fault("slow"))
    assert engine.active("latency", key="k") is not None
    refusal.append("o11ykit fault injection is refused in production (test)")
    with caplog.at_level(logging.WARNING, logger="o11ykit"):
        assert engine.active("latency", key="k") is None
        assert engine.faults() == [] and not engine.has_faults
        with pytest.raises(ConfigError, match="refused in production"):
            engine.inject(fault("again"))
        refusal.clear()  # a refusal is for good
        assert not engine.allowed() and engine.broken("latency", key="k") is None
    assert [r.getMessage() for r in caplog.records].count(
        "o11ykit fault injection is refused in production (test); it is now off "
        "(faults cleared: slow)"
    ) == 1, caplog.records
    assert heard == [("inject", ["slow"]), ("clear", ["slow"])]  # held connections go back
    last = engine.audit.entries()[-1]
    assert (last["action"], last["fault"], last["actor"]) == ("clear", "slow", "production-guard")


def test_fix_keeps_the_fault_listed_and_active_but_not_broken(engine):
    engine.inject(fault())
    spec = engine.fix("f")
    assert spec.fixed
    assert engine.active("latency").fixed is True
    assert engine.broken("latency") is None
    assert engine.faults()[0]["fixed"] is True
    engine.fix("f", False)
    assert engine.broken("latency") is not None


def test_same_id_replaces_and_clear_removes(engine):
    engine.inject(fault(params={"ms": 1}))
    engine.inject(fault(params={"ms": 2}))
    engine.inject(fault("g", kind="error"))
    assert [(f["id"], f["params"]) for f in engine.faults()] == [("f", {"ms": 2}), ("g", {})]
    assert engine.clear("f") == ["f"]
    with pytest.raises(KeyError, match="no fault 'f' is injected; injected: g"):
        engine.clear("f")
    with pytest.raises(KeyError, match="no fault 'zzz' is injected"):
        engine.fix("zzz")
    assert engine.clear() == ["g"]
    assert not engine.has_faults and engine.active("error") is None
    assert engine.clear() == []


def test_a_bad_spec_changes_nothing(engine):
    engine.inject(fault(params={"ms": 5}))
    before = engine.faults()
    with pytest.raises(FaultSpecError, match=r"params\.ms"):
        engine.inject(fault(params={"ms": -5}))
    with pytest.raises(FaultSpecError, match="kind: unknown kind 'nope'; accepted: latency, "):
        engine.inject(fault(kind="nope"))
    assert engine.faults() == before
    assert [e["action"] for e in engine.audit.entries()] == ["inject"]


def test_faults_lists_specs_with_injection_time(engine):
    engine.inject(fault(tenants=["acme"]))
    (listed,) = engine.faults()
    assert listed["id"] == "f" and listed["scope"]["tenants"] == ["acme"]
    assert listed["injected_at"].endswith("Z") and "T" in listed["injected_at"]
    assert listed["fixed"] is False
    assert engine.fault("f") == listed


def test_custom_kinds_are_offered_next_to_the_generic_ones(engine):
    assert set(engine.kinds) == {
        "latency",
        "error",
        "exception",
        "timeout",
        "pool_hold",
        "n_plus_one",
    }
    engine.inject(fault("np", kind="n_plus_one", routes=["/api/orders"]))
    active = engine.broken("n_plus_one", route="/api/orders/3")
    assert active is not None and active.param("queries") == 10


def test_the_audit_log_in_memory_and_as_jsonl(tmp_path, clock):
    path = tmp_path / "audit" / "faults.jsonl"
    engine = FaultEngine(audit=AuditLog(path), clock=clock)
    engine.inject(fault("a", params={"ms": 5}), actor="alice")
    engine.fix("a", actor="bob")
    engine.fix("a", False, actor="bob")
    engine.inject(fault("b", kind="error"))
    engine.clear(actor="carol")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == engine.audit.entries()
    assert [(e["action"], e["fault"], e["actor"]) for e in lines] == [
        ("inject", "a", "alice"),
        ("fix", "a", "bob"),
        ("unfix", "a", "bob"),
        ("inject", "b", "api"),
        ("clear", "a", "carol"),
        ("clear", "b", "carol"),
    ]
    assert lines[0]["spec"]["params"] == {"ms": 5}
    assert "spec" not in lines[1]
    assert all(e["time"].endswith("Z") for e in lines)


def test_the_audit_in_memory_is_bounded():
    audit = AuditLog(limit=3)
    for i in range(5):
        audit.record("clear", f"f{i}", "t")
    assert [e["fault"] for e in audit.entries()] == ["f2", "f3", "f4"]


def test_listeners_hear_of_each_change(engine):
    heard = []
    engine.subscribe(lambda action, ids: heard.append((action, ids)))
    engine.inject(fault())
    engine.fix("f")
    engine.clear()
    assert heard == [("inject", ["f"]), ("fix", ["f"]), ("clear", ["f"])]


def test_concurrent_changes_and_reads_stay_consistent(engine):
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                active = engine.active("latency", tenant="acme", key="k")
                assert active is None or active.spec.kind == "latency"
                engine.faults()
        except BaseException as exc:
            errors.append(exc)

    def writer(n: int) -> None:
        try:
            for i in range(200):
                engine.inject(fault(f"w{n}-{i % 5}", tenants=["acme"]))
                if i % 3 == 0:
                    engine.fix(f"w{n}-{i % 5}")
                if i % 7 == 0:
                    engine.clear(f"w{n}-{i % 5}")
        except BaseException as exc:
            errors.append(exc)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join()
    stop.set()
    for thread in readers:
        thread.join()
    assert not errors, errors
    listed = {f["id"] for f in engine.faults()}
    assert listed <= {f"w{n}-{i}" for n in range(3) for i in range(5)}
    actions = engine.audit.entries()
    assert len([e for e in actions if e["action"] == "inject"]) == min(600, 1000)
