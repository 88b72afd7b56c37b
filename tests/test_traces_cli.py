"""`o11ykit traces ...` against the fake Jaeger of test_jaeger_query, asserting on printed text."""

from __future__ import annotations

import argparse
import json
import random
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone

import pytest

from o11ykit import traces_cli
from o11ykit.backends.jaeger_query import JaegerQuery
from o11ykit.store.schema import open_database
from o11ykit.timeformats import format_clock
from tests.conftest import free_port
from tests.support.store_rows import ERROR, MS, OK, SpanRow, StoreWriter
from tests.test_jaeger_query import CHECKOUT_TRACE, PAYMENT_TRACE, FakeJaeger


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="o11ykit")
    traces_cli.register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["traces", *argv])
    except SystemExit as exited:  # argparse refused an option: usage and the reason, status 2
        out, err = capsys.readouterr()
        return int(exited.code or 0), out, err
    code = args.run(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(autouse=True)
def no_terminal_width(monkeypatch):
    """Printed as to a pipe, whatever runs the tests: a COLUMNS set outside (pytest-xdist's
    workers set 80) would size the tables as for that terminal. Tests that want a width
    set it themselves."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Recent spans: acme is 10% of the traffic and has nearly all the errors."""
    rng = random.Random(1)
    now = time.time_ns()
    rows = []
    for i in range(400):
        acme = i % 10 == 0
        rows.append(
            SpanRow(
                "checkout",
                "POST /pay",
                now - (i + 1) * 500 * MS,
                rng.randint(1, 50) * MS * (8 if acme else 1),
                ERROR if acme and i % 20 == 0 else OK,
                attributes={"tenant.id": "acme" if acme else rng.choice(("beta", "gamma"))},
                resource={"service.version": "2.0" if acme else "1.0"},
            )
        )
    connection = open_database(tmp_path_factory.mktemp("cli-store"))
    StoreWriter(connection).add_many(rows)
    yield connection
    connection.close()


@pytest.fixture
def fake(store):
    with FakeJaeger(store) as server:
        yield server


def test_services(fake, capsys):
    code, out, _ = run(["services", "--url", fake.url], capsys)
    assert code == 0
    assert out.splitlines()[:3] == ["checkout", "frontend", "payments"]
    assert f"Jaeger UI: {fake.url}/search" in out


def test_search_table_and_link(fake, capsys):
    code, out, _ = run(
        [
            "search",
            "--url",
            fake.url,
            "--service",
            "checkout",
            "--attr",
            "tenant.id=acme",
            "--min-duration",
            "50ms",
            "--since",
            "30m",
            "--limit",
            "7",
        ],
        capsys,
    )
    assert code == 0
    rows = {line.split("│")[1].strip(): line for line in out.splitlines() if "│" in line}
    checkout = rows[CHECKOUT_TRACE]
    assert "frontend: GET /checkout" in checkout
    assert "120.00 ms" in checkout
    assert re.search(r"│\s+4\s+│\s+✗ 1\s+│", checkout)
    assert re.search(r"│\s+1\s+│\s+0\s+│", rows[PAYMENT_TRACE])
    assert "2025-06-15 15:06:40.000" in checkout  # the earliest span's start, UTC
    _, params = fake.requests[-1]
    assert params["query.attributes"] == '{"tenant.id": "acme"}'
    assert params["query.durationMin"] == "50ms"
    assert params["query.searchDepth"] == "7"
    link = next(line for line in out.splitlines() if line.startswith("Jaeger UI: "))
    assert link.startswith(f"Jaeger UI: {fake.url}/search?service=checkout&tags=")
    assert "lookback=custom" in link and link.endswith("&limit=7")
    assert "\x1b[" not in out  # no colour codes when stdout is not a terminal


def test_show_prints_a_waterfall(fake, capsys):
    code, out, _ = run(["show", CHECKOUT_TRACE, "--url", fake.url], capsys)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == f"Trace {CHECKOUT_TRACE}: 4 spans, 120.00 ms, 1 error(s)"
    spans = [line for line in lines if "█" in line]
    assert len(spans) == 4
    # Indented by depth in tree order; a service is named where it changes.
    assert spans[0].startswith("frontend: GET /checkout ")
    assert spans[1].startswith("  POST ")
    assert spans[2].startswith("    checkout: POST /checkout ✗")
    assert spans[3].startswith("      SELECT orders ")
    assert "payment declined" in lines[lines.index(spans[2]) + 1]
    # The root's bar fills the timeline; the database call starts a sixth of the way in.
    assert spans[0].count("█") == traces_cli.BAR_WIDTH
    timeline = spans[0].index("█")
    assert spans[3].count("█") == 10  # 30 ms of 120 ms in 40 columns
    assert spans[3].index("█") - timeline == 6  # starts at 20 ms: 40 * 20 / 120 columns in
    assert spans[3].rstrip().endswith("30.00")
    assert f"Jaeger UI: {fake.url}/trace/{CHECKOUT_TRACE}" in out


def test_a_waterfall_drawn_in_part_says_how_many_spans_it_left_out(fake, monkeypatch):
    from rich.console import Console

    from labs.cli import open_one_trace
    from o11ykit.backends.jaeger_query import JaegerQuery

    client = JaegerQuery(fake.url)
    console = Console(record=True, width=200)
    console.print(traces_cli.waterfall(client.get_trace(CHECKOUT_TRACE), most=2))
    out = console.export_text()
    assert [line.split()[0] for line in out.splitlines() if "█" in line] == ["frontend:", "POST"]
    assert "... and 2 more spans" in out
    # A walk-through's search step opens the listed trace with the most spans, as a step
    # may ask (the newest of them on a tie): here the 4-span checkout, not the 1-span payment.
    console = Console(record=True, width=200)
    listed = [{"traceId": PAYMENT_TRACE, "spans": 1}, {"traceId": CHECKOUT_TRACE, "spans": 4}]
    open_one_trace(console, client, {"kind": "search", "traces": listed})
    out = console.export_text()
    assert f"→ o11ykit traces show {CHECKOUT_TRACE}" in out
    assert "checkout: POST /checkout ✗" in out and "payment declined" in out
    console = Console(record=True, width=200)
    tie = [{"traceId": CHECKOUT_TRACE, "spans": 4}, {"traceId": PAYMENT_TRACE, "spans": 4}]
    open_one_trace(console, client, {"kind": "search", "traces": tie})
    assert f"→ o11ykit traces show {CHECKOUT_TRACE}" in console.export_text()
    # Nothing listed (or a breakdown): nothing opened.
    console = Console(record=True, width=200)
    open_one_trace(console, client, {"kind": "search", "traces": []})
    assert console.export_text() == ""
    # A walk-through in Japanese says what it left out in Japanese.
    monkeypatch.setattr("labs.cli.SHOWN_SPANS", 2)
    console = Console(record=True, width=200)
    open_one_trace(console, client, {"kind": "search", "traces": listed}, "ja")
    out = console.export_text()
    assert "...ほか 2 個のスパン" in out and "more spans" not in out


def test_show_with_attributes(fake, capsys):
    _, out, _ = run(["show", CHECKOUT_TRACE, "--attrs", "--url", fake.url], capsys)
    assert "tenant.id=acme" in out
    assert "db.system.name=postgresql" in out
    line = next(line for line in out.splitlines() if "tenant.id=acme" in line)
    assert line.startswith(" " * 8)  # under its span (depth 2), indented further


def test_show_unknown_trace_is_one_line_and_non_zero(fake, capsys):
    code, _, err = run(["show", "ffffffffffffffffffffffffffffffff", "--url", fake.url], capsys)
    assert code == 1
    assert err.strip().count("\n") == 0 and "was not found" in err
    assert "retention" not in err  # the fixture's store removed nothing
    # The query API answered: the hint for an address where nothing answers is not for it.
    assert err == f"o11ykit traces: trace {'f' * 32} was not found at {fake.url}\n"


def test_breakdown_table(fake, capsys):
    code, out, _ = run(["breakdown", "--by", "tenant.id", "--url", fake.url], capsys)
    assert code == 0
    assert "400 spans by tenant.id in 3 group(s) (indexed span attribute)" in out
    acme = next(line for line in out.splitlines() if "│ acme" in line)
    assert re.search(r"│ acme\s+│\s+40\s+│\s+20\s+│\s+50.0\s+│", acme)
    _, params = fake.requests[-1]
    assert params["groupBy"] == "tenant.id"
    assert f"Jaeger UI: {fake.url}/search?" in out


def test_a_breakdown_cut_short_by_the_scan_limit_says_so_in_its_title():
    answer = {"groupBy": "feature", "source": "span bytes", "total": 20000, "groups": []}
    title = traces_cli.breakdown_table({**answer, "truncated": True}).title
    assert title.plain == (
        "20000 spans (the newest; more matched) by feature in 0 group(s) (span bytes)"
    )
    assert traces_cli.breakdown_table(answer).title.plain.startswith("20000 spans by feature")


def test_a_breakdown_past_its_limit_counts_every_group_in_its_title(fake, capsys):
    """How many distinct values a key had (a lab's question) is read off the title, not
    counted row by row: the groups past --limit are in it too."""
    code, out, _ = run(
        ["breakdown", "--by", "tenant.id", "--limit", "2", "--url", fake.url], capsys
    )
    assert code == 0
    assert "400 spans by tenant.id in 3 group(s)" in out
    assert "1 smaller group(s) not shown" in out
    assert sum(line.startswith("│ ") for line in out.splitlines()) == 2


def test_compare_errors_puts_acme_first(fake, capsys):
    code, out, _ = run(["compare", "--errors", "--url", fake.url], capsys)
    assert code == 0
    assert "errors: 20 spans against 380 others" in out
    first = next(line for line in out.splitlines() if line.startswith("│ "))
    # acme and version 2.0 are the same spans here: equal scores, ordered by key.
    assert re.search(r"│ service\.version\s+│ 2\.0\s+│\s+100.0% \(20\)", first)
    second = [line for line in out.splitlines() if line.startswith("│ ")][1]
    assert re.search(r"│ tenant\.id\s+│ acme\s+│\s+100.0% \(20\)", second)
    assert "tags=%7B%22error%22%3A%22true%22%7D" in out


def test_compare_origin_errors_asks_for_them_and_links_the_errors(fake, capsys):
    code, out, _ = run(["compare", "--origin-errors", "--url", fake.url], capsys)
    assert code == 0, out
    assert fake.requests[-1][1]["selection"] == "origin-errors"
    assert "errors where they began: 20 spans against 380 others" in out
    assert "tags=%7B%22error%22%3A%22true%22%7D" in out  # Jaeger UI: its errors


def test_compare_slower_than(fake, capsys):
    code, out, _ = run(["compare", "--slower-than", "100ms", "--url", fake.url], capsys)
    assert code == 0
    assert "slower than 100ms" in out
    assert fake.requests[-1][1]["selection"] == "slower:100ms"
    assert "minDuration=100ms" in out


@pytest.mark.parametrize(
    ("command", "service"),
    [
        (["search"], "nothing"),  # the fake Jaeger finds no traces for this one
        (["breakdown", "--by", "tenant.id"], "chekout"),
        (["compare", "--errors"], "chekout"),
    ],
)
def test_an_unknown_service_is_named_beside_the_known_ones(fake, capsys, command, service):
    code, out, _ = run([*command, "--service", service, "--url", fake.url], capsys)
    assert code == 0
    known = "services: checkout, frontend, payments"
    assert f"No service named {service!r} has sent spans here ({known})." in out
    assert "┏" not in out  # no empty table
    assert f"Jaeger UI: {fake.url}/search?service={service}" in out


@pytest.mark.parametrize("command", [["breakdown", "--by", "tenant.id"], ["compare", "--errors"]])
@pytest.mark.parametrize("since", ["1ms", "1ns"])
def test_a_window_with_nothing_in_it_says_so(fake, capsys, command, since):
    # The store's spans are 500 ms apart, the newest 500 ms old.
    argv = [*command, "--service", "checkout", "--since", since, "--url", fake.url]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert f"Nothing matched in the last {since}: widen --since or drop a filter." in out
    assert "┏" not in out


def _rfc3339(nanoseconds: int) -> str:
    """A span's start time as --start and --end take it, cut to the microsecond."""
    moment = datetime.fromtimestamp(nanoseconds // 1000 / 1e6, timezone.utc)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _starts(store) -> list[int]:
    return [start for (start,) in store.execute("SELECT start_ns FROM spans ORDER BY start_ns")]


def test_a_window_given_by_times_asks_for_those_times(fake, store, capsys):
    # The fixture's spans are 500 ms apart: from the 100th start to the 200th holds 100.
    starts = _starts(store)
    start, end = _rfc3339(starts[100]), _rfc3339(starts[200])
    argv = ["breakdown", "--by", "tenant.id", "--start", start, "--end", end, "--url", fake.url]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "100 spans by tenant.id" in out
    _, params = fake.requests[-1]
    assert (params["start"], params["end"]) == (start[:-1] + "000Z", end[:-1] + "000Z")
    link = next(line for line in out.splitlines() if line.startswith("Jaeger UI: "))
    assert f"lookback=custom&start={starts[100] // 1000}&end={starts[200] // 1000}" in link


def test_since_counts_back_from_end(fake, store, capsys):
    starts = _starts(store)
    end = _rfc3339(starts[200])
    argv = ["breakdown", "--by", "tenant.id", "--end", end, "--since", "50s", "--url", fake.url]
    code, out, err = run(argv, capsys)
    assert code == 0, err
    assert "100 spans by tenant.id" in out  # the 50 s before the 200th span: 100 of them


def test_search_sends_the_times_given(fake, capsys):
    start, end = "2025-06-15T15:00:00Z", "2025-06-15T17:10:00.5+02:00"
    code, _, err = run(["search", "--start", start, "--end", end, "--url", fake.url], capsys)
    assert code == 0, err
    _, params = fake.requests[-1]
    assert params["query.startTimeMin"] == "2025-06-15T15:00:00.000000000Z"
    assert params["query.startTimeMax"] == "2025-06-15T15:10:00.500000000Z"


@pytest.mark.parametrize("command", [["breakdown", "--by", "tenant.id"], ["compare", "--errors"]])
def test_a_window_of_times_with_nothing_in_it_says_which(fake, capsys, command):
    window = ["--start", "2020-01-01T10:00:00Z", "--end", "2020-01-01T10:15:00Z"]
    code, out, err = run([*command, *window, "--url", fake.url], capsys)
    assert code == 0, err
    said = "Nothing matched from 2020-01-01 10:00:00.000 to 2020-01-01 10:15:00.000 UTC:"
    assert f"{said} move --start earlier or --end later or drop a filter." in out
    assert "┏" not in out


def test_a_window_outside_what_the_store_holds_says_what_it_holds(fake, store, capsys):
    starts = _starts(store)
    held = f"from {format_clock(starts[0])} to {format_clock(starts[-1])} UTC"
    window = ["--start", "2020-01-01T10:00:00Z", "--end", "2020-01-01T10:15:00Z"]
    code, out, _ = run(["breakdown", "--by", "tenant.id", *window, "--url", fake.url], capsys)
    assert code == 0
    assert f"The store holds spans that started {held}." in out
    # Overlapping what it holds, with a filter nothing passes: the window is not the reason.
    argv = ["breakdown", "--by", "tenant.id", "--attr", "tenant.id=nobody", "--since", "1h"]
    code, out, _ = run([*argv, "--url", fake.url], capsys)
    assert code == 0 and "Nothing matched in the last 1h" in out
    assert "The store holds" not in out


def test_the_store_says_when_retention_removed_older_spans(tmp_path, capsys):
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many([SpanRow("checkout", "POST /pay", 10**18, MS, OK)])
    connection.execute("UPDATE meta SET value = 12345 WHERE key = 'evicted_spans'")
    with FakeJaeger(connection) as store_api:
        code, out, _ = run(["breakdown", "--by", "name", "--url", store_api.url], capsys)
        assert code == 0
        said = "The store holds spans that started from 2001-09-09 01:46:40.000 to 2001-09-09"
        assert said in out and "; retention has removed 12,345 older ones." in out
        # A trace not found may have been among them: said on the error's one line.
        code, _, err = run(["show", "f" * 32, "--url", store_api.url], capsys)
    connection.close()
    assert code == 1 and err.count("\n") == 1
    removed = "retention has removed 12,345 spans, the oldest first"
    held = "(the spans held start at 2001-09-09 01:46:40.000 UTC)"
    assert err.endswith(f"was not found at {store_api.url}; {removed} {held}\n"), err


@pytest.fixture(scope="module")
def emptied_store(tmp_path_factory):
    """A real store whose retention (max_age) removed every span three services sent:
    its status still counts them, its services and spans are none."""
    from o11ykit.store.server import StoreServer
    from o11ykit.timeformats import parse_time
    from tests.support.fork_processes import wait_until
    from tests.support.store_data import request, span

    old = parse_time("2025-06-15T15:00:00Z")  # far older than max_age: removed on writing
    with StoreServer(
        tmp_path_factory.mktemp("emptied"), http_port=0, grpc_port=None, query_port=0, max_age=60
    ) as server:
        for n, service in enumerate(("cart", "pay", "ship"), start=1):
            spans = [span(n, n * 10 + i, f"GET /{service}", start=old) for i in range(2)]
            _post(server, request(spans, service).SerializeToString())
        client = JaegerQuery(server.query_url)
        assert wait_until(lambda: client.status()["evictedSpans"] == 6, timeout=10)
        assert client.status()["spans"] == 0 and client.status()["services"] == 3
        yield server


@pytest.mark.parametrize(
    "command",
    [
        ["search", "--since", "5m"],
        ["breakdown", "--by", "name"],
        ["compare", "--errors"],
        # A service whose spans were all removed sent spans all the same: not a typo.
        ["search", "--service", "cart"],
    ],
)
def test_a_store_retention_emptied_says_how_many_spans_it_removed(emptied_store, capsys, command):
    code, out, err = run([*command, "--url", emptied_store.query_url], capsys)
    assert code == 0, err
    assert "The store holds no spans; retention has removed 6." in out
    assert "yet" not in out and "No service named" not in out


def test_services_of_a_store_retention_emptied_are_counted_not_denied(emptied_store, capsys):
    code, out, _ = run(["services", "--url", emptied_store.query_url], capsys)
    assert code == 0
    assert out.splitlines()[0] == (
        "No service holds spans now: retention has removed all 6 spans the 3 service(s) sent."
    )
    assert "No services have sent spans yet." not in out


def test_a_trace_retention_removed_from_an_emptied_store_says_so(emptied_store, capsys):
    url = emptied_store.query_url
    code, _, err = run(["show", f"{1:032x}", "--url", url], capsys)
    assert code == 1 and err.count("\n") == 1
    assert err == (
        f"o11ykit traces: trace {1:032x} was not found at {url}; retention has removed 6"
        " spans, and the store holds none now\n"
    )


def test_services_retention_emptied_are_counted_beside_those_listed(tmp_path, capsys):
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many([SpanRow("checkout", "POST /pay", 10**18, MS, OK)])
    for service in ("checkout", "gone"):  # the writer lists every service that sent spans
        connection.execute("INSERT OR IGNORE INTO operations VALUES (?, 'op', 2)", (service,))
    connection.execute("UPDATE meta SET value = 12 WHERE key = 'evicted_spans'")

    class StoreServices(FakeJaeger):  # the services the store's spans are of
        def answer(self, path, params):
            if path == "/api/v3/services":
                return 200, {"services": ["checkout"]}
            return super().answer(path, params)

    with StoreServices(connection) as store_api:
        code, out, _ = run(["services", "--url", store_api.url], capsys)
    connection.close()
    assert code == 0
    assert out.splitlines()[:2] == [
        "checkout",
        "1 more service(s) sent spans that retention has removed since.",
    ]


def test_an_empty_store_says_it_holds_nothing_and_jaeger_says_nothing_more(tmp_path, capsys):
    connection = open_database(tmp_path)
    with FakeJaeger(connection) as store_api:
        code, out, _ = run(["compare", "--errors", "--url", store_api.url], capsys)
    connection.close()
    assert code == 0 and "The store holds no spans yet." in out
    args = argparse.Namespace(start=None, end=None, since="1h")
    with FakeJaeger() as plain:  # Jaeger has no status to ask: the message alone
        assert traces_cli._held_instead(JaegerQuery(plain.url), traces_cli._window(args)) is None


def test_compare_finding_no_errors_in_a_window_of_times_names_it(fake, store, capsys):
    # The fixture's errors are every 20th span from the newest: none among the 10 oldest.
    starts = _starts(store)
    window = ["--start", _rfc3339(starts[0]), "--end", _rfc3339(starts[10])]
    code, out, err = run(["compare", "--errors", *window, "--url", fake.url], capsys)
    assert code == 0, err
    assert "None of the 10 spans from " in out
    assert " UTC failed: move --start earlier or --end later." in out


def test_breakdown_against_plain_jaeger_is_a_clear_error(capsys):
    with FakeJaeger() as plain:
        code, _, err = run(["breakdown", "--by", "tenant.id", "--url", plain.url], capsys)
    assert code == 1
    assert "only in o11ykit's local store" in err


def test_status_says_what_the_store_holds(fake, capsys):
    code, out, _ = run(["status", "--url", fake.url], capsys)
    assert code == 0
    assert f"the store at {fake.url}" in out
    assert re.search(r"spans\s+│ 400\s", out), out
    assert re.search(r"evicted by retention\s+│ 0\s", out), out
    assert re.search(r"newest span start\s+│ \d{4}-\d\d-\d\dT", out), out


@pytest.mark.parametrize(
    ("count", "shown"),
    [(0, "0 B"), (812, "812 B"), (3_400_000, "3.4 MB"), (1_250_000_000, "1.2 GB")],
)
def test_sizes_are_shown_in_the_unit_that_reads_at_a_glance(count, shown):
    assert traces_cli._size(count) == shown


def test_status_against_plain_jaeger_is_a_clear_error(capsys):
    with FakeJaeger() as plain:
        code, _, err = run(["status", "--url", plain.url], capsys)
    assert code == 1
    assert "has no /api/o11ykit/status" in err and "only in o11ykit's local store" in err


def test_unreachable_store(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, out, err = run(["search", "--url", url], capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"o11ykit traces: cannot reach the query API at {url}")
    assert "(is the store or Jaeger running, and is that its query address?)" in err
    assert err.count("\n") == 1


def test_bad_option_values(fake, capsys):
    code, _, err = run(["search", "--url", fake.url, "--attr", "tenant.id"], capsys)
    assert code == 2 and "KEY=VALUE" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search", "--since", "soon"], "argument --since: 'soon' is not a duration"),
        (["search", "--since", "0"], "argument --since: '0' is not more than 0"),
        (["search", "--since", "99999999h"], "argument --since: '99999999h' is out of range"),
        (["search", "--min-duration", "1x"], "argument --min-duration: '1x' is not a duration"),
        (["search", "--limit", "0"], "argument --limit: '0' is not a whole number from 1 to 1000"),
        (["breakdown", "--by", "tenant.id", "--limit", "x"], "argument --limit: 'x' is not a"),
        (["compare", "--slower-than", "0s"], "argument --slower-than: '0s' is not more than 0"),
        (["search", "--limit", "5000"], "argument --limit: '5000' is not a whole number from 1"),
        # A count is ASCII digits, as the docs list it: int() would read these as 10 and 1.
        (["search", "--limit", "1_0"], "argument --limit: '1_0' is not a whole number from 1"),
        (["compare", "--errors", "--limit", "\uff11"], "argument --limit: '\uff11' is not a"),
        (["compare", "--errors", "--limit", "1001"], "argument --limit: '1001' is not a whole"),
        (["breakdown", "--by", " "], "argument --by: an empty key: give an attribute key"),
        (
            ["search", "--min-duration", "2s", "--max-duration", "1s"],
            "--min-duration 2s is longer than --max-duration 1s: no span could match",
        ),
        (
            ["search", "--start", "yesterday"],
            "argument --start: 'yesterday' is not an RFC 3339 time (2026-11-22T10:00:00Z)",
        ),
        (
            ["breakdown", "--by", "x", "--end", "2026-12-07T14:05:00"],  # no offset
            "argument --end: '2026-12-07T14:05:00' is not an RFC 3339 time",
        ),
        (
            ["compare", "--errors", "--since", "1h", "--start", "2026-12-07T14:05:00Z"],
            "argument --start: not allowed with argument --since",
        ),
        (
            ["search", "--start", "2026-12-07T15:00:00Z", "--end", "2026-12-07T14:00:00Z"],
            "--start 2026-12-07T15:00:00+00:00 is not before --end 2026-12-07T14:00:00+00:00:"
            " no span could be in it",
        ),
        (
            ["breakdown", "--by", "x", "--start", "2262-01-01T00:00:00Z"],
            "--start 2262-01-01T00:00:00+00:00 is not before now (",
        ),
    ],
)
def test_a_bad_option_is_refused_before_any_query_naming_it(capsys, argv, message):
    # Nothing listens at the URL: a refusal that tried to query would say so instead.
    code, out, err = run([*argv, "--url", f"http://127.0.0.1:{free_port()}"], capsys)
    assert code == 2 and out == ""
    assert message in err, err


@pytest.mark.parametrize(
    "url",
    [
        "127.0.0.1:16686",
        "ftp://127.0.0.1",
        "http://",
        # The API paths are appended to it: these would land in a query or in the host.
        "http://127.0.0.1:16686?x=1",
        "http://127.0.0.1:16686/#top",
        "http://user:pw@127.0.0.1:16686",
        "http://user:p@w@127.0.0.1:16686",  # the host follows the last "@"
    ],
)
def test_a_url_that_is_not_an_http_url_is_refused_naming_it(capsys, url):
    code, out, err = run(["services", "--url", url], capsys)
    assert code == 2 and out == ""
    shown = url.replace("user:pw@", "***@").replace("user:p@w@", "***@").replace("=1", "=***")
    shown = shown.replace("#top", "#***")  # a fragment may hold a token as well
    assert f"argument --url: {shown!r} is not an absolute http:// or https:// URL" in err
    assert "user:" not in err  # nor its password


def test_an_unknown_operation_is_named_beside_the_known_ones(fake, capsys):
    argv = ["breakdown", "--by", "tenant.id", "--service", "checkout", "--operation", "GET /nope"]
    argv += ["--url", fake.url]
    code, out, _ = run(argv, capsys)
    assert code == 0
    assert "'checkout' has no operation named 'GET /nope' (operations: POST /checkout" in out


def test_compare_with_nothing_selected_says_so_instead_of_an_empty_table(fake, capsys):
    code, out, _ = run(["compare", "--slower-than", "1h", "--url", fake.url], capsys)
    assert code == 0
    assert "None of the 400 spans of the last 15m is slower than 1h: lower --slower-than." in out
    assert "┏" not in out


def test_default_url_comes_from_settings(monkeypatch):
    monkeypatch.setenv("O11YKIT_QUERY_URL", "http://jaeger.internal:16686")
    args = argparse.Namespace(url=None)
    assert traces_cli._query_url(args) == "http://jaeger.internal:16686"
    monkeypatch.delenv("O11YKIT_QUERY_URL")
    assert traces_cli._query_url(args) == traces_cli.DEFAULT_URL


def test_a_malformed_query_url_variable_is_refused_not_swapped_for_the_default(monkeypatch, capsys):
    # A service ignores a bad variable and goes on; a command asking the default address
    # instead could read another store, so it stops and says which variable, as for --url.
    monkeypatch.setenv("O11YKIT_QUERY_URL", "bob:s3cret@localhost:1")
    code, out, err = run(["services"], capsys)
    assert code == 2 and out == ""
    assert err.startswith("o11ykit traces: o11ykit setting query_url (O11YKIT_QUERY_URL=")
    assert "accepted values: an absolute http:// or https:// URL" in err
    assert "s3cret" not in err


def test_an_unreachable_address_says_how_to_name_another(capsys):
    url = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(["services", "--url", url], capsys)
    assert code == 1
    assert err.startswith(f"o11ykit traces: cannot reach the query API at {url}")
    assert err.rstrip().endswith("--url (or O11YKIT_QUERY_URL) names another address")


def test_ctrl_c_while_the_query_api_keeps_silent_is_one_line_and_130(tmp_path):
    # A port that accepts and never answers: the command waits, and Ctrl-C ends it.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        port = silent.getsockname()[1]
        command = [sys.executable, "-m", "o11ykit.cli", "traces", "services"]
        command += ["--url", f"http://127.0.0.1:{port}"]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            silent.settimeout(10)
            connection, _ = silent.accept()  # it has asked
            child.send_signal(signal.SIGINT)
            _, err = child.communicate(timeout=10)
            connection.close()
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert child.returncode == 130
    assert "Traceback" not in err and err.strip() == "o11ykit: interrupted"


def _post(server, body: bytes) -> None:
    """One OTLP/HTTP protobuf request to a store's receiver, acknowledged."""
    posted = urllib.request.Request(
        f"{server.otlp_http_endpoint}/v1/traces",
        data=body,
        headers={"Content-Type": "application/x-protobuf"},
    )
    with urllib.request.urlopen(posted, timeout=10) as answer:
        assert answer.status == 200


@pytest.fixture(scope="module")
def live_store(tmp_path_factory):
    """A real store, in this process, holding one trace with values of every scalar type."""
    from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue

    from o11ykit.store.server import StoreServer
    from tests.support.store_data import kv, request, span

    one = span(7, 1, "GET /typed", start=time.time_ns() - 10**9)
    one.attributes.extend(
        [kv("flag", True), kv("ratio", 2.0), kv("third", 1 / 3), kv("count", 7), kv("who", "ann")]
    )
    array = AnyValue(
        array_value=ArrayValue(values=[AnyValue(int_value=1), AnyValue(bool_value=False)])
    )
    one.attributes.add(key="list", value=array)
    with StoreServer(
        tmp_path_factory.mktemp("live"), http_port=0, grpc_port=None, query_port=0
    ) as server:
        _post(server, request([one], "typed").SerializeToString())
        yield server


def test_attributes_print_as_a_search_takes_them_and_each_finds_its_trace(live_store, capsys):
    url = live_store.query_url
    trace = f"{7:032x}"
    code, out, err = run(["show", trace, "--attrs", "--url", url], capsys)
    assert code == 0, err
    printed = {
        key: value
        for line in out.splitlines()
        for key, _, value in [line.strip().partition("=")]
        if key in ("flag", "ratio", "third", "count", "who", "list")
    }
    assert printed == {
        "flag": "true",
        "ratio": "2",
        "third": repr(1 / 3),
        "count": "7",
        "who": "ann",
        "list": '["1","false"]',
    }
    for key, value in printed.items():
        argv = ["search", "--service", "typed", "--attr", f"{key}={value}", "--url", url]
        code, out, err = run(argv, capsys)
        assert code == 0 and trace in out, (key, value, out, err)


def test_a_past_incident_is_found_by_its_times_in_a_real_store(tmp_path, capsys):
    """Two traces an hour ago and more: --start/--end (or --end and --since) pick each out
    through the store's own query API; the default window, the last 15m, holds neither."""
    from o11ykit.store.server import StoreServer
    from o11ykit.timeformats import parse_time
    from tests.support.fork_processes import wait_until
    from tests.support.store_data import request, span

    first, second = parse_time("2025-06-15T15:00:00Z"), parse_time("2025-06-15T15:30:00Z")
    spans = [span(1, 1, "GET /early", start=first), span(2, 2, "GET /late", start=second)]
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as server:
        _post(server, request(spans, "shop").SerializeToString())
        url = server.query_url

        def stored() -> int:
            with urllib.request.urlopen(f"{url}/api/o11ykit/status", timeout=10) as answer:
                return json.load(answer)["spans"]

        assert wait_until(lambda: stored() == 2, timeout=10)  # acknowledged is not yet stored
        search = ["search", "--service", "shop", "--url", url]
        windows = {
            "early": ["--start", "2025-06-15T14:55:00Z", "--end", "2025-06-15T15:05:00Z"],
            "late": ["--end", "2025-06-15T16:31:00+01:00", "--since", "2m"],
        }
        for name, window in windows.items():
            code, out, err = run([*search, *window], capsys)
            assert code == 0, err
            assert f"GET /{name}" in out and out.count("shop: GET /") == 1, out
        code, out, _ = run(search, capsys)
        assert code == 0
        assert "Nothing matched in the last 15m: widen --since or drop a filter." in out


@pytest.mark.parametrize(
    "command", [["search"], ["breakdown", "--by", "tenant.id"], ["compare", "--errors"]]
)
def test_a_value_the_store_refuses_exits_2_with_its_message(live_store, capsys, command):
    # Only the server judges an attribute's value: its 400 is a usage error all the same.
    argv = [*command, "--attr", "error=maybe", "--url", live_store.query_url]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == "" and err.count("\n") == 1, err
    assert "'maybe'" in err and "true or false" in err


@pytest.mark.parametrize("command", [["search"], ["breakdown", "--by", "tenant.id"]])
def test_the_otlp_port_given_as_the_query_url_says_where_the_query_api_is(
    live_store, capsys, command
):
    code, _, err = run([*command, "--url", live_store.otlp_http_endpoint], capsys)
    assert code == 1 and err.count("\n") == 1
    assert "this is the store's OTLP receiver" in err
    assert "the query API, /api/v3/ and /api/o11ykit/, is on the query port" in err
    assert "?" not in err.split("receiver")[0]  # the path, without the query string


def test_a_failed_span_shows_the_exceptions_it_recorded():
    from o11ykit.backends.jaeger_query import Event, SpanView

    def span(status_message: str, events: list) -> SpanView:
        return SpanView(
            "t", "s", None, "catalog", "GET /products/{id}", "server", 0, 1_000_000, 1.0,
            "error", status_message, {}, {}, events,
        )  # fmt: skip

    raised = Event("exception", 5, {"exception.type": "KeyError", "exception.message": "'JPY'"})
    other = Event("retry", 6, {"exception.type": "ignored"})
    # An SDK's record_exception leaves the status message empty: the event is the reason.
    assert traces_cli.error_lines(span("", [raised, other])) == ["KeyError: 'JPY'"]
    assert traces_cli.error_lines(span("payment declined", [raised])) == [
        "payment declined",
        "KeyError: 'JPY'",
    ]
    assert traces_cli.error_lines(span("KeyError: 'JPY'", [raised])) == ["KeyError: 'JPY'"]
    assert traces_cli.error_lines(span("", [])) == []


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    """A real store whose spans hold what looks like Rich markup and terminal escapes."""
    from o11ykit.store.server import StoreServer
    from tests.support.store_data import request, span

    now = time.time_ns() - 10**9
    spans = [
        span(
            30 + n,
            1,
            "op\x1b[2J[b]x[/b]",
            start=now + n * MS,
            error=n == 0,
            attributes={
                "tenant.id": "tenant[/]" if n == 0 else "plain",
                "http.route": "/items/[id]",
            },
        )
        for n in range(4)
    ]
    with StoreServer(
        tmp_path_factory.mktemp("odd"), http_port=0, grpc_port=0, query_port=0
    ) as server:
        _post(server, request(spans, "legacy[/svc]").SerializeToString())
        yield server


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["services"], "legacy[/svc]"),
        (["search", "--service", "legacy[/svc]"], "legacy[/svc]: op\\x1b[2J[b]x[/b]"),
        (["show", f"{30:032x}", "--attrs"], "http.route=/items/[id]"),
        (["breakdown", "--by", "http.route"], "/items/[id]"),
        (["breakdown", "--by", "tenant.id"], "tenant[/]"),
        (["compare", "--errors"], "tenant[/]"),
        (["search", "--service", "web[/x]"], "No service named 'web[/x]'"),
    ],
)
def test_span_text_is_printed_as_it_is_never_as_markup_or_escapes(odd_store, capsys, argv, shown):
    # Rich reads "[/svc]" as a closing tag (an error) and "[id]" as a style (dropped) unless
    # told not to; an escape sequence from a span would reach the terminal.
    code, out, err = run([*argv, "--url", odd_store.query_url], capsys)
    assert code == 0, err
    assert shown in out
    assert "\x1b" not in out


