"""Labs: every lab file loads, its guides are generated from it, its looks render for
every backend, grading gives partial credit, and every solver finds its lab's answer from
the traces alone on a real stack, and finds nothing without the fault."""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from labs import grading, guide, model, solvers
from labs.session import (
    CannotProve,
    LabSession,
    describe_measurement,
    honeycomb_answer,
    proof_verdict,
    render_look,
)
from o11ykit.backends.jaeger_query import JaegerQuery
from o11ykit.cli import build_parser
from o11ykit.traces_cli import breakdown_groups
from sample_app.faults.catalogue import Signal
from sample_app.faults.signals import Measurement
from sample_app.stack import Stack, StackConfig, running
from sample_app.traffic import BackgroundTraffic, TrafficConfig, run
from tests.support.sample_stack import seeded_copy

# serial: the solvers read latency signals off a running system.
pytestmark = pytest.mark.serial

LABS = model.all_labs()


def test_ten_labs_from_a_first_trace_to_hard():
    assert len(LABS) >= 10
    assert LABS[0].fault is None and LABS[0].level == "first steps"
    assert {lab.level for lab in LABS} >= {"beginner", "intermediate", "advanced"}
    assert set(solvers.SOLVERS) == {lab.id for lab in LABS}


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_the_guides_are_generated_from_the_lab_file(lab: model.Lab):
    for name, text in guide.outputs(lab).items():
        assert (lab.directory / name).read_text(encoding="utf-8") == text, (
            f"{lab.id}/{name} is out of date: python -m labs.guide"
        )


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_every_look_renders_for_every_backend(lab: model.Lab, monkeypatch):
    monkeypatch.setenv("O11YKIT_HONEYCOMB_TEAM", "acme-sre")
    monkeypatch.setenv("O11YKIT_HONEYCOMB_ENVIRONMENT", "workshop")
    parser = build_parser()
    for step in lab.steps:
        if step.look is None:
            continue
        command = render_look(step.look, "local").text
        parser.parse_args(shlex.split(command)[1:])  # the real CLI accepts it
        assert render_look(step.look, "jaeger").text.startswith("http://localhost:16686/search?")
        assert (
            "ui.honeycomb.io/acme-sre/environments/workshop/"
            in render_look(step.look, "honeycomb").text
        )


def _broken_copy(tmp_path: Path, change) -> Path:
    source = model.LABS_DIR / "failing-tenant" / "lab.yaml"
    raw = yaml.safe_load(source.read_text(encoding="utf-8"))
    change(raw)
    target = tmp_path / "failing-tenant" / "lab.yaml"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return target


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: raw["story"].pop("ja"), r"story: needs exactly the languages en, ja"),
        (lambda raw: raw["hints"].pop(), r"hints: a ladder of exactly three hints"),
        (lambda raw: raw.update(fault="no-such"), r"fault: 'no-such' is not in the catalogue"),
        (lambda raw: raw.update(colour="red"), r"unknown field\(s\) colour"),
        (lambda raw: raw["answer"]["expected"].pop("service"), r"no expected value for service"),
        # A scope's key the fault engine does not take was dropped without a word.
        (
            lambda raw: raw.update(scope={"tenant": ["acme"]}),
            r"failing-tenant/lab.yaml.scope: unknown field\(s\) tenant; accepted: tenants, users,"
            r" routes, versions, percent, seed, onset_s, ramp_s, params",
        ),
        (lambda raw: raw.update(scope={"tenants": "acme"}), r"scope.tenants: a list of names"),
        (lambda raw: raw.update(scope={"params": {"share": 5}}), r"scope: params\.share"),
        (lambda raw: raw.update(scope={"percent": 50}), r"scope: scope\.percent"),
        (
            lambda raw: raw["steps"][2]["look"].update(from_lab_start="yes"),
            r"steps\[3\]\.look\.from_lab_start: true or false, not 'yes'",
        ),
        # A fixed time in a lab file is in the past at every run.
        (
            lambda raw: raw["steps"][0]["look"].update(start="2026-12-07T10:00:00Z"),
            r"steps\[1\]\.look\.start: a lab sets no fixed start; use from_lab_start: true",
        ),
    ],
)
def test_a_broken_lab_file_is_refused_naming_the_field(tmp_path, change, message):
    with pytest.raises(model.LabError, match=message):
        model.load(_broken_copy(tmp_path, change))


def test_a_lab_s_scope_reaches_the_fault_whole(tmp_path, monkeypatch):
    """Every override the fault engine takes: onset, ramp, routes and params were dropped."""
    from labs import session

    scope = {
        "tenants": ["acme"],
        "routes": ["/orders"],
        "percent": 50,
        "onset_s": 5,
        "ramp_s": 10,
        "params": {"connections": 2},
    }
    lab = model.load(
        _broken_copy(tmp_path, lambda raw: raw.update(fault="pool-exhaustion", scope=scope))
    )
    injected = []
    monkeypatch.setattr(
        session.StackFaults, "inject", lambda self, fault, overrides: injected.append(overrides)
    )
    LabSession(lab, _offline_state(tmp_path)).inject()
    ((overrides,),) = [injected]
    assert (overrides.tenants, overrides.routes, overrides.params) == (
        ["acme"],
        ["/orders"],
        {"connections": 2},
    )
    assert (overrides.percent, overrides.onset_s, overrides.ramp_s) == (50, 5, 10)


