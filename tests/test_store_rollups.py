"""Rollups: breakdowns of large windows read per-minute counts, and must agree with a scan.

Counts and errors must equal the exact scan's; percentiles must be within PERCENTILE_ERROR of
the exact nearest-rank value. ROLLUP_MIN_SPANS is lowered so that small random stores take
the rollup path, and raised to force the exact one for the ground truth.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections import Counter

import pytest

from o11ykit.store import analytics, analytics_http, compare_sides, ingest, rollup_reads
from o11ykit.store.batches import Batch, ResourceRow, ScopeRow, SpanRow
from o11ykit.store.ingest import Store
from o11ykit.store.schema import (
    PERCENTILE_ERROR,
    ROLLUP_BLOCK_GRACE_MINUTES,
    ROLLUP_BLOCK_MINUTES,
    ROLLUP_MINUTE_NS,
    SCHEMA_VERSION,
    bucket_duration_ns,
    duration_bucket,
    open_database,
)
from tests.support.store_rows import SpanRow as DirectRow
from tests.support.store_rows import StoreWriter

MINUTE = ROLLUP_MINUTE_NS
T0 = 1_750_000_020 * 10**9  # 1,750,000,020 s: a whole minute
KEYS = (
    "tenant.id",  # an indexed attribute some spans lack: the "(none)" group
    "http.route",
    "error.type",  # only on errors
    "name",
    "status",
    "kind",
    "service.name",
    "service.version",  # resource attributes
    "deployment.environment.name",  # on some resources only
)


def resources() -> list[ResourceRow]:
    rows = []
    for n in range(6):
        attributes = {"service.name": f"svc-{n % 3}", "service.version": f"1.{n // 3}"}
        if n % 2:
            attributes["deployment.environment.name"] = "production"
        digest = hashlib.sha256(repr(sorted(attributes.items())).encode()).digest()
        rows.append(ResourceRow(digest, attributes["service.name"], attributes, digest))
    return rows


def span(rng: random.Random, start_ns: int) -> SpanRow:
    error = rng.random() < 0.1
    indexed = [("http.route", rng.choice(("/a", "/b", "/c"))), ("enduser.id", str(rng.random()))]
    if rng.random() < 0.8:
        indexed.append(("tenant.id", rng.choice(("acme", "beta", "gamma", ""))))
    if error:
        indexed.append(("error.type", rng.choice(("timeout", "500"))))
    # Zero, exact powers of two (bucket bounds) and a wide lognormal spread.
    duration = rng.choice((0, 2 ** rng.randint(0, 40), int(rng.lognormvariate(16, 2))))
    return SpanRow(
        resource=rng.randrange(6),
        scope=0,
        trace_id=rng.randbytes(16),
        span_id=rng.randbytes(8),
        parent_span_id=None,
        name=rng.choice(("GET /a", "GET /b", "SELECT")),
        kind=rng.choice((2, 3)),
        start_ns=start_ns,
        duration_ns=duration,
        status_code=2 if error else rng.choice((0, 1)),
        data=b"",
        indexed=indexed,
    )


def fill(store: Store, seed: int, spans: int, start_ns: int, minutes: float) -> None:
    """Batches in rough time order, a few spans arriving late (older than their batch)."""
    rng = random.Random(seed)
    starts = sorted(start_ns + int(rng.random() * minutes * MINUTE) for _ in range(spans))
    for i in range(0, spans, 100):
        chunk = starts[i : i + 100]
        late = [max(start_ns, s - rng.randint(0, 3) * MINUTE) for s in chunk[:5]]
        rows = [span(rng, s) for s in late + chunk[5:]]
        store.write(Batch(resources(), [ScopeRow(b"s" * 32, b"", "")], rows))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """One store for the module's tests, which only read it."""
    store = Store(tmp_path_factory.mktemp("rollups"))
    # 35 minutes: windows over whole 10-minute blocks read rollup_blocks.
    fill(store, seed=11, spans=9000, start_ns=T0, minutes=35)
    yield store
    store.close()


