"""The span attribute index led by the block of span row ids (schema 5), and its key list."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from o11ykit.store import analytics
from o11ykit.store.analytics import Selection
from o11ykit.store.batches import batch_from_request
from o11ykit.store.ingest import Store
from o11ykit.store.queries import Queries, TraceQuery
from o11ykit.store.schema import (
    ATTRIBUTE_BLOCK_SHIFT,
    ATTRIBUTE_BLOCKS,
    ATTRIBUTE_LOOKUP,
    DATABASE_NAME,
    SCHEMA_VERSION,
)
from tests.support.store_data import MS, SECOND, T0, request, span

BLOCK = 2**ATTRIBUTE_BLOCK_SHIFT
WINDOW = (T0 - SECOND, T0 + 3600 * SECOND)


def spans_with(first: int, count: int, error: bool = False, **attributes: str):
    """`count` one-span traces from trace number `first`, with `attributes` on each."""
    return request(
        [
            span(
                first + n,
                first + n,
                "op",
                start=T0 + (first + n) * MS,
                attributes=attributes,
                error=error,
            )
            for n in range(count)
        ],
        "svc",
    )


def write(store: Store, message) -> None:
    store.write(batch_from_request(message, indexed_keys=store.indexed_keys))


def trace_numbers(store: Store, **attributes: str) -> set[int]:
    found = Queries(store.connection).find_traces(
        TraceQuery(*WINDOW, attributes=attributes, search_depth=1000)
    )
    return {int.from_bytes(trace[0].trace_id, "big") for trace in found.traces}


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path)
    yield store
    store.close()


def test_lookups_find_matches_in_every_block_even_after_eviction(tmp_path):
    # 3 blocks and a bit; retention then cuts into the first block, so the lowest row id is
    # not at a block's start, and the rarest value (the driver of the search) sits in the
    # first block that is left and the last one.
    store = Store(tmp_path, max_spans=3 * BLOCK)
    write(store, spans_with(1, BLOCK, **{"tenant.id": "bulk"}))
    write(store, spans_with(BLOCK + 1, 10, **{"tenant.id": "rare", "enduser.id": "ann"}))
    write(store, spans_with(BLOCK + 11, 2 * BLOCK, **{"tenant.id": "bulk"}))
    write(store, spans_with(3 * BLOCK + 11, 5, **{"tenant.id": "rare", "enduser.id": "bob"}))
    write(store, spans_with(3 * BLOCK + 16, BLOCK // 2, **{"tenant.id": "bulk"}))
    lowest, highest = store.connection.execute("SELECT min(id), max(id) FROM spans").fetchone()
    assert lowest > 1 and lowest % BLOCK != 0 and highest // BLOCK == 3
    expected_rare = set(range(BLOCK + 1, BLOCK + 11)) | set(range(3 * BLOCK + 11, 3 * BLOCK + 16))
    assert trace_numbers(store, **{"tenant.id": "rare"}) == expected_rare
    assert trace_numbers(store, **{"enduser.id": "bob"}) == set(
        range(3 * BLOCK + 11, 3 * BLOCK + 16)
    )
    assert trace_numbers(store, **{"tenant.id": "rare", "enduser.id": "ann"}) == set(
        range(BLOCK + 1, BLOCK + 11)
    )
    counted = store.connection.execute(
        f"{ATTRIBUTE_BLOCKS} SELECT count(*) FROM {ATTRIBUTE_LOOKUP.format(alias='a')}",
        ("tenant.id", "bulk"),
    ).fetchone()[0]
    total = store.connection.execute(
        "SELECT count(*) FROM span_attributes WHERE key = 'tenant.id' AND value = 'bulk'"
    ).fetchone()[0]
    assert counted == total > 2 * BLOCK
    store.close()


def test_an_empty_store_finds_nothing(store):
    assert trace_numbers(store, **{"tenant.id": "acme"}) == set()


@pytest.mark.parametrize("alias", ["a", "d"])
def test_a_lookup_seeks_the_block_index_once_a_block(store, alias):
    write(store, spans_with(1, 10, **{"tenant.id": "acme"}))
    plan = [
        row[3]
        for row in store.connection.execute(
            f"EXPLAIN QUERY PLAN {ATTRIBUTE_BLOCKS} SELECT {alias}.span_id"
            f" FROM {ATTRIBUTE_LOOKUP.format(alias=alias)}",
            ("tenant.id", "acme"),
        )
    ]
    assert f"SEARCH {alias} USING COVERING INDEX span_attributes_block_kv" in " | ".join(plan)
    assert f"SCAN {alias}" not in plan, plan


@pytest.mark.parametrize(
    "filters",
    [{}, {"service": "svc"}, {"service": "svc", "operation": "op"}],
    ids=["pair alone", "with a service", "with a service and an operation"],
)
def test_a_search_driven_by_a_rare_pair_starts_from_its_index_entries(store, filters):
    """With a service or operation condition the planner would rather walk that index and
    scan every block for each of its spans (10 ms became 0.6 s, or 20 s when fewer than
    searchDepth traces matched, over the benchmark's 1M-span hour): the join order is fixed."""
    write(store, spans_with(1, 10, **{"tenant.id": "acme"}))
    queries = Queries(store.connection)
    query = TraceQuery(*WINDOW, **filters, attributes={"tenant.id": "acme"})
    indexed = {"tenant.id": "acme"}
    sql, parameters = queries._search_sql(
        query,
        indexed,
        {"tenant.id": set()},
        ("tenant.id", "acme"),
        resources_required={},
        status=None,
        read_bytes=False,
    )
    plan = list(store.connection.execute(f"EXPLAIN QUERY PLAN {sql}", parameters))
    # The loops of the main query (parent 0), outermost first: the blocks, the pair's
    # entries in each block, then each entry's span.
    steps = [row[3] for row in plan if row[1] == 0 and row[3].startswith(("SCAN", "SEARCH"))]
    assert steps[0] == "SCAN attribute_blocks", plan
    assert steps[1].startswith("SEARCH d USING COVERING INDEX span_attributes_block_kv"), plan
    assert steps[2] == "SEARCH s USING INTEGER PRIMARY KEY (rowid=?)", plan
    assert trace_numbers(store, **{"tenant.id": "acme"}) == set(range(1, 11))


def test_the_writer_lists_every_key_it_indexed_configured_ones_too(tmp_path):
    store = Store(tmp_path, indexed_keys=("tenant.id", "team"))
    write(store, spans_with(1, 3, **{"tenant.id": "acme", "team": "red", "other": "x"}))
    assert analytics.indexed_keys(store.connection) == ["team", "tenant.id"]
    assert analytics.key_source(store.connection, "team") == analytics.INDEXED
    assert analytics.key_source(store.connection, "other") == analytics.SPAN_BYTES
    store.close()


def test_a_store_from_schema_4_gets_the_block_index_and_its_key_list(tmp_path, caplog):
    store = Store(tmp_path, indexed_keys=("tenant.id", "team"))
    write(store, spans_with(1, 20, **{"tenant.id": "acme", "team": "red"}))
    write(store, spans_with(21, 5, error=True, **{"tenant.id": "umbrella", "team": "blue"}))
    # Back to the layout of schema 4: the key+value index, no key list, no block index.
    store.connection.executescript(
        "DROP INDEX span_attributes_block_kv; DROP TABLE span_attribute_keys;"
        " CREATE INDEX span_attributes_kv ON span_attributes(key, value, span_id);"
        " UPDATE meta SET value = 4 WHERE key = 'schema_version'"
    )
    store.close()
    with caplog.at_level(logging.WARNING, logger="o11ykit.store"):
        store = Store(tmp_path, indexed_keys=("tenant.id", "team"))
    # The upgrade says so once, before the index build that makes it slow.
    assert [r.getMessage() for r in caplog.records if "upgrading" in r.getMessage()] == [
        f"o11ykit store: upgrading {tmp_path / DATABASE_NAME} to schema {SCHEMA_VERSION}:"
        " building the span attribute index once (12-13 s a million spans on a 2-core machine)"
    ]
    connection = store.connection
    indexes = {
        name
        for (name,) in connection.execute("SELECT name FROM sqlite_schema WHERE type = 'index'")
    }
    assert "span_attributes_block_kv" in indexes and "span_attributes_kv" not in indexes
    assert connection.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
        SCHEMA_VERSION,
    )
    assert analytics.indexed_keys(connection) == ["team", "tenant.id"]
    assert trace_numbers(store, team="blue") == set(range(21, 26))
    result = analytics.compare(
        connection, start_ns=WINDOW[0], end_ns=WINDOW[1], selection=Selection.errors()
    )
    assert (result.pairs[0].key, result.pairs[0].value) in {
        ("team", "blue"),
        ("tenant.id", "umbrella"),
    }
    assert ("team", "blue") in {(pair.key, pair.value) for pair in result.pairs}
    store.close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as check:
        assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="o11ykit.store"):
        Store(tmp_path).close()
    assert not [r for r in caplog.records if "schema" in r.getMessage()]