def _offline_state(tmp_path: Path) -> dict:
    """A stack's state where no service answers: faults and queries must be stubbed."""
    services = {"catalog": {"url": "http://127.0.0.1:9"}}
    return {"data_dir": str(tmp_path), "services": services, "token": "t", "query_url": None}


def test_later_commands_speak_the_language_the_lab_started_in(tmp_path, monkeypatch, capsys):
    """`lab start --lang ja`, then `lab hint`, `look` and `answer` without --lang: Japanese,
    and the Jaeger links the start chose; an explicit option still wins."""
    import json

    from labs import cli, session
    from o11ykit.cli import main

    state = _offline_state(tmp_path)
    monkeypatch.setattr(cli, "_state", lambda args, start=False: state)
    monkeypatch.setattr(session.StackFaults, "inject", lambda self, fault, overrides: None)
    monkeypatch.setattr(session.LabSession, "solve", lambda self, window=None: None)
    monkeypatch.delenv("O11YKIT_LANG", raising=False)
    monkeypatch.delenv("O11YKIT_LAB_BACKEND", raising=False)
    lab = model.get("failing-tenant")
    assert (
        main(["lab", "start", lab.id, "--lang", "ja", "--backend", "jaeger", "--no-traffic"]) == 0
    )
    saved = json.loads((tmp_path / session.PROGRESS_FILE).read_text())
    assert (saved["lang"], saved["backend"]) == ("ja", "jaeger")
    capsys.readouterr()

    assert main(["lab", "hint"]) == 0
    assert lab.hints[0].ja in capsys.readouterr().out
    assert main(["lab", "hint", "--lang", "en"]) == 0
    assert lab.hints[1].en in capsys.readouterr().out
    assert main(["lab", "look", "1"]) == 0
    look = capsys.readouterr().out
    assert lab.steps[0].title.ja in look and "/search?service=gateway" in look
    assert main(["lab", "look", "1", "--backend", "local"]) == 0
    assert "o11ykit traces breakdown" in capsys.readouterr().out
    assert main(["lab", "answer", "--service", "gateway", "--attr", "tenant.id=acme"]) == 1
    assert "隣のサービス" in capsys.readouterr().out


def test_a_look_names_the_store_of_a_stack_on_free_ports(tmp_path, capsys):
    """`lab start --free-ports`: every command printed carries the store's --url, since the
    one pasted would otherwise ask 127.0.0.1:16686 (nothing there, or another system)."""
    from rich.console import Console

    from labs.cli import print_step

    lab = model.get("slow-query")
    elsewhere = {**_offline_state(tmp_path), "query_url": "http://127.0.0.1:40123"}
    session = LabSession(lab, elsewhere)
    commands = [look.text for _, look in session.looks() if look is not None]
    assert commands and all(c.endswith(" --url http://127.0.0.1:40123") for c in commands)
    console = Console(record=True, width=300)
    print_step(console, session, 1, "en", run=False)
    assert "--url http://127.0.0.1:40123" in console.export_text()
    at_default = {**elsewhere, "query_url": "http://127.0.0.1:16686"}
    assert all(
        "--url" not in look.text
        for _, look in LabSession(lab, at_default).looks()
        if look is not None
    )


def test_a_look_that_counts_reads_from_the_lab_s_start_in_every_form(tmp_path):
    """failing-tenant's step 3 counts users since the fault began, as the grading does: past
    its 15 minutes, a `--since 15m` look showed fewer than the answer is graded on."""
    lab = model.get("failing-tenant")
    count_step = lab.steps[2]
    assert count_step.from_lab_start and not lab.steps[0].from_lab_start
    session = LabSession(lab, _offline_state(tmp_path))
    assert session.look_spec(count_step) is count_step.look  # not started: the last 15 min
    session.progress["started"] = (_now() - timedelta(minutes=25)).isoformat()
    begin = session.window()[0].replace(microsecond=0)
    assert session.look_spec(count_step).start == begin
    command = session.look(count_step).text
    assert f"--start {begin:%Y-%m-%dT%H:%M:%SZ}" in command and "--since" not in command
    assert "--since 15m" in session.look(lab.steps[0]).text
    jaeger = LabSession(lab, _offline_state(tmp_path), backend="jaeger")
    jaeger.progress["started"] = session.progress["started"]
    link = jaeger.look(count_step).text
    assert f"start={int(begin.timestamp()) * 1_000_000}" in link
    # The guide, read before any start, shows the 15-minute form and where the other is.
    assert "`o11ykit lab look 3` prints it with `--start` at the lab's start" in guide.readme(
        lab, "en"
    )
    # A look from the start never shows an earlier lab's traces (`lab start` warns of those).
    only_counting = replace(lab, steps=(count_step,))
    assert LabSession(only_counting, _offline_state(tmp_path)).looks_window_s() == 0
    assert session.looks_window_s() == 900


def _failing_users(minutes_ago: float, users: range) -> bytes:
    """Gateway server spans of globex that failed, one per user, `minutes_ago`."""
    from tests.support.store_data import request, span

    at = int((_now() - timedelta(minutes=minutes_ago)).timestamp() * 1e9)
    spans = [
        span(n, n, "GET /api/products/{product_id}", start=at, error=True,
             attributes={"tenant.id": "globex", "enduser.id": f"globex-c{n:05d}"})
        for n in users
    ]  # fmt: skip
    return request(spans, "gateway").SerializeToString()


