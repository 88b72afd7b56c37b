"""The traffic generator: its plan (pure, by seed), its options, and real runs.

The real runs go to tests/support/traffic_gateway.py, a stand-in for the gateway's API run
by uvicorn in its own process on a free loopback port, which writes down every request it
receives; the assertions compare that record with the plan, the journal and the summary.
Hanging servers, for timeouts and stopping with requests in flight, are asyncio servers in
the test's own loop that accept connections and never answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sample_app import dataset
from sample_app.traffic import (
    PERSONAS,
    TrafficConfig,
    add_arguments,
    config_from_args,
    plan,
    run,
    run_traffic,
)
from sample_app.traffic.cli import DEFAULT_URL
from sample_app.traffic.progress import showing_progress
from sample_app.traffic.summary import Tally, TrafficSummary
from sample_app.traffic.vocabulary import ADJECTIVES, SEARCH_WORDS
from tests.conftest import REPO, free_port
from tests.support.processes import (
    child_environment,
    start_uvicorn,
    stop_process,
    wait_until_http_ready,
)

ROUTES = {
    "/api/products",
    "/api/products/{id}",
    "/api/cart/quote",
    "/api/checkout",
    "/api/orders",
    "/api/staff/sales",
}
JOURNAL_KEYS = {
    "t", "visit", "persona", "method", "path", "route", "tenant", "user", "status", "ms", "error",
}  # fmt: skip
EVEN_MIX = dict.fromkeys(PERSONAS, 1.0)
READY_TIMEOUT = 30.0  # a cold interpreter importing FastAPI on a slow shared machine
UNUSED_URL = "http://127.0.0.1:9"  # plan() never connects; the config only needs a URL


def config(**overrides: Any) -> TrafficConfig:
    return TrafficConfig(**{"base_url": UNUSED_URL, "max_requests": 100, **overrides})


# --------------------------------------------------------------------------------------------
# The plan
# --------------------------------------------------------------------------------------------


def test_the_same_seed_makes_the_same_visits() -> None:
    visits = plan(config(seed=7), 300)

    assert plan(config(seed=7), 300) == visits
    assert plan(config(seed=7), 40) == visits[:40]
    # Nothing about pacing changes who visits or what they do.
    paced = config(seed=7, rate=300.0, concurrency=64, duration_s=5.0, timeout_s=1.0)
    assert plan(paced, 300) == visits
    other = plan(config(seed=8), 300)
    assert [(v.tenant, v.user, v.steps) for v in other] != [
        (v.tenant, v.user, v.steps) for v in visits
    ]
    assert [v.index for v in visits] == list(range(300))


def test_shops_and_customers_are_zipf_distributed() -> None:
    visits = plan(config(), 4000)
    by_shop = Counter(v.tenant for v in visits)
    slugs = dataset.shop_slugs()

    assert by_shop.most_common(1)[0][0] == slugs[0]
    assert by_shop[slugs[0]] > by_shop[slugs[1]] > by_shop[slugs[9]] > by_shop[slugs[49]]
    harmonic = sum(1 / i for i in range(1, dataset.SHOP_COUNT + 1))
    assert by_shop[slugs[0]] / len(visits) == pytest.approx(1 / harmonic, abs=0.04)
    assert len(by_shop) > 45  # the long tail is visited too

    customers = [v for v in visits if v.persona != "staff"]
    assert len({v.user for v in customers}) > 1500  # many distinct users
    biggest = Counter(v.user for v in customers if v.tenant == slugs[0])
    head, head_count = biggest.most_common(1)[0]
    assert head == dataset.shop(slugs[0]).customer(0)
    assert head_count > 10 * max(1, biggest[dataset.shop(slugs[0]).customer(500)])


def test_visits_make_sense_for_their_shop() -> None:
    for visit in plan(config(), 600):
        shop = dataset.shop(visit.tenant)
        if visit.persona == "staff":
            assert visit.user == shop.staff
        else:
            assert visit.user.startswith(f"{shop.slug}-c"), visit
        for step in visit.steps:
            params = dict(step.params)
            if step.route == "/api/products/{id}":
                assert int(step.path.rsplit("/", 1)[1]) in shop.product_ids, visit
            if step.route == "/api/products":
                assert params["locale"] == shop.locale
                *adjective, word = params["q"].split()
                assert word in SEARCH_WORDS and set(adjective) <= set(ADJECTIVES), params
            if step.body is not None:
                assert all(item["product_id"] in shop.product_ids for item in step.body["items"])
        if visit.persona == "checkout":
            quote, checkout = (s for s in visit.steps if s.method == "POST")
            assert checkout.body == {**quote.body, "card": "tok_visa"}


def test_the_default_mix_reaches_every_route() -> None:
    visits = plan(config(), 400)
    personas = Counter(v.persona for v in visits)
    routes_of = {
        name: {s.route for v in visits if v.persona == name for s in v.steps} for name in personas
    }

    assert {route for routes in routes_of.values() for route in routes} == ROUTES
    # Mostly browsing and searching, fewer checkouts, few staff.
    assert personas["browse"] + personas["search"] > 0.6 * len(visits)
    assert personas["checkout"] < personas["browse"]
    assert 0 < personas["staff"] < personas["checkout"]
    # The order history is on the browsing and the buying paths both.
    assert "/api/orders" in routes_of["browse"] & routes_of["checkout"]


@pytest.mark.parametrize(("tenant", "share"), [("vandelay", 0.4), ("acme", 0.25)])
def test_a_focus_tenant_gets_its_share(tenant: str, share: float) -> None:
    visits = plan(config(focus_tenant=tenant, focus_share=share), 3000)
    focused = [v for v in visits if v.focused]

    assert len(focused) / len(visits) == pytest.approx(share, abs=0.04)
    assert {v.tenant for v in focused} == {tenant}
    # On top of the focus, the shop keeps its ordinary traffic.
    ordinary = sum(v.tenant == tenant for v in visits if not v.focused) / len(visits)
    weight = dataset.shop_weight(dataset.shop(tenant).index) / sum(
        dataset.shop_weight(s.index) for s in dataset.shops()
    )
    assert ordinary == pytest.approx((1 - share) * weight, abs=0.03)


def test_a_focus_user_gets_its_share_as_a_customer() -> None:
    user = dataset.resellers()[0]
    visits = plan(config(focus_user=user, focus_share=0.3), 3000)
    focused = [v for v in visits if v.focused]

    assert sum(v.user == user for v in visits) / len(visits) == pytest.approx(0.3, abs=0.04)
    assert {v.user for v in focused} == {user}
    assert {v.tenant for v in focused} == {dataset.RESELLERS[0][0]}
    assert "staff" not in {v.persona for v in focused}


def test_a_focus_on_staff_makes_staff_visits() -> None:
    visits = plan(config(focus_user="hooli-staff", focus_share=0.5), 400)
    focused = [v for v in visits if v.focused]

    assert focused
    assert {(v.persona, v.tenant, v.user) for v in focused} == {("staff", "hooli", "hooli-staff")}


def test_personas_can_be_restricted_or_weighted() -> None:
    restricted = Counter(v.persona for v in plan(config(personas=["browse", "search"]), 500))
    assert set(restricted) == {"browse", "search"}
    # The restriction keeps the default weights between the ones left.
    assert restricted["browse"] > restricted["search"]

    weighted = Counter(v.persona for v in plan(config(personas={"checkout": 3, "staff": 1}), 800))
    assert set(weighted) == {"checkout", "staff"}
    assert weighted["checkout"] / sum(weighted.values()) == pytest.approx(0.75, abs=0.05)
    assert plan(config(personas="checkout=3,staff=1"), 50) == plan(
        config(personas={"checkout": 3, "staff": 1}), 50
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"rate": 0}, "rate must be > 0"),
        ({"rate": 501}, "rate must be > 0 and <= 500"),
        ({"max_requests": None}, "never unbounded"),
        ({"duration_s": 3601}, "duration must be"),
        ({"max_requests": 0}, "requests must be >= 1"),
        ({"concurrency": 0}, "concurrency must be"),
        ({"timeout_s": 0}, "timeout must be"),
        ({"base_url": "ftp://127.0.0.1"}, "url must be"),
        ({"base_url": "http://127.0.0.1:8080/?x=1"}, "no query"),
        ({"personas": ["browse", "shopping"]}, "unknown persona 'shopping'"),
        ({"personas": {"browse": 0}}, "above 0"),
        ({"focus_tenant": "nosuch", "focus_share": 0.5}, "unknown shop 'nosuch'"),
        ({"focus_user": "acme-c99999", "focus_share": 0.5}, "acme has"),
        ({"focus_user": "someone", "focus_share": 0.5}, "neither"),
        ({"focus_user": "acme-c00001", "focus_tenant": "hooli", "focus_share": 0.5}, "not in"),
        ({"focus_tenant": "acme"}, "focus share above 0"),
        ({"focus_share": 0.5}, "a tenant or user"),
        ({"focus_tenant": "acme", "focus_share": 1.5}, "between 0 and 1"),
        ({"focus_user": "acme-staff", "focus_share": 0.5, "personas": ["browse"]}, "staff"),
        ({"progress": "fancy"}, "progress must be"),
    ],
)
def test_bad_configurations_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        config(**overrides)


@pytest.mark.parametrize(
    "url",
    ["http://example.com", "http://10.0.0.1:8080", "https://169.254.169.254", "http://gateway"],
)
def test_traffic_goes_nowhere_but_loopback_unless_the_host_is_named(url: str) -> None:
    host = url.split("//")[1].split(":")[0]
    with pytest.raises(ValueError, match=f"--allow-host {host} .*localhost, 127.0.0.0/8"):
        config(base_url=url)

    assert config(base_url=url, allow_hosts=[host.upper()]).base_url == url
    with pytest.raises(ValueError, match="is not loopback"):
        config(base_url=url, allow_hosts=["another-host"])


@pytest.mark.parametrize(
    "url", ["http://localhost:8080", "http://127.0.0.2:8080", "http://[::1]:8080"]
)
def test_any_loopback_url_needs_no_naming(url: str) -> None:
    assert config(base_url=url).base_url == url


def test_the_command_line_names_the_option_that_allows_a_host(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(["--url", "http://gateway:8080", "--requests", "5"])
    assert exited.value.code == 2
    assert "--allow-host gateway" in capsys.readouterr().err
    allowed = parse(["--url", "http://gateway:8080", "--allow-host", "gateway", "--requests", "5"])
    assert (allowed.base_url, allowed.allow_hosts) == ("http://gateway:8080", ("gateway",))


def test_a_host_not_named_is_reported_with_the_missing_bound_not_after_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Without a bound only the bound was reported; the refusal of the host, the more
    fundamental mistake, came only once a bound was given."""
    with pytest.raises(SystemExit) as exited:
        parse(["--url", "http://example.com:8080"])
    assert exited.value.code == 2
    error = capsys.readouterr().err
    host, bound = error.index("--allow-host example.com"), error.index("give --duration")
    assert host < bound, error
    assert error.count("error:") == 1, error  # one message, both problems