def test_a_table_from_span_text_keeps_it_on_a_console_that_reads_markup(odd_store):
    # The labs print these tables on a console of their own, which reads markup.
    import io

    from rich.console import Console

    from o11ykit.backends.jaeger_query import JaegerQuery

    end = time.time_ns()
    answer = JaegerQuery(odd_store.query_url).breakdown(
        "http.route", start=datetime_from_ns(end - 60 * 10**9), end=datetime_from_ns(end)
    )
    out = io.StringIO()
    Console(file=out, width=120).print(traces_cli.breakdown_table(answer))
    assert "/items/[id]" in out.getvalue()


def datetime_from_ns(nanoseconds: int):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(nanoseconds / 10**9, timezone.utc)


def test_the_grpc_port_given_as_the_query_url_is_one_line_not_a_traceback(odd_store, capsys):
    code, out, err = run(["services", "--url", f"http://127.0.0.1:{odd_store.grpc_port}"], capsys)
    assert code == 1 and out == "" and err.count("\n") == 1, err
    assert "does not speak HTTP/1.1" in err


def test_output_that_cannot_hold_a_mark_is_a_clear_error_not_a_bad_option(
    odd_store, capsys, monkeypatch
):
    import io

    narrow = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    monkeypatch.setattr(sys, "stdout", narrow)
    parser = argparse.ArgumentParser(prog="o11ykit")
    traces_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["traces", "show", f"{30:032x}", "--url", odd_store.query_url])
    code = args.run(args)
    err = capsys.readouterr().err
    assert code == 1
    assert "cannot hold '✗' in cp1252: set PYTHONIOENCODING=utf-8" in err