@pytest.mark.integration
def test_the_count_look_finds_every_user_the_grading_counts(tmp_path):
    """Against a real store: users who failed 20 minutes into a 25-minute lab are in the
    count step's look, as in the grading's count, and would be missing from the last 15."""
    import urllib.request

    from o11ykit.backends.query_spec import run_local
    from o11ykit.store.process import spawn_store

    lab = model.get("failing-tenant")
    with spawn_store(tmp_path / "store", grpc_port=None) as store:
        for body in (_failing_users(20, range(1, 6)), _failing_users(5, range(6, 8))):
            post = urllib.request.Request(
                store.traces_url, body, {"Content-Type": "application/x-protobuf"}
            )
            with urllib.request.urlopen(post, timeout=10) as answer:
                assert answer.status == 200
        session = LabSession(lab, {**_offline_state(tmp_path), "query_url": store.query_url})
        session.progress["started"] = (_now() - timedelta(minutes=25)).isoformat()
        looked = breakdown_groups(session.run_look(lab.steps[2]))
        graded = session._count(*session.window())  # the count an answer is graded on
        last_15 = breakdown_groups(run_local(lab.steps[2].look, session.query))
    assert (looked, graded, last_15) == (7, 7, 2)


def _stub_offline_lab(monkeypatch, state: dict) -> None:
    from labs import cli, session

    monkeypatch.setattr(cli, "_state", lambda args, start=False: state)
    monkeypatch.setattr(session.StackFaults, "inject", lambda self, fault, overrides: None)
    monkeypatch.setattr(session.StackFaults, "clear", lambda self, fault=None: None)
    monkeypatch.setattr(session.LabSession, "solve", lambda self, window=None: {"count": 12})
    proved = ([Measurement(ERRORS, 0.4, 20)], [Measurement(ERRORS, 0.0, 20)])
    monkeypatch.setattr(session.LabSession, "prove", lambda self: proved)
    monkeypatch.delenv("O11YKIT_LANG", raising=False)
    monkeypatch.delenv("O11YKIT_LAB_BACKEND", raising=False)


FRAMING = {
    "en": {
        "start": "(beginner, 25 min)",
        "hint": "hint 1 of 3: ",
        "answer": "score: 100/100  — solved!",
        "check": "failing-tenant: 1 answer(s), best score 100/100, 1 hint(s) taken",
        "prove": "  before the fix: error_rate of catalog 'GET /products/{product_id}'  = 0.4"
        " (threshold 0.15, 20 samples)",
        "verdict": "the signal is gone: the fix switch removed it",
        "stop": "the lab's fault is cleared and its traffic stopped",
    },
    "ja": {
        "start": "（初級・25 分）",
        "hint": "ヒント 1/3: ",
        "answer": "スコア: 100/100  — 正解です！",
        "check": "failing-tenant: 回答 1 件、最高スコア 100/100、使ったヒント 1 個",
        "prove": "  修正前: error_rate = 0.4（catalog 'GET /products/{product_id}'、しきい値 0.15、"
        "サンプル 20 件）",
        "verdict": "シグナルが消えました。消したのは修正スイッチです",
        "stop": "ラボの障害を解除し、トラフィックを止めました",
    },
}


@pytest.mark.parametrize("language", sorted(FRAMING))
def test_a_lab_s_framing_speaks_the_language_it_started_in(language, tmp_path, monkeypatch, capsys):
    """Not only the lab's own texts: the level, the hint's number, the score, the proof."""
    from o11ykit.cli import main

    _stub_offline_lab(monkeypatch, _offline_state(tmp_path))
    said = FRAMING[language]
    assert main(["lab", "start", "failing-tenant", "--lang", language, "--no-traffic"]) == 0
    assert said["start"] in capsys.readouterr().out
    assert main(["lab", "hint"]) == 0
    assert capsys.readouterr().out.startswith(said["hint"])
    right = ["--service", "catalog", "--attr", "tenant.id=globex", "--class", "bad data"]
    assert main(["lab", "answer", *right, "--count", "12"]) == 0
    assert said["answer"] in capsys.readouterr().out
    assert main(["lab", "check"]) == 0
    assert said["check"] in capsys.readouterr().out
    assert main(["lab", "prove"]) == 0
    proof = capsys.readouterr().out
    assert said["prove"] in proof and said["verdict"] in proof
    assert main(["lab", "stop"]) == 0
    assert said["stop"] in capsys.readouterr().out


def test_every_message_is_in_every_language_with_the_same_fields():
    from string import Formatter

    from labs.guide import WORDS

    def fields(text: str) -> set[str]:
        return {name for _, name, _, _ in Formatter().parse(text) if name}

    english = WORDS["en"]
    assert set(WORDS) == set(model.LANGUAGES)
    for language, words in WORDS.items():
        assert set(words) == set(english), language
        for key, text in words.items():
            assert fields(text) == fields(english[key]), (language, key)
    assert set(model.LEVELS) <= set(english)