def both(monkeypatch, connection, **query) -> tuple[analytics.Breakdown, analytics.Breakdown]:
    """The breakdown from rollups and the exact one."""
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    rolled = analytics.breakdown(connection, limit=1000, **query)
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 10**12)
    exact = analytics.breakdown(connection, limit=1000, **query)
    return rolled, exact


def assert_agree(rolled: analytics.Breakdown, exact: analytics.Breakdown) -> None:
    assert rolled.approximate and not exact.approximate
    assert rolled.total == exact.total
    assert {g.value: (g.count, g.errors) for g in rolled.groups} == {
        g.value: (g.count, g.errors) for g in exact.groups
    }
    truth = {g.value: g for g in exact.groups}
    for group in rolled.groups:
        for name in ("p50_ms", "p95_ms", "p99_ms"):
            got, want = getattr(group, name), getattr(truth[group.value], name)
            # 1e-6 ms: the value is rounded to 6 places; log2 may round at a bucket bound.
            assert abs(got - want) <= PERCENTILE_ERROR * want + 1e-6, (group.value, name)


@pytest.mark.parametrize("key", KEYS)
def test_rollups_agree_with_the_scan_on_random_windows(store, monkeypatch, key):
    rng = random.Random(key)
    windows = [(T0, T0 + 12 * MINUTE), (T0 - 5 * MINUTE, T0 + 40 * MINUTE)]  # aligned, all
    windows += [(T0 + rng.randrange(3 * MINUTE), T0 + rng.randrange(5, 12) * MINUTE + 7)]
    # blocks, minutes on both sides of them, partial minutes at the edges
    windows += [(T0 + rng.randrange(3 * MINUTE), T0 + rng.randrange(24, 35) * MINUTE + 7)]
    windows += [(T0 + MINUTE - 1, T0 + 2 * MINUTE + 1)]  # one whole minute, two partial
    for start, end in windows:
        rolled, exact = both(
            monkeypatch, store.connection, group_by=key, start_ns=start, end_ns=end
        )
        assert_agree(rolled, exact)


def test_the_result_says_percentiles_are_approximate_and_how_much(store, monkeypatch):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    params = {
        "groupBy": "tenant.id",
        "start": "2025-06-15T15:07:00Z",
        "end": "2025-06-15T15:19:00Z",
    }
    status, answer = analytics_http.handle(
        "GET", "/api/o11ykit/breakdown", params, store.connection
    )
    assert status == 200
    assert answer["approximate"] is True
    assert answer["percentileErrorPct"] == 4.43
    assert answer["note"] == "percentiles from rollups, within ±4.5%"
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 10**12)
    _, exact = analytics_http.handle("GET", "/api/o11ykit/breakdown", params, store.connection)
    assert (exact["approximate"], exact["percentileErrorPct"], exact["note"]) == (False, 0.0, "")


def test_the_bucket_of_a_duration_stands_for_it_within_the_bound():
    rng = random.Random(5)
    durations = [0, 1, 2, 3, 1000, 2**40, 2**40 - 1, 2**40 + 1]
    durations += [int(rng.lognormvariate(15, 4)) for _ in range(20_000)]
    for duration in durations:
        shown = bucket_duration_ns(duration_bucket(duration))
        assert abs(shown - duration) <= PERCENTILE_ERROR * duration * (1 + 1e-9), duration
    assert round(PERCENTILE_ERROR, 4) == 0.0443


@pytest.mark.parametrize(
    "query",
    [
        {"where": {"http.route": "/a"}},
        {"operation": "GET /a"},
        {"service": "svc-1"},
    ],
)
def test_filtered_breakdowns_scan_the_spans(store, monkeypatch, query):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    result = analytics.breakdown(
        store.connection, group_by="tenant.id", start_ns=T0, end_ns=T0 + 12 * MINUTE, **query
    )
    assert not result.approximate and result.total > 0


@pytest.mark.parametrize(
    ("key", "window"),
    [
        ("enduser.id", (T0, T0 + 12 * MINUTE)),  # high cardinality: not rolled up
        ("tenant.id", (T0 + 1, T0 + MINUTE + 1)),  # no whole minute in it
    ],
)
def test_keys_not_rolled_up_and_windows_without_a_whole_minute_are_scanned(
    store, monkeypatch, key, window
):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    start, end = window
    assert not analytics.breakdown(
        store.connection, group_by=key, start_ns=start, end_ns=end
    ).approximate