def test_a_store_indexing_fewer_keys_is_read_as_such(tmp_path):
    """Configured to index tenant.id only, the store's other default keys are not in its
    index: breakdowns and searches read them from span bytes rather than trust an index
    that lacks them."""
    store = Store(tmp_path, indexed_keys=("tenant.id",))
    write(store, spans_with(1, 5, **{"tenant.id": "acme", "http.route": "/a"}))
    write(store, spans_with(6, 5, **{"tenant.id": "acme", "http.route": "/b"}))
    connection = store.connection
    assert analytics.key_source(connection, "http.route") == analytics.SPAN_BYTES
    result = analytics.breakdown(connection, group_by="http.route", start_ns=T0, end_ns=WINDOW[1])
    assert {g.value: g.count for g in result.groups} == {"/a": 5, "/b": 5}
    assert trace_numbers(store, **{"http.route": "/a"}) == set(range(1, 6))
    store.close()


def test_keys_configured_later_are_indexed_in_the_spans_stored_before(tmp_path, caplog):
    store = Store(tmp_path)
    write(store, spans_with(1, 5, **{"app.key": "v", "team": "red"}))
    store.close()
    store = Store(tmp_path, indexed_keys=("tenant.id", "app.key"))  # app.key added
    write(store, spans_with(6, 5, **{"app.key": "v", "team": "red"}))
    assert {"app.key", "tenant.id", "http.route"} <= store.indexed_keys  # nothing dropped
    assert analytics.key_source(store.connection, "app.key") == analytics.INDEXED
    assert trace_numbers(store, **{"app.key": "v"}) == set(range(1, 11))
    result = analytics.breakdown(
        store.connection, group_by="app.key", start_ns=T0, end_ns=WINDOW[1]
    )
    assert {g.value: g.count for g in result.groups} == {"v": 10}
    store.close()
    # Configured without it again, the store goes on indexing it: its spans hold its rows.
    store = Store(tmp_path)
    assert "app.key" in store.indexed_keys
    write(store, spans_with(11, 5, **{"app.key": "v"}))
    assert trace_numbers(store, **{"app.key": "v"}) == set(range(1, 16))
    store.close()