def test_an_attribute_given_twice_is_refused(fake, capsys):
    argv = ["search", "--attr", "tenant.id=a", "--attr", "tenant.id=b", "--url", fake.url]
    code, out, err = run(argv, capsys)
    assert code == 2 and out == ""
    assert "--attr tenant.id: given twice ('a' and 'b')" in err


def test_the_search_link_carries_both_durations(fake, capsys):
    argv = ["search", "--service", "checkout", "--min-duration", "1ms", "--max-duration", "5s"]
    code, out, _ = run([*argv, "--url", fake.url], capsys)
    assert code == 0
    link = next(line for line in out.splitlines() if line.startswith("Jaeger UI:"))
    assert "minDuration=1ms" in link and "maxDuration=5s" in link


def test_an_80_column_terminal_gets_every_field_of_a_search_and_a_waterfall(
    fake, capsys, monkeypatch
):
    # Rich sizes its tables to the terminal (COLUMNS here): the search's table needs about
    # 120 columns and would leave the root, spans and errors columns empty in 80.
    monkeypatch.setenv("COLUMNS", "80")
    code, out, _ = run(["search", "--service", "checkout", "--url", fake.url], capsys)
    assert code == 0
    assert max(len(line) for line in out.splitlines() if "Jaeger UI" not in line) <= 80
    assert CHECKOUT_TRACE in out
    assert "  frontend: GET /checkout  4 spans  ✗ 1 error(s)" in out
    code, out, _ = run(["show", CHECKOUT_TRACE, "--url", fake.url], capsys)
    assert code == 0
    assert max(len(line) for line in out.splitlines() if "Jaeger UI" not in line) <= 80
    spans = [line for line in out.splitlines() if "█" in line]
    assert spans[0].count("█") == traces_cli.NARROW_BAR_WIDTH
    assert all(line.rstrip()[-5:].replace(".", "").isdigit() for line in spans)  # ms kept
    assert "payment declined" in out


@pytest.mark.parametrize(
    "argv",
    [["traces", "search", "--bogus"], ["store", "serve", "--bogus", "1"], ["doctor", "--bogus"]],
)
def test_an_unrecognized_argument_is_refused_with_its_commands_usage(argv, capsys):
    from o11ykit import cli

    with pytest.raises(SystemExit) as exited:
        cli.main(argv)
    err = capsys.readouterr().err
    command = " ".join(a for a in argv if not a.startswith("-") and not a.isdigit())
    assert exited.value.code == 2
    assert err.startswith(f"usage: o11ykit {command} [-h]"), err
    unrecognized = " ".join(argv[len(command.split()) :])
    assert err.rstrip().endswith(
        f"o11ykit {command}: error: unrecognized arguments: {unrecognized}"
    )