def test_small_windows_are_scanned(store):
    # 9,000 spans: far below the default ROLLUP_MIN_SPANS.
    result = analytics.breakdown(
        store.connection, group_by="tenant.id", start_ns=T0, end_ns=T0 + 35 * MINUTE
    )
    assert not result.approximate and result.total == 9000


def test_spans_written_outside_the_store_are_scanned_until_it_rolls_them_up(tmp_path, monkeypatch):
    connection = open_database(tmp_path)
    StoreWriter(connection).add_many(
        DirectRow(
            "svc", "GET /a", T0 + i * 5 * 10**9, (i + 1) * 10**6, attributes={"tenant.id": "a"}
        )
        for i in range(300)
    )
    query = {"group_by": "tenant.id", "start_ns": T0, "end_ns": T0 + 25 * MINUTE}
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    assert not analytics.breakdown(connection, **query).approximate
    Store(tmp_path).close()  # opening the writer catches rollups up
    rolled, exact = both(monkeypatch, connection, **query)
    assert_agree(rolled, exact)
    connection.close()


def test_retention_by_count_keeps_rollup_counts_exact(tmp_path, monkeypatch):
    store = Store(tmp_path, max_spans=1000)
    fill(store, seed=3, spans=3000, start_ns=T0, minutes=35)
    assert store.span_count <= 1050
    connection = store.connection
    first_trusted, oldest = connection.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'rollups_from_minute'),"
        " (SELECT min(minute) FROM rollups)"
    ).fetchone()
    assert first_trusted > T0 // MINUTE and oldest >= first_trusted
    for key in ("tenant.id", "service.version", "status"):
        rolled, exact = both(
            monkeypatch, connection, group_by=key, start_ns=T0, end_ns=T0 + 35 * MINUTE
        )
        assert_agree(rolled, exact)
    assert_blocks_sum_the_minutes(connection)
    store.close()