def parse(argv: list[str]) -> TrafficConfig:
    parser = argparse.ArgumentParser(prog="traffic")
    add_arguments(parser)
    return config_from_args(parser.parse_args(argv), parser)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--rate", "0", "--duration", "5"], ["--rate", "rate must be > 0 and <= 500", "got 0"]),
        (["--rate", "fast", "--duration", "5"], ["--rate", "'fast'"]),
        (["--rate", "900", "--duration", "5"], ["--rate", "got 900"]),
        (["--duration", "7200"], ["--duration", "got 7200"]),
        (["--requests", "-3"], ["--requests", "got -3"]),
        (["--requests", "2.5"], ["--requests", "'2.5'"]),
        (["--concurrency", "1000", "--requests", "5"], ["--concurrency", "got 1000"]),
        ([], ["--duration", "--requests", "never unbounded"]),
        (["--url", "ftp://example", "--requests", "5"], ["--url", "ftp://example"]),
        (["--personas", "browse,shopping", "--requests", "5"], ["--personas", "'shopping'"]),
        (["--focus-tenant", "nosuch", "--requests", "5"], ["--focus-tenant", "'nosuch'"]),
        (["--focus-user", "acme-x", "--requests", "5"], ["--focus-user", "'acme-x'"]),
        (["--focus-share", "1.5", "--requests", "5"], ["--focus-share", "got 1.5"]),
        (["--focus-tenant", "acme", "--requests", "5"], ["focus share above 0"]),
        (["--progress", "fancy", "--requests", "5"], ["--progress", "'fancy'"]),
    ],
)
def test_bad_arguments_name_the_bad_value(
    argv: list[str], expected: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse(argv)
    assert exited.value.code == 2
    error = capsys.readouterr().err
    for fragment in expected:
        assert fragment in error, error


def test_arguments_make_the_config() -> None:
    argv = [
        "--url", "http://127.0.0.1:8090/", "--rate", "25", "--duration", "30", "--requests",
        "400", "--concurrency", "4", "--seed", "9", "--focus-tenant", "acme", "--focus-user",
        "acme-c00003", "--focus-share", "0.5", "--personas", "browse,checkout",
        "--journal", "j.jsonl", "--timeout", "3", "--progress", "plain",
    ]  # fmt: skip
    assert parse(argv) == TrafficConfig(
        base_url="http://127.0.0.1:8090",
        rate=25.0,
        duration_s=30.0,
        max_requests=400,
        concurrency=4,
        seed=9,
        personas="browse,checkout",
        focus_tenant="acme",
        focus_user="acme-c00003",
        focus_share=0.5,
        journal="j.jsonl",
        timeout_s=3.0,
        progress="plain",
    )
    defaults = parse(["--requests", "1"])
    assert (defaults.base_url, defaults.rate, defaults.concurrency) == (
        "http://127.0.0.1:8080",
        10.0,
        8,
    )
    assert defaults.time_limit_s == 3600  # a request cap alone still ends within the hour


# --------------------------------------------------------------------------------------------
# Progress
# --------------------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_live_line_on_a_terminal_and_silent_elsewhere() -> None:
    async def show(stream: io.StringIO) -> None:
        tally = Tally(total=42, errors=2)
        tally.by_status[200] = 40
        async with showing_progress("auto", tally, stream=stream):
            await asyncio.sleep(0.6)

    terminal, pipe = FakeTerminal(), io.StringIO()
    asyncio.run(show(terminal))
    asyncio.run(show(pipe))

    assert "42 requests" in terminal.getvalue() and "200:40" in terminal.getvalue()
    assert "errors 2" in terminal.getvalue()
    assert pipe.getvalue() == ""


# --------------------------------------------------------------------------------------------
# Real runs
# --------------------------------------------------------------------------------------------


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]
    record_file: Path
    output_file: Path

    def mark(self) -> int:
        return len(self.records())

    def records(self, since: int = 0) -> list[dict[str, Any]]:
        lines = self.record_file.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines[since:]]

    def output(self) -> str:
        return self.output_file.read_text(encoding="utf-8", errors="replace")[-3000:]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("traffic_gateway")
    record_file, output_file = directory / "requests.jsonl", directory / "gateway.out"
    record_file.touch()
    port = free_port()
    environment = child_environment({"TRAFFIC_GATEWAY_RECORD": str(record_file)})
    process = start_uvicorn("tests.support.traffic_gateway:app", port, environment, output_file)
    running = Gateway(f"http://127.0.0.1:{port}", process, record_file, output_file)
    try:
        wait_until_http_ready(f"{running.url}/health", process, READY_TIMEOUT, running.output)
        yield running
    finally:
        stop_process(process)