def test_preferences_come_from_the_option_the_lab_s_start_the_environment_or_the_default():
    from argparse import Namespace

    from labs.cli import settle_preferences

    def settled(saved: dict, environ: dict, **given) -> tuple[str, str]:
        args = Namespace(**{"lang": None, "backend": None, **given})
        settle_preferences(args, saved, environ)
        return args.lang, args.backend

    started = {"lang": "ja", "backend": "honeycomb"}
    environ = {"O11YKIT_LANG": "en", "O11YKIT_LAB_BACKEND": "jaeger"}
    assert settled({}, {}) == ("en", "local")
    assert settled({}, environ) == ("en", "jaeger")
    assert settled(started, environ) == ("ja", "honeycomb")
    assert settled(started, environ, lang="en", backend="local") == ("en", "local")
    assert settled({"lang": "fr", "backend": 3}, {}) == ("en", "local")  # a mangled file
    with pytest.raises(SystemExit, match="O11YKIT_LAB_BACKEND=zipkin: accepted: local, jaeger"):
        settled({}, {"O11YKIT_LAB_BACKEND": "zipkin"})


def test_honeycomb_looks_run_through_the_query_api_or_fall_back_to_the_link():
    from tests.support.honeycomb_fake import HoneycombFake

    spec = model.get("failing-tenant").steps[0].look
    environ = {"HONEYCOMB_API_KEY": "FAKEconfigKEY0123456789"}
    with HoneycombFake() as fake:
        fake.scenario("ok")
        answered = honeycomb_answer(spec, environ, base_url=fake.base_url)
        assert answered["kind"] == "honeycomb" and answered["rows"]
        fake.scenario("no_query_data")
        fallback = honeycomb_answer(spec, environ, base_url=fake.base_url)
    assert fallback["kind"] == "link only" and "Enterprise" in fallback["reason"]
    assert honeycomb_answer(spec, {})["reason"].startswith("no Honeycomb API key")


def test_grading_gives_partial_credit_and_feedback_in_both_languages():
    lab = model.get("failing-tenant")
    right = {
        "service": "catalog",
        "attribute": {"tenant.id": "globex"},
        "fault_class": "bad data",
        "count": 10,
    }
    assert grading.grade(lab.answer, right, count_truth=9).score == 100
    neighbour = grading.grade(lab.answer, {**right, "service": "gateway"}, count_truth=9)
    assert neighbour.score == 88 and "one hop" in neighbour.fields[0].feedback.en
    assert "隣" in neighbour.fields[0].feedback.ja
    value = grading.grade(lab.answer, {**right, "attribute": {"tenant.id": "acme"}}, count_truth=9)
    assert value.fields[1].credit == 0.5
    wrong = {
        "service": "payments",
        "attribute": {"enduser.id": "x"},
        "fault_class": "ddos",
        "count": 90,
    }
    assert grading.grade(lab.answer, wrong, count_truth=9).score == 0
    assert grading.grade(lab.answer, {**right, "count": 13}, count_truth=9).fields[3].credit == 0.5


def test_a_growing_count_is_right_at_any_value_it_had_while_the_learner_read_it():
    key = model.get("failing-tenant").answer  # tolerance 25%

    def credit(given: float, earlier: float | None) -> float:
        return grading.grade(key, {"count": given}, 40, earlier).fields[3].credit

    for given in (30, 35, 40, 23, 50):  # 23 and 50: within 25% of 30 and of 40
        assert credit(given, earlier=30) == 1, given
    assert (credit(22, earlier=30), credit(51, earlier=30), credit(10, earlier=30)) == (0.5, 0.5, 0)
    assert credit(28, earlier=None) == 0.5  # 30% under the count now: only close
    assert credit(45, earlier=50) == 1  # a count that fell between the two reads


def test_an_answer_is_graded_on_the_count_now_and_the_count_it_had_before(tmp_path, monkeypatch):
    """The session asks the traces for the count up to now and up to COUNT_READ_S ago."""
    from labs import session as lab_session

    lab = model.get("failing-tenant")
    asked: list[tuple[datetime, datetime]] = []

    def counted(self, window=None):
        asked.append(window)
        minutes = (window[1] - window[0]).total_seconds() / 60
        return {"count": round(10 * minutes)}  # 10 more users an error every minute

    monkeypatch.setattr(lab_session.LabSession, "solve", counted)
    # A local store's address, never asked: solve above answers for it.
    session = LabSession(lab, {**_offline_state(tmp_path), "query_url": "http://127.0.0.1:9"})
    session.progress["started"] = (_now() - timedelta(minutes=10)).isoformat()
    answer = {"service": "catalog", "attribute": {"tenant.id": "globex"}, "count": 80}
    result = session.answer({**answer, "fault_class": "bad data"})
    assert result.correct and result.details == {"count_truth": 100, "count_earlier": 80}
    (start, end), (same_start, before) = asked
    assert start == same_start and end - before == timedelta(seconds=grading.COUNT_READ_S)
    # Two minutes into the lab there is no earlier count to take: only the count now.
    asked.clear()
    session.progress["started"] = (_now() - timedelta(seconds=90)).isoformat()
    assert session.answer({**answer, "count": 10}).fields[3].credit == 0.5
    assert len(asked) == 1