def test_evicting_spans_stamped_in_the_future_keeps_rollups_on_and_exact(tmp_path, monkeypatch):
    """A wrong clock once moved the trusted minutes to the evicted span's, years ahead, and
    no span was rolled up again."""
    now = time.time_ns()
    future = now + 200 * 365 * 24 * 3600 * 10**9
    store = Store(tmp_path, max_spans=1000)
    fill(store, seed=6, spans=30, start_ns=future, minutes=3)  # the oldest ids: evicted first
    fill(store, seed=7, spans=3000, start_ns=now - 30 * MINUTE, minutes=29)
    connection = store.connection
    first_trusted, future_rows = connection.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'rollups_from_minute'),"
        " (SELECT count(*) FROM rollups WHERE minute >= ?)",
        (future // MINUTE,),
    ).fetchone()
    assert first_trusted <= now // MINUTE + 1
    assert future_rows == 0  # the evicted spans' cells are gone, not left counting them
    fill(store, seed=8, spans=100, start_ns=now - MINUTE // 2, minutes=0.4)
    (latest,) = connection.execute(
        "SELECT sum(spans) FROM rollups WHERE key = '' AND minute >= ?", ((now - MINUTE) // MINUTE,)
    ).fetchone()
    assert latest and latest >= 100  # still rolled up
    for window in ((now - 30 * MINUTE, now), (now - 30 * MINUTE, future + 10 * MINUTE)):
        rolled, exact = both(
            monkeypatch, connection, group_by="tenant.id", start_ns=window[0], end_ns=window[1]
        )
        assert_agree(rolled, exact)
    store.close()


def test_retention_by_age_drops_old_rollups(tmp_path, monkeypatch):
    now = time.time_ns()
    start = now - 20 * MINUTE
    store = Store(tmp_path, max_age_seconds=10 * 60)
    fill(store, seed=4, spans=2000, start_ns=start, minutes=20)
    oldest = store.connection.execute("SELECT min(minute) FROM rollups").fetchone()[0]
    # Eviction runs at most every 5 s, so only the first batch's cutoff is certain.
    assert oldest * MINUTE >= start + 9 * MINUTE
    rolled, exact = both(
        monkeypatch, store.connection, group_by="tenant.id", start_ns=start, end_ns=now
    )
    assert_agree(rolled, exact)
    store.close()


def assert_blocks_sum_the_minutes(connection, at_least: int = 10) -> None:
    """Every block analytics may read (summed, and wholly in the trusted minutes) sums its
    minutes."""
    from_minute, before = connection.execute(
        "SELECT (SELECT value FROM meta WHERE key = 'rollups_from_minute'),"
        " (SELECT value FROM meta WHERE key = 'rollup_blocks_before')"
    ).fetchone()
    first_block = -(-from_minute // ROLLUP_BLOCK_MINUTES)
    summed = connection.execute(
        f"SELECT key, minute / {ROLLUP_BLOCK_MINUTES} AS block, value, bucket, sum(spans),"
        " sum(errors) FROM rollups GROUP BY 1, 2, 3, 4 HAVING block >= ? AND block < ?"
        " ORDER BY 1, 2, 3, 4",
        (first_block, before),
    ).fetchall()
    blocks = connection.execute(
        "SELECT key, block, value, bucket, spans, errors FROM rollup_blocks"
        " WHERE block >= ? AND block < ? ORDER BY 1, 2, 3, 4",
        (first_block, before),
    ).fetchall()
    assert blocks == summed and len(blocks) >= at_least


def test_blocks_sum_the_minutes_they_hold(store):
    assert_blocks_sum_the_minutes(store.connection)


def test_a_store_from_before_rollup_blocks_gets_them_when_the_writer_opens_it(
    tmp_path, monkeypatch
):
    store = Store(tmp_path)
    fill(store, seed=5, spans=2000, start_ns=T0, minutes=35)
    store.connection.executescript(
        "DELETE FROM rollup_blocks;"
        " DELETE FROM meta WHERE key = 'rollup_blocks_before';"
        " UPDATE meta SET value = 3 WHERE key = 'schema_version'"
    )
    store.close()
    store = Store(tmp_path)
    connection = store.connection
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        SCHEMA_VERSION,
    )
    assert_blocks_sum_the_minutes(connection)
    rolled, exact = both(
        monkeypatch, connection, group_by="tenant.id", start_ns=T0, end_ns=T0 + 35 * MINUTE
    )
    assert_agree(rolled, exact)
    store.close()


def test_without_the_blocks_counter_every_minute_is_read(store, monkeypatch):
    connection = store.connection
    window = {"group_by": "tenant.id", "start_ns": T0, "end_ns": T0 + 35 * MINUTE}
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    with_blocks = analytics.breakdown(connection, **window)
    connection.execute("BEGIN")
    try:
        connection.execute("DELETE FROM meta WHERE key = 'rollup_blocks_before'")
        assert analytics.breakdown(connection, **window) == with_blocks
    finally:
        connection.execute("ROLLBACK")


def test_blocks_are_summed_once_over_by_the_clock_and_late_spans_still_count(tmp_path, monkeypatch):
    block = ROLLUP_BLOCK_MINUTES * MINUTE
    start = (T0 // block + 1) * block  # a block's first minute
    clock = [start]
    monkeypatch.setattr(ingest.time, "time_ns", lambda: clock[0])
    store = Store(tmp_path)
    rng = random.Random(9)

    def write(first_ns: int, last_ns: int, spans: int = 300) -> None:
        rows = [span(rng, rng.randrange(first_ns, last_ns)) for _ in range(spans)]
        store.write(Batch(resources(), [ScopeRow(b"s" * 32, b"", "")], rows))

    def blocks() -> int:
        return store.connection.execute("SELECT count(*) FROM rollup_blocks").fetchone()[0]

    def blocks_before() -> int:
        return store.connection.execute(
            "SELECT value FROM meta WHERE key = 'rollup_blocks_before'"
        ).fetchone()[0]

    # Spans written as their minutes pass: the first block is over, but within its grace.
    minutes = iter(range(3 * ROLLUP_BLOCK_MINUTES))
    for minute in minutes:
        clock[0] = start + minute * MINUTE + MINUTE // 2
        write(start + minute * MINUTE, clock[0])
        if minute == ROLLUP_BLOCK_MINUTES + ROLLUP_BLOCK_GRACE_MINUTES - 1:
            break
    assert blocks() == 0
    # Past the grace: summed at the next write, and so on for the next block.
    for minute in minutes:
        clock[0] = start + minute * MINUTE + MINUTE // 2
        write(start + minute * MINUTE, clock[0])
    assert blocks_before() == start // block + 2
    assert_blocks_sum_the_minutes(store.connection)
    # Stragglers for the summed blocks go into them as well.
    write(start, start + 2 * block, spans=500)
    assert_blocks_sum_the_minutes(store.connection)
    # summed blocks, then a whole block not yet summed (read from its minutes)
    for window in [(start - 7, start + 2 * block + 7 * MINUTE + 3), (start, start + 4 * block)]:
        for key in ("tenant.id", "service.version", "status"):
            rolled, exact = both(
                monkeypatch, store.connection, group_by=key, start_ns=window[0], end_ns=window[1]
            )
            assert_agree(rolled, exact)
    store.close()


def test_percentiles_of_one_bucket_are_its_middle():
    counts = Counter({duration_bucket(10**6): 99, duration_bucket(10**9): 1})
    percentile = rollup_reads.bucket_percentile
    assert percentile(counts, 0.99) == pytest.approx(10**6, rel=PERCENTILE_ERROR)
    assert percentile(counts, 1.0) == pytest.approx(10**9, rel=PERCENTILE_ERROR)
    assert math.isclose(
        bucket_duration_ns(duration_bucket(2**20)), 2 ** (20 + 1 / 16), rel_tol=1e-12
    )


# --------------------------------------------------------------------------------------------
# compare from rollups
# --------------------------------------------------------------------------------------------

WINDOWS = [
    (T0, T0 + 12 * MINUTE),  # whole minutes only
    (T0 - 5 * MINUTE, T0 + 40 * MINUTE),  # all of it
    (T0 + 17 * 10**9, T0 + 31 * MINUTE + 7),  # 10-minute blocks, minutes and partial minutes
    (T0 + 17 * 10**9, T0 + 9 * MINUTE + 7),  # partial minutes at both edges
    (T0 + MINUTE - 1, T0 + 2 * MINUTE + 1),  # one whole minute, two partial
]


def compare_both(
    monkeypatch, connection, **query
) -> tuple[analytics.Comparison, analytics.Comparison]:
    """The comparison from rollups and the exact scan of every span (no sample) of its keys."""
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    rolled = analytics.compare(connection, limit=1000, **query)
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 10**12)
    monkeypatch.setattr(compare_sides, "COMPARE_SAMPLE", 10**12)
    exact = analytics.compare(connection, limit=1000, **{**query, "keys": rolled.keys})
    assert rolled.note.startswith("from rollups") and exact.note == ""
    assert not exact.approximate
    return rolled, exact


@pytest.mark.parametrize("keys", [list(KEYS), None], ids=["rolled-up keys", "default keys"])
@pytest.mark.parametrize("window", WINDOWS)
def test_compare_errors_from_rollups_equals_the_scan(store, monkeypatch, keys, window):
    start, end = window
    rolled, exact = compare_both(
        monkeypatch,
        store.connection,
        start_ns=start,
        end_ns=end,
        selection=analytics.Selection.errors(),
        keys=keys,
    )
    assert not rolled.approximate and rolled.error_bound_pct == 0
    assert (rolled.selection_count, rolled.baseline_count) == (
        exact.selection_count,
        exact.baseline_count,
    )
    assert rolled.selection_count > 0 and rolled.baseline_count > 0
    assert rolled.pairs == exact.pairs  # same pairs, counts, percentages and order
    assert any(p.value is None for p in rolled.pairs)  # "(none)" is a value, as in the scan


def test_default_keys_not_rolled_up_are_left_out_and_named(store, monkeypatch):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    result = analytics.compare(
        store.connection,
        start_ns=T0,
        end_ns=T0 + 12 * MINUTE,
        selection=analytics.Selection.errors(),
    )
    assert "enduser.id" not in result.keys and "tenant.id" in result.keys
    assert result.note == "from rollups; keys not rolled up, left out: enduser.id"


@pytest.mark.parametrize(
    "query",
    [
        {"where": {"http.route": "/a"}},
        {"operation": "GET /a"},
        {"service": "svc-1"},
        {"keys": ["tenant.id", "enduser.id"]},  # asked for a key not rolled up: scanned
        {"start_ns": T0 + 1, "end_ns": T0 + MINUTE + 1},  # no whole minute
    ],
)
def test_filtered_compares_and_keys_not_rolled_up_are_scanned(store, monkeypatch, query):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    query = {"start_ns": T0, "end_ns": T0 + 12 * MINUTE, **query}
    for selection in (analytics.Selection.errors(), analytics.Selection.slower_than(1)):
        result = analytics.compare(store.connection, selection=selection, **query)
        assert not result.approximate and result.note == "" and result.selection_count > 0


def test_origin_errors_are_never_read_from_rollups(store, monkeypatch):
    # Rollups count each value's errors, not which error spans have a failed child.
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    window = {"start_ns": T0, "end_ns": T0 + 12 * MINUTE}
    origin = analytics.compare(
        store.connection, selection=analytics.Selection.origin_errors(), **window
    )
    errors = analytics.compare(store.connection, selection=analytics.Selection.errors(), **window)
    assert errors.note.startswith("from rollups")
    assert origin.note == "" and not origin.approximate
    # Every span here is a trace of its own: no error has a failed child.
    assert origin.selection_count == errors.selection_count > 0
    assert "enduser.id" in origin.keys  # scanned: no key left out


def test_small_windows_compare_by_scanning(store):
    result = analytics.compare(
        store.connection,
        start_ns=T0,
        end_ns=T0 + 35 * MINUTE,
        selection=analytics.Selection.errors(),
    )
    assert result.note == "" and result.selection_count + result.baseline_count == 9000


# Zero (an exact split: 0 ns has its own bucket), a bucket's lower bound, inside buckets.
THRESHOLDS_MS = [0.0, 2**20 / 1e6, 1.0, 8.9, 25.0, 500.0]


@pytest.mark.parametrize("threshold_ms", THRESHOLDS_MS)
@pytest.mark.parametrize("window", WINDOWS)
def test_compare_slower_from_rollups_is_within_its_bound(store, monkeypatch, threshold_ms, window):
    start, end = window
    selection = analytics.Selection.slower_than(threshold_ms)
    rolled, exact = compare_both(
        monkeypatch, store.connection, start_ns=start, end_ns=end, selection=selection
    )
    bound = rolled.error_bound_pct
    # Side sizes: estimates (rounded) that still add up to every span of the window.
    total = rolled.selection_count + rolled.baseline_count
    assert abs(total - (exact.selection_count + exact.baseline_count)) <= 1
    if threshold_ms == 0 or window in WINDOWS[:2]:  # split exactly; a threshold bucket in use
        assert (bound == 0) == (threshold_ms == 0)
    if bound == 0:  # no rolled-up span in the threshold's bucket: nothing estimated
        assert not rolled.approximate and rolled.pairs == exact.pairs
        return
    assert rolled.approximate
    truth = {(p.key, p.value): p for p in exact.pairs}
    found = {(p.key, p.value): p for p in rolled.pairs}
    for pair in rolled.pairs:
        want = truth.get((pair.key, pair.value))
        if want is None:  # not over-represented in truth: only within the bound of it
            assert pair.difference <= bound + 1e-9
            continue
        assert abs(pair.selection_pct - want.selection_pct) <= bound + 1e-9
        assert abs(pair.baseline_pct - want.baseline_pct) <= bound + 1e-9
        assert abs(pair.difference - want.difference) <= bound + 1e-9
    for key_value, want in truth.items():
        if key_value not in found:
            assert want.difference <= bound + 1e-9


def test_the_threshold_bucket_is_split_by_log_position():
    bucket = duration_bucket(10**7)
    middle_ms = bucket_duration_ns(bucket) / 1e6  # halfway through the bucket, in log scale
    selected, boundary, share = rollup_reads.bucket_selection(
        analytics.Selection.slower_than(middle_ms)
    )
    assert boundary == bucket and share == pytest.approx(0.5, abs=1e-6)
    counts = Counter({bucket - 1: 7, bucket: 10, bucket + 1: 3})
    assert selected(counts, 0) == pytest.approx(3 + 5, abs=1e-4)
    errors, boundary, _ = rollup_reads.bucket_selection(analytics.Selection.errors())
    assert boundary is None and errors(counts, 4) == 4


def test_compare_after_retention_by_count_stays_exact(tmp_path, monkeypatch):
    store = Store(tmp_path, max_spans=1000)
    fill(store, seed=3, spans=3000, start_ns=T0, minutes=35)
    rolled, exact = compare_both(
        monkeypatch,
        store.connection,
        start_ns=T0,
        end_ns=T0 + 35 * MINUTE,
        selection=analytics.Selection.errors(),
    )
    assert rolled.pairs == exact.pairs and rolled.selection_count == exact.selection_count
    store.close()


def test_compare_answer_says_it_is_approximate_and_how_much(store, monkeypatch):
    monkeypatch.setattr(rollup_reads, "ROLLUP_MIN_SPANS", 1)
    params = {
        "selection": "slower:25ms",
        "start": "2025-06-15T15:07:00Z",
        "end": "2025-06-15T15:19:00Z",
    }
    status, answer = analytics_http.handle("GET", "/api/o11ykit/compare", params, store.connection)
    assert status == 200 and answer["approximate"] is True
    assert 0 < answer["differenceErrorPct"] <= 200
    assert answer["note"].startswith("from rollups: the spans in the threshold's 9%-wide")
    assert "enduser.id" in answer["note"]
    status, answer = analytics_http.handle(
        "GET", "/api/o11ykit/compare", {**params, "selection": "errors"}, store.connection
    )
    assert (answer["approximate"], answer["differenceErrorPct"]) == (False, 0.0)


def test_a_pair_sent_twice_in_a_span_is_counted_once(tmp_path, monkeypatch):
    """OTLP forbids repeating a key; a sender that does must not count its span twice in the
    rollups when the index holds the pair once."""
    from o11ykit.store.batches import batch_from_request
    from tests.support.store_data import kv, request
    from tests.support.store_data import span as otlp_span

    store = Store(tmp_path)
    spans = []
    for n in range(300):
        one = otlp_span(n + 1, n + 1, "GET", start=T0 + n * 600 * 10**6)
        one.attributes.append(kv("tenant.id", "dup" if n % 3 == 0 else "other"))
        if n % 3 == 0:
            one.attributes.append(kv("tenant.id", "dup"))
        spans.append(one)
    store.write(batch_from_request(request(spans)))
    rolled, exact = both(
        monkeypatch, store.connection, group_by="tenant.id", start_ns=T0, end_ns=T0 + 3 * MINUTE
    )
    assert_agree(rolled, exact)
    assert {g.value: g.count for g in rolled.groups} == {"dup": 100, "other": 200}
    store.close()


def test_a_key_sent_twice_with_two_values_keeps_the_last_in_every_reading(tmp_path, monkeypatch):
    """Its last value, as decoding the span's bytes reads it: one group for the span, and
    the same answer from rollups and from the scan (until 2026-12-06 both values were
    indexed: the scan put the span in two groups and the rollups took it out of the spans
    without the key twice)."""
    from o11ykit.store.batches import batch_from_request
    from tests.support.store_data import kv, request
    from tests.support.store_data import span as otlp_span

    store = Store(tmp_path)
    spans = []
    for n in range(100):
        one = otlp_span(n + 1, n + 1, "GET", start=T0 + n * 600 * 10**6)
        if n < 50:
            one.attributes.append(kv("tenant.id", "a"))
        elif n == 50:
            one.attributes.extend([kv("tenant.id", "x"), kv("tenant.id", "y")])
        spans.append(one)
    store.write(batch_from_request(request(spans)))
    rolled, exact = both(
        monkeypatch, store.connection, group_by="tenant.id", start_ns=T0, end_ns=T0 + 3 * MINUTE
    )
    assert_agree(rolled, exact)
    assert rolled.total == 100
    assert {g.value: g.count for g in rolled.groups} == {"a": 50, "y": 1, None: 49}
    store.close()