def read_journal(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.integration
@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_the_rate_holds_and_every_request_is_journaled(
    gateway: Gateway, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    journal = tmp_path / "journal.jsonl"
    mark = gateway.mark()
    started = time.time()
    summary = run(
        TrafficConfig(gateway.url, rate=40, duration_s=2.0, journal=journal, progress="auto")
    )

    # 40 a second for 2 s: about 80, never a burst far above it.
    assert 50 <= summary.total <= 100, summary
    assert summary.elapsed_s < 5.0
    received = gateway.records(mark)
    lines = read_journal(journal)
    assert len(received) == len(lines) == summary.total
    for line in lines:
        assert set(line) == JOURNAL_KEYS, line
        assert isinstance(line["status"], int) and line["error"] is None, line
        assert started - 1 <= line["t"] <= time.time() and line["ms"] >= 0
    assert Counter(line["status"] for line in lines) == summary.by_status
    assert summary.errors == summary.transport_errors == 0
    assert sum(summary.by_tenant.values()) == summary.total
    assert capsys.readouterr().out == ""  # not a terminal: no progress line


@pytest.mark.integration
def test_the_gateway_receives_exactly_the_plan(gateway: Gateway, tmp_path: Path) -> None:
    settings = TrafficConfig(
        gateway.url, rate=200, max_requests=1, concurrency=1, seed=5, personas=EVEN_MIX
    )
    # Enough visits to reach every route, then exactly their requests.
    visits = []
    for visit in plan(settings, 200):
        visits.append(visit)
        if {s.route for v in visits for s in v.steps} == ROUTES:
            break
    expected = [
        {
            "method": s.method,
            "path": s.path,
            "query": [list(p) for p in s.params],
            "tenant": v.tenant,
            "user": v.user,
            "user_agent": "o11ykit-traffic",
            "body": s.body,
        }
        for v in visits
        for s in v.steps
    ]
    mark = gateway.mark()
    journal = tmp_path / "journal.jsonl"
    summary = run(
        TrafficConfig(
            gateway.url,
            rate=200,
            max_requests=len(expected),
            concurrency=1,
            seed=5,
            personas=EVEN_MIX,
            journal=journal,
        )
    )

    assert gateway.records(mark) == expected
    assert set(summary.by_route) == ROUTES
    assert summary.total == len(expected) and summary.visits == len(visits)
    assert {201, 200} <= set(summary.by_status) and summary.errors == 0
    lines = read_journal(journal)
    assert [(line["visit"], line["method"], line["path"]) for line in lines] == [
        (v.index, s.method, s.path) for v in visits for s in v.steps
    ]
    assert {line["route"]: line["status"] for line in lines}["/api/checkout"] == 201


@pytest.mark.integration
def test_concurrent_visits_follow_the_plan_too(gateway: Gateway, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    settings = TrafficConfig(
        gateway.url, rate=150, max_requests=60, concurrency=6, seed=11, journal=journal
    )
    mark = gateway.mark()
    summary = run(settings)

    lines = read_journal(journal)
    received = gateway.records(mark)
    assert len(received) == len(lines) == summary.total == 60
    assert Counter((r["user"], r["method"], r["path"]) for r in received) == Counter(
        (line["user"], line["method"], line["path"]) for line in lines
    )
    # Interleaved in time, yet the visits started are the plan's first ones, and each made
    # the start of its planned requests, in order; only those still going at the cap were cut.
    by_visit: dict[int, list[tuple[str, str]]] = {}
    for line in lines:
        by_visit.setdefault(line["visit"], []).append((line["method"], line["path"]))
    planned = plan(settings, summary.visits)
    assert sorted(by_visit) == [v.index for v in planned]
    cut = 0
    for visit in planned:
        steps = [(s.method, s.path) for s in visit.steps]
        made = by_visit[visit.index]
        assert made == steps[: len(made)], visit
        cut += len(made) < len(steps)
    assert cut <= settings.concurrency


@pytest.mark.integration
def test_no_answer_is_counted_not_raised(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    summary = run(TrafficConfig(closed, rate=100, max_requests=6, journal=journal, timeout_s=2))

    assert summary.total == summary.transport_errors == summary.errors == 6
    assert summary.by_status == {}
    assert sum(summary.errors_by_tenant.values()) == 6
    for line in read_journal(journal):
        assert line["status"] is None and "Connect" in line["error"], line


@contextlib.asynccontextmanager
async def silent_server() -> AsyncIterator[str]:
    """Accepts connections, reads, never answers."""
    connections: list[asyncio.StreamWriter] = []

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        with contextlib.suppress(Exception):
            await reader.read()  # until the client gives up

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        for writer in connections:
            writer.close()
        server.close()


@pytest.mark.integration
@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_a_request_without_an_answer_times_out(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"

    async def scenario() -> Any:
        async with silent_server() as url:
            settings = TrafficConfig(
                url, rate=100, max_requests=3, concurrency=3, timeout_s=0.5, journal=journal
            )
            return await run_traffic(settings)

    began = time.monotonic()
    summary = asyncio.run(scenario())

    assert time.monotonic() - began < 5.0
    assert summary.total == summary.transport_errors == 3
    assert all("timeout" in line["error"].lower() for line in read_journal(journal))


@pytest.mark.integration
@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_a_stop_event_ends_the_run_promptly(gateway: Gateway) -> None:
    async def scenario() -> tuple[Any, float]:
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(0.8, stop.set)
        summary = await run_traffic(TrafficConfig(gateway.url, rate=30, duration_s=60), stop=stop)
        return summary, time.monotonic()

    began = time.monotonic()
    summary, ended = asyncio.run(scenario())

    assert ended - began < 0.8 + 2.5, summary
    assert 5 <= summary.total <= 40 and summary.cancelled == 0


@pytest.mark.integration
@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_stopping_cancels_what_is_still_in_flight(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"

    async def scenario() -> Any:
        async with silent_server() as url:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(0.5, stop.set)
            settings = TrafficConfig(
                url, rate=50, duration_s=60, concurrency=4, timeout_s=30, journal=journal
            )
            return await run_traffic(settings, stop=stop)

    began = time.monotonic()
    summary = asyncio.run(scenario())

    # Stopped at 0.5 s, then at most the drain second for the four hanging requests.
    assert time.monotonic() - began < 4.0
    assert summary.cancelled == 4 and summary.total == summary.errors == 0
    lines = read_journal(journal)
    assert len(lines) == 4 and {line["error"] for line in lines} == {"cancelled"}


@pytest.mark.integration
def test_the_command_line_runs_and_summarises(gateway: Gateway, tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    mark = gateway.mark()
    argv = [
        "--url", gateway.url, "--requests", "12", "--rate", "100", "--seed", "3",
        "--focus-tenant", "gekko", "--focus-share", "1", "--journal", str(journal),
        "--progress", "plain",
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "sample_app.traffic", *argv],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert "12 requests to" in done.stdout, done.stdout
    assert len(read_journal(journal)) == 12
    assert {r["tenant"] for r in gateway.records(mark)} == {"gekko"}

    refused = subprocess.run(
        [sys.executable, "-m", "sample_app.traffic", "--url", f"http://127.0.0.1:{free_port()}",
         "--requests", "2", "--progress", "none"],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1 and "is the gateway running" in refused.stderr


@pytest.mark.parametrize(
    "config",
    [
        TrafficConfig("http://127.0.0.1:9", duration_s=3600),
        TrafficConfig(
            "http://127.0.0.1:9",
            rate=12.5,
            duration_s=0.25,
            max_requests=300,
            concurrency=10,
            seed=7,
            personas={"browse": 1 / 3, "checkout": 10.0},
            focus_tenant="acme",
            focus_user="acme-c00003",
            focus_share=0.3,
            journal="traffic.jsonl",
            timeout_s=2.5,
        ),
        TrafficConfig("http://gateway:8080", max_requests=5, allow_hosts=["gateway"]),
    ],
)
def test_a_config_run_in_its_own_process_is_the_same_config(config: TrafficConfig):
    from sample_app.traffic.cli import command_line

    command = command_line(config)
    assert command[:3] == [sys.executable, "-m", "sample_app.traffic"]
    back = parse(command[3:])
    # The same run: every field but `personas`, which comes back as its weights.
    assert back.mix == config.mix
    assert {**vars(back), "personas": None} == {
        **vars(config),
        "personas": None,
        "journal": None if config.journal is None else str(config.journal),
    }


# --------------------------------------------------------------------------------------------
# `o11ykit app traffic`
# --------------------------------------------------------------------------------------------


def app_traffic(*argv: str, data_dir: Path) -> int:
    from o11ykit.cli import main

    return main(["app", "traffic", "--data-dir", str(data_dir), *argv])


def test_app_traffic_without_a_bound_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        app_traffic("--url", UNUSED_URL, data_dir=tmp_path)
    assert exited.value.code == 2
    assert "give --duration SECONDS or --requests N" in capsys.readouterr().err


def test_app_traffic_goes_to_the_url_given_even_the_default_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sample_app import stack
    from sample_app.traffic import cli

    sent_to = []

    async def recorded(settings: TrafficConfig) -> TrafficSummary:
        sent_to.append(settings.base_url)
        return TrafficSummary(0, {}, 0, 0, 0, {}, {}, {}, {}, 0, 0.0)

    monkeypatch.setattr(cli, "until_signalled", recorded)
    gateway_url = "http://127.0.0.1:18080"
    state = {"data_dir": str(tmp_path), "services": {"gateway": {"url": gateway_url}}}
    (tmp_path / stack.STATE_FILE).write_text(json.dumps(state))

    app_traffic("--url", DEFAULT_URL, "--requests", "1", data_dir=tmp_path)
    app_traffic("--requests", "1", data_dir=tmp_path)

    assert sent_to == [DEFAULT_URL, gateway_url]


@pytest.mark.integration
def test_app_traffic_stopped_by_sigterm_prints_its_summary(gateway: Gateway, tmp_path: Path):
    command = [sys.executable, "-m", "o11ykit.cli", "app", "traffic", "--url", gateway.url]
    process = subprocess.Popen(
        [*command, "--duration", "60", "--rate", "50", "--progress", "none"],
        cwd=REPO,
        env={**os.environ, "O11YKIT_APP_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        mark, deadline = gateway.mark(), time.monotonic() + READY_TIMEOUT
        while gateway.mark() == mark:  # the run has begun: its handlers are in place
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert json.loads(out)["total"] > 0