def test_failing_tenant_counts_users_by_pseudonym_on_a_pseudonymising_stack():
    # With O11YKIT_PSEUDONYM_KEY set, spans carry enduser.pseudo.id and no enduser.id: the
    # count of the tenant's failing users must not fall to 0 (which 0 would then "match").
    from types import SimpleNamespace

    error = SimpleNamespace(
        status="error", kind="server", start_ns=1, service="catalog", attributes={}
    )

    class PseudonymisedStore:
        def breakdown(self, by, **kw):
            where = kw.get("where") or {}
            if by == "tenant.id":
                groups = [
                    {"value": "globex", "count": 40, "errors": 12, "errorRate": 0.3},
                    {"value": "acme", "count": 400, "errors": 2, "errorRate": 0.005},
                ]
            elif by == "enduser.pseudo.id" and where.get("tenant.id") == "globex":
                groups = [{"value": f"p{n}"} for n in range(4)] + [{"value": None}]
            else:
                groups = [{"value": None}]
            return {"groups": groups}

        def find_traces(self, *args, **kw):
            return [SimpleNamespace(spans=[error])]

    now = datetime.now(timezone.utc)
    answer = solvers.failing_tenant(PseudonymisedStore(), now - timedelta(minutes=5), now)
    assert answer is not None
    assert (answer["attribute"], answer["count"]) == ({"tenant.id": "globex"}, 4)


def test_failing_tenant_counts_the_users_past_the_groups_a_breakdown_lists():
    from types import SimpleNamespace

    error = SimpleNamespace(
        status="error", kind="server", start_ns=1, service="catalog", attributes={}
    )

    class ManyUsers:
        def breakdown(self, by, limit, **kw):
            if by == "tenant.id":
                groups = [
                    {"value": "globex", "count": 4000, "errors": 1200, "errorRate": 0.3},
                    {"value": "acme", "count": 4000, "errors": 20, "errorRate": 0.005},
                ]
                return {"groups": groups}
            listed = [{"value": f"globex-c{n:05d}"} for n in range(limit)]
            return {"groups": listed, "moreGroups": 234}

        def find_traces(self, *args, **kw):
            return [SimpleNamespace(spans=[error])]

    now = datetime.now(timezone.utc)
    answer = solvers.failing_tenant(ManyUsers(), now - timedelta(hours=1), now)
    assert answer is not None and answer["count"] == solvers.GROUPS_READ + 234


def test_grading_takes_the_spellings_learners_use():
    """Case and `.`, `_` or `-` in an attribute key or a service's name do not matter; the
    canary's process name is the catalog. Other keys and services are still wrong."""
    key = model.get("failing-tenant").answer

    def credit(field: str, given) -> float:
        result = grading.grade(key, {field: given}, count_truth=9)
        return next(f.credit for f in result.fields if f.field == field)

    for spelling in ("Tenant.ID", "tenant_id", "TENANT-ID", "tenant.id"):
        assert credit("attribute", {spelling: "Globex"}) == 1, spelling
        assert credit("attribute", {spelling: "acme"}) == 0.5, spelling
    assert credit("attribute", {"enduser.id": "globex"}) == 0
    assert credit("attribute", {"tenantid": "globex"}) == 0
    for spelling in ("catalog", "Catalog", "catalog-canary", "Catalog_Canary"):
        assert credit("service", spelling) == 1, spelling
    for neighbour in ("gateway", "Gateway", "ORDERS"):
        assert credit("service", neighbour) == 0.5, neighbour
    assert credit("service", "Payments") == 0
    # Where the canary is the culprit, its name in `o11ykit app status` is the right answer.
    canary = grading.grade(model.get("bad-deploy").answer, {"service": "catalog-canary"})
    assert canary.fields[0].credit == 1


KEYED_LABS = [lab for lab in LABS if "fault_class" in lab.answer.expected]


@pytest.mark.parametrize("lab", KEYED_LABS, ids=lambda lab: lab.id)
def test_a_kind_of_fault_is_right_only_when_named_alone(lab: model.Lab):
    key = lab.answer
    expected = key.expected["fault_class"]
    for phrase in (expected, *key.fault_class_aliases):
        assert grading.names_fault_class(expected, key.fault_class_aliases, phrase), phrase
        said = f"It's a {phrase} issue"
        assert grading.names_fault_class(expected, key.fault_class_aliases, said), said
    # Every kind there is at once, a negation, or nothing at all is not an answer.
    every = " ".join(other.answer.expected["fault_class"] for other in KEYED_LABS)
    for wrong in (every, f"not a {expected}", "", None):
        assert not grading.names_fault_class(expected, key.fault_class_aliases, wrong), wrong
    # Nor is another lab's kind of fault, or any of its names.
    for other in KEYED_LABS:
        if other.fault == lab.fault:
            continue
        for phrase in (other.answer.expected["fault_class"], *other.answer.fault_class_aliases):
            assert not grading.names_fault_class(expected, key.fault_class_aliases, phrase), (
                other.id,
                phrase,
            )


# ---- solvers on a real stack ----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(seeded_template, tmp_path_factory) -> Iterator[Stack]:
    directory = seeded_copy(seeded_template, tmp_path_factory.mktemp("labs"))
    with running(StackConfig(data_dir=directory, free_ports=True)) as started:
        yield started


def _now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.mark.integration
def test_without_a_fault_no_solver_finds_a_problem(stack: Stack):
    query = JaegerQuery(stack.query_url)
    start = _now() - timedelta(milliseconds=50)
    run(TrafficConfig(base_url=stack.gateway_url, rate=30, duration_s=6, seed=3, concurrency=10))
    time.sleep(0.8)
    found = {lab.id: solvers.SOLVERS[lab.id](query, start, _now()) for lab in LABS if lab.fault}
    assert found == dict.fromkeys(found), found