def test_a_store_whose_keys_were_never_recorded_gets_them_indexed_in_every_span(tmp_path):
    """A store from before the indexed_keys table (its keys unrecorded) reopened with a new
    key: the key, and those its spans show, are indexed in the spans it holds."""
    store = Store(tmp_path)
    write(store, spans_with(1, 3, **{"tenant.plan": "gold", "tenant.id": "acme"}))
    store.connection.executescript(
        "DELETE FROM indexed_keys; UPDATE meta SET value = 0 WHERE key = 'indexed_keys_settled'"
    )
    store.close()
    store = Store(tmp_path, indexed_keys=("tenant.id", "tenant.plan"))
    assert trace_numbers(store, **{"tenant.plan": "gold"}) == {1, 2, 3}
    assert analytics.key_source(store.connection, "tenant.plan") == analytics.INDEXED
    store.close()


def test_a_store_indexing_no_key_reads_every_key_from_span_bytes(tmp_path):
    store = Store(tmp_path, indexed_keys=())
    write(store, spans_with(1, 2, **{"http.route": "/x"}))
    assert store.indexed_keys == frozenset()
    assert analytics.key_source(store.connection, "http.route") == analytics.SPAN_BYTES
    assert trace_numbers(store, **{"http.route": "/x"}) == {1, 2}
    store.close()


def test_a_store_that_fails_to_open_leaves_its_directory_unlocked(tmp_path, monkeypatch):
    def refuse(self, keys):
        raise sqlite3.OperationalError("database or disk is full")

    with monkeypatch.context() as patched:
        patched.setattr(Store, "_settle_indexed_keys", refuse)
        with pytest.raises(sqlite3.OperationalError) as failed:
            Store(tmp_path)
    # While the failure (and its traceback, which holds the half-made store) is alive, as in
    # a caller that retries in its except block.
    assert failed.value is not None
    Store(tmp_path).close()  # not "in use by another o11ykit store"