def _wrong(lab: model.Lab, answer: dict) -> dict:
    """The solver's answer with every field wrong."""
    wrong = dict(answer)
    wrong["service"] = "inventory"  # no such service, nor a neighbour of any
    wrong["operation"] = "GET /health"
    wrong["attribute"] = {"http.request.method": "HEAD"}
    wrong["fault_class"] = "cosmic rays"
    wrong["version"] = "0.0.1"
    wrong["count"] = 1000
    return {k: v for k, v in wrong.items() if k in lab.answer.fields}


def _settled(session: LabSession, timeout_s: float = 10.0) -> dict:
    """The solver's answer once two solves half a second apart agree: the spans of the
    requests still in flight when the traffic stopped have been exported by then."""
    previous, deadline = session.solve(), time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        time.sleep(0.5)
        current = session.solve()
        if current is not None and current == previous:
            return current
        previous = current
    raise AssertionError(f"{session.lab.id}: the answer still changed {timeout_s} s on")


def _journal_rows(journal: Path) -> list[dict]:
    return [json.loads(line) for line in journal.read_text().splitlines()]


def _users_failed(rows: list[dict], answer: dict) -> int:
    """Distinct users of the answer's tenant whose requests failed, as the traffic saw it."""
    tenant = answer["attribute"]["tenant.id"]
    return len({r["user"] for r in rows if r["tenant"] == tenant and (r["status"] or 0) >= 500})


# Counts the traffic generator's journal knows independently of the traces.
JOURNAL_COUNTS = {"failing-tenant": _users_failed}


@pytest.mark.integration
@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.id)
def test_the_solver_finds_the_answer_from_the_traces_alone(
    stack: Stack, lab: model.Lab, tmp_path: Path
):
    session = LabSession(lab, stack.state())
    session.inject()
    journal = tmp_path / "traffic.jsonl"
    try:
        # Most labs answer within seconds; gradual-degradation's ramp needs its time, more on
        # a loaded 2-core machine. The loop ends as soon as the solver answers.
        answer, deadline = None, time.monotonic() + 45
        traffic = replace(session.traffic_config(30, seed=1), journal=journal)
        with BackgroundTraffic(traffic):
            while answer is None and time.monotonic() < deadline:
                time.sleep(1.0)
                answer = session.solve()
        assert answer is not None, f"{lab.id}: the solver found nothing in 45 s"
        # A count of distinct users grows while traffic runs: a count is graded on the traces
        # as they stand once the last requests' spans have landed. (Other answers are read
        # off the traffic as it runs: gradual-degradation's compares the window's quarters.)
        if "count" in lab.answer.fields:
            answer = _settled(session)
        result = session.answer(answer)
        assert result.correct, [(f.field, f.feedback.en) for f in result.fields]
        assert session.answer(_wrong(lab, answer)).score == 0
        # The number a learner reads off the count step's look (its title) is graded right.
        for step in lab.steps:
            if step.from_lab_start:
                read = breakdown_groups(session.run_look(step))
                assert session.answer({**answer, "count": read}).correct, (read, answer)
        if lab.id in JOURNAL_COUNTS:
            truth = JOURNAL_COUNTS[lab.id](_journal_rows(journal), answer)
            assert abs(answer["count"] - truth) <= 1, (answer["count"], truth)
    finally:
        session.stop()
        if lab.catalogue_fault is not None:
            time.sleep(lab.catalogue_fault.settle_s)


ERRORS = Signal("catalog", "GET /products/{product_id}", "error_rate", 0.15)


@pytest.mark.parametrize(
    ("before", "after", "proved", "says"),
    [
        ((0.4, 20), (0.0, 20), True, "the signal is gone"),
        ((0.4, 20), (0.3, 20), False, "still there after the fix"),
        ((0.4, 20), (0.0, 3), False, "too few samples after the fix"),
        ((0.4, 20), (None, 0), False, "too few samples after the fix"),
        # Not there before the fix: its absence after proves nothing.
        ((0.05, 20), (0.0, 20), False, "was not there before the fix"),
        ((0.9, 2), (0.0, 20), False, "was not there before the fix"),
    ],
)
def test_a_proof_needs_the_signal_before_the_fix_and_its_absence_after(before, after, proved, says):
    verdict = proof_verdict([Measurement(ERRORS, *before)], [Measurement(ERRORS, *after)])
    assert verdict[0] is proved and says in verdict[1]


@pytest.mark.parametrize(
    ("before", "after", "says"),
    [
        ((0.4, 20), (0.0, 20), "シグナルが消えました"),
        ((0.4, 20), (0.3, 20), "修正後もシグナルが残っています"),
        ((0.4, 20), (0.0, 3), "修正後のサンプルが少なすぎて"),
        ((0.05, 20), (0.0, 20), "修正前にシグナルが出ていませんでした"),
    ],
)
def test_a_proof_s_verdict_in_japanese(before, after, says):
    _, verdict = proof_verdict(
        [Measurement(ERRORS, *before)], [Measurement(ERRORS, *after)], "ja", "o11ykit lab prove"
    )
    assert says in verdict and "the signal" not in verdict
    if "消えました" not in says:
        assert "`o11ykit lab prove` をもう一度実行してください" in verdict


def test_prove_waits_for_enough_samples_before_the_fix_too(monkeypatch):
    """A rare request may not have arrived often enough since the start: another window
    (here of waiting for the background traffic), not a verdict on too few samples."""
    from types import SimpleNamespace

    from labs import session as session_module

    arrived = iter([(0.3, 2), (0.3, 9)])  # (value, samples): too few, then enough
    monkeypatch.setattr(
        session_module.signals, "measure", lambda *_: Measurement(ERRORS, *next(arrived))
    )
    waited: list[float] = []
    monkeypatch.setattr(session_module.time, "sleep", waited.append)
    since = datetime.now(timezone.utc)
    found = LabSession._measure(SimpleNamespace(query=None), [ERRORS], since, 3.0, False, False)
    assert [m.samples for m in found] == [9] and found[0].present
    assert waited == [3.0, 0.6]  # one window, and only once the first look was too thin


@pytest.mark.integration
def test_a_lab_without_a_fault_has_nothing_to_prove(stack: Stack):
    with pytest.raises(CannotProve, match="first-trace has no fault"):
        LabSession(model.get("first-trace"), stack.state()).prove()


@pytest.mark.integration
def test_prove_flips_the_fix_switch_and_the_signal_goes(stack: Stack):
    session = LabSession(model.get("failing-tenant"), stack.state())
    session.inject()
    try:
        run(session.traffic_config(4, seed=11))
        time.sleep(0.6)
        before, after = session.prove(window_s=4)
        assert all(m.present for m in before), [m.describe() for m in before]
        assert all(m.absent for m in after), [m.describe() for m in after]
    finally:
        session.stop()


def test_a_walkthrough_search_says_how_many_traces_it_did_not_show():
    from rich.console import Console

    from labs.cli import SHOWN_TRACES, show_result

    trace = {"root": "gateway: GET /", "durationMs": 1.0, "spans": 2, "errors": 0}
    traces = [{**trace, "traceId": f"{n:032x}"} for n in range(SHOWN_TRACES + 2)]
    console = Console(record=True, width=200)
    show_result(console, {"kind": "search", "traces": traces})
    out = console.export_text()
    assert out.count("gateway: GET /") == SHOWN_TRACES
    assert "... and 2 more traces" in out


@pytest.mark.parametrize(
    ("language", "says"),
    [("en", "no traces matched: let the traffic run"), ("ja", "一致するトレースはありません")],
)
def test_a_walkthrough_search_that_finds_nothing_says_so_and_what_to_do(language, says):
    from rich.console import Console

    from labs.cli import show_result

    console = Console(record=True, width=300)
    show_result(console, {"kind": "search", "count": 0, "traces": []}, language)
    out = console.export_text()
    assert says in out and "--since" in out
    empty = {"kind": "breakdown", "total": 0, "groupBy": "tenant.id", "source": "spans"}
    show_result(console, {**empty, "groups": []}, language)
    assert ("no spans matched" if language == "en" else "一致するスパンはありません") in (
        console.export_text()
    )


def test_the_seeding_line_speaks_the_lab_s_language(tmp_path, monkeypatch, capsys):
    """`lab start --lang ja` on a system not yet running: the stack's English progress line
    ("seeded the databases in N s") said in Japanese; English as the stack says it."""
    from labs import cli
    from labs.guide import progress_line
    from o11ykit.cli import main
    from sample_app import stack

    assert progress_line("ja", "seeded the databases in 7.6 s") == (
        "データベースに初期データを投入しました（7.6 秒）"
    )
    assert progress_line("en", "seeded the databases in 7.6 s") == "seeded the databases in 7.6 s"
    assert progress_line("ja", "something else") == "something else"

    class Started:
        def __init__(self, config) -> None:
            pass

        def start(self, progress) -> None:
            progress("seeded the databases in 1.5 s")

        def state(self) -> dict:
            return _offline_state(tmp_path)

    # Stubbed as for the other offline labs, but _state runs: no system, so it starts one.
    starting = cli._state
    _stub_offline_lab(monkeypatch, _offline_state(tmp_path))
    monkeypatch.setattr(cli, "_state", starting)
    monkeypatch.setattr(stack, "read_state", lambda directory: None)
    monkeypatch.setattr(stack, "Stack", Started)
    start = ["lab", "start", "failing-tenant", "--no-traffic", "--data-dir", str(tmp_path)]
    assert main([*start, "--lang", "ja"]) == 0
    out = capsys.readouterr().out
    assert "データベースに初期データを投入しました（1.5 秒）" in out
    assert "seeded the databases" not in out
    assert main(start) == 0
    assert "seeded the databases in 1.5 s" in capsys.readouterr().out


def test_a_measurement_in_japanese_keeps_its_figures_and_names():
    where = Signal("catalog", "GET /products/{product_id}", "error_rate", 0.15, {"tenant.id": "g"})
    for signal in (ERRORS, where):
        for value, samples in ((0.368, 19), (None, 0)):
            measured = Measurement(signal, value, samples)
            assert describe_measurement(measured) == measured.describe()
    japanese = describe_measurement(Measurement(where, 0.368, 19), "ja")
    assert japanese == (
        "error_rate = 0.368（catalog 'GET /products/{product_id}' tenant.id=g、しきい値 0.15、"
        "サンプル 19 件）"
    )
    assert "データなし" in describe_measurement(Measurement(ERRORS, None, 0), "ja")


def test_the_walkthrough_s_tables_and_trace_lines_in_japanese():
    from rich.console import Console

    from labs.cli import show_result

    trace = {"traceId": "ab" * 16, "root": "gateway: GET /", "durationMs": 1.0}
    console = Console(record=True, width=200)
    show_result(console, {"kind": "search", "traces": [{**trace, "spans": 4, "errors": 3}]}, "ja")
    breakdown = {"kind": "breakdown", "total": 142, "groupBy": "tenant.id"}
    group = {"value": "globex", "count": 38, "errors": 14, "errorRate": 0.368}
    group |= {"p50Ms": 6.7, "p95Ms": 40.3, "p99Ms": 43.5}
    answer = {**breakdown, "source": "indexed span attribute", "groups": [group], "moreGroups": 2}
    show_result(console, answer, "ja")
    out = console.export_text()
    assert "1.0 ms  スパン 4、エラー 3" in out and "spans" not in out
    assert "tenant.id ごとのスパン 142 個、3 グループ（インデックス付きのスパン属性）" in out
    assert "小さいグループ 2 個は表示していません" in out and "not shown" not in out
    assert "p95 ms" in out  # the columns as the command prints them: the steps name them
    english = Console(record=True, width=200)
    show_result(english, answer)
    assert "142 spans by tenant.id in 3 group(s) (indexed span attribute)" in english.export_text()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_a_look_s_table_counts_in_its_title_the_groups_past_the_rows_it_shows(language):
    """failing-tenant's count is the number of groups: a walk-through shows the first rows
    alone, and its title still counts every group, those past the store's limit too."""
    from rich.console import Console

    from labs.cli import SHOWN_GROUPS, show_result

    def group(n: int) -> dict:
        return {"value": f"globex-c{n:05d}", "count": 2, "errors": 2, "errorRate": 1.0}

    groups = [group(n) | {"p50Ms": 6.7, "p95Ms": 40.3, "p99Ms": 43.5} for n in range(20)]
    answer = {"kind": "breakdown", "total": 60, "groupBy": "enduser.id", "source": "scan"}
    console = Console(record=True, width=200)
    show_result(console, {**answer, "groups": groups, "moreGroups": 10}, language)
    out = console.export_text()
    assert ("in 30 group(s)" if language == "en" else "30 グループ") in out
    assert sum("globex-c" in line for line in out.splitlines()) == SHOWN_GROUPS
    assert ("8 more rows" if language == "en" else "ほか 8 行") in out


def test_the_lab_commands_refuse_in_the_lab_s_language(tmp_path, monkeypatch, capsys):
    """Not running, no lab, a step that is not there, no solution: in Japanese after a
    start in Japanese (the system since stopped), or with --lang ja."""
    import json

    from labs import cli, session
    from o11ykit.cli import main

    monkeypatch.delenv("O11YKIT_LANG", raising=False)
    data = ["--data-dir", str(tmp_path)]
    with pytest.raises(SystemExit, match="サンプルシステムが動いていません"):
        main(["lab", "hint", "--lang", "ja", *data])
    (tmp_path / session.PROGRESS_FILE).write_text(json.dumps({"lab": "n-plus-one", "lang": "ja"}))
    with pytest.raises(SystemExit, match="サンプルシステムが動いていません"):
        main(["lab", "hint", *data])
    (tmp_path / session.PROGRESS_FILE).unlink()
    with pytest.raises(SystemExit, match="the sample system is not running"):
        main(["lab", "hint", *data])
    monkeypatch.setattr(cli, "_state", lambda args, start=False: _offline_state(tmp_path))
    with pytest.raises(SystemExit, match="実行中のラボはありません"):
        main(["lab", "hint", "--lang", "ja"])
    _stub_offline_lab(monkeypatch, _offline_state(tmp_path))
    assert main(["lab", "start", "failing-tenant", "--lang", "ja", "--no-traffic"]) == 0
    assert "`o11ykit lab look N --run`、`o11ykit lab hint`" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="手順 9: このラボの手順は 1 から 3 までです"):
        main(["lab", "look", "9"])
    monkeypatch.setattr(session.LabSession, "solve", lambda self, window=None: None)
    assert main(["lab", "solve"]) == 0
    assert "ソルバーはトレースの中にそのような問題を" in capsys.readouterr().out


def test_why_a_lab_cannot_be_proved_in_japanese(tmp_path):
    offline = LabSession(model.get("failing-tenant"), _offline_state(tmp_path))
    with pytest.raises(CannotProve) as elsewhere:
        offline.prove()
    assert "this stack exports elsewhere" in str(elsewhere.value)
    assert "別の場所にエクスポートしています" in elsewhere.value.said("ja")
    with pytest.raises(CannotProve, match="first-trace has no fault") as faultless:
        LabSession(model.get("first-trace"), _offline_state(tmp_path)).prove()
    said = faultless.value.said("ja")
    assert said == "first-trace には障害がないので、入れる修正スイッチがありません"


def test_a_honeycomb_look_without_its_settings_says_so_in_the_learner_s_language(monkeypatch):
    monkeypatch.delenv("O11YKIT_HONEYCOMB_TEAM", raising=False)
    monkeypatch.delenv("O11YKIT_HONEYCOMB_ENVIRONMENT", raising=False)
    spec = model.get("failing-tenant").steps[0].look
    assert render_look(spec, "honeycomb").text.startswith("set O11YKIT_HONEYCOMB_TEAM")
    japanese = render_look(spec, "honeycomb", language="ja").text
    assert japanese.startswith("Honeycomb のリンクには O11YKIT_HONEYCOMB_TEAM と")
