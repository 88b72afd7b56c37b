"""The ingest log and the writer: acknowledged means logged, and logged means stored in the end."""

from __future__ import annotations

import errno
import logging
import os
import sqlite3
import time

import pytest

from o11ykit.store.batches import batch_from_request
from o11ykit.store.checkpoints import BACKSTOP_BYTES
from o11ykit.store.ingest import Store
from o11ykit.store.ingest_log import LOG_DIRECTORY, IngestLog, LogPosition
from o11ykit.store.schema import DATABASE_NAME, PAGE_BYTES
from o11ykit.store.writer import StoreBusy, Writer
from tests.support.store_data import counts, many


def meta(directory, key: str) -> int:
    with sqlite3.connect(directory / DATABASE_NAME) as connection:
        return connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0]


def payloads(n: int) -> list[bytes]:
    return [many(3, first_trace=1 + 10 * i).SerializeToString() for i in range(n)]


def test_records_replay_in_order_from_a_position(tmp_path):
    log = IngestLog(tmp_path)
    positions = [log.append(p) for p in payloads(3)]
    log.close()
    reopened = IngestLog(tmp_path)  # appends to a new segment; the old one is replayable
    assert [p for p, _ in reopened.replay(LogPosition(0, 0))] == payloads(3)
    assert [pos for _, pos in reopened.replay(LogPosition(0, 0))] == positions
    assert [p for p, _ in reopened.replay(positions[0])] == payloads(3)[1:]
    assert list(reopened.replay(positions[-1])) == []
    assert reopened.current_segment == positions[0].segment + 1


def test_segments_rotate_and_applied_ones_are_discarded(tmp_path):
    log = IngestLog(tmp_path, segment_bytes=200)
    positions = [log.append(p) for p in payloads(6)]
    assert len({pos.segment for pos in positions}) > 2
    log.discard_before(positions[-1].segment)
    assert log.segments() == [positions[-1].segment]
    log.close()


def test_a_torn_append_that_cannot_be_cut_back_moves_on_to_a_new_segment(tmp_path, monkeypatch):
    # A full disk takes part of a record, and cutting it back fails too: the torn bytes end
    # that segment, so the records after them must go to another, where replay finds them.
    log = IngestLog(tmp_path)
    first = log.append(payloads(1)[0])
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))

    def refuse(fd, length):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "ftruncate", refuse)
    with pytest.raises(OSError, match="took 10 of"):
        log.append(payloads(2)[1])
    monkeypatch.undo()
    after = log.append(payloads(3)[2])
    assert after.segment == first.segment + 1
    log.close()
    replayed = [payload for payload, _ in IngestLog(tmp_path).replay(LogPosition(0, 0))]
    assert replayed == [payloads(1)[0], payloads(3)[2]]


def test_a_log_directory_lost_beside_the_database_starts_past_its_position(tmp_path):
    # The database says segment 7 is applied; the segments themselves are gone (deleted,
    # or not copied with traces.db). A new segment 1 would be skipped by replay after a kill.
    log = IngestLog(tmp_path, newer_than=7)
    assert log.current_segment == 8
    log.append(payloads(1)[0])
    log.close()
    assert [p for p, _ in IngestLog(tmp_path).replay(LogPosition(7, 4096))] == payloads(1)
    store = Store(tmp_path / "db")
    with store._transaction():
        store._set_log_position(LogPosition(7, 4096))
    writer = Writer(store)
    try:
        assert writer._log.current_segment == 8
    finally:
        writer.stop()


def test_a_torn_record_at_the_end_stops_replay_and_is_cut_off(tmp_path):
    log = IngestLog(tmp_path)
    whole = log.append(payloads(1)[0])
    log.close()
    segment = tmp_path / LOG_DIRECTORY / f"{whole.segment:08d}.log"
    with segment.open("ab") as file:
        file.write(b"\x10\x00\x00\x00\x00\x00")  # a header cut short by a kill
    reopened = IngestLog(tmp_path)
    assert [pos for _, pos in reopened.replay(LogPosition(0, 0))] == [whole]
    assert segment.stat().st_size == whole.offset


def test_the_writer_stores_what_the_log_holds_past_the_last_commit(tmp_path):
    log = IngestLog(tmp_path)  # as a store killed after acknowledging, before committing
    for payload in payloads(4):
        log.append(payload)
    log.close()
    writer = Writer(Store(tmp_path))
    writer.stop()
    assert counts(tmp_path)["spans"] == 12
    # The replayed segments are gone; the position says the database holds all of it.
    assert len(IngestLog(tmp_path).segments()) == 2  # the writer's own, and this one's
    assert (meta(tmp_path, "log_segment"), meta(tmp_path, "log_offset")) != (0, 0)
    Writer(Store(tmp_path)).stop()
    assert counts(tmp_path)["spans"] == 12  # nothing is replayed twice


def test_a_logged_batch_the_database_refuses_is_dropped_at_replay_not_read_at_every_start(
    tmp_path, monkeypatch, caplog
):
    # A store killed with such a batch in its log past the last commit must still start:
    # the batch is dropped and counted, as while running, and the others are written.
    log = IngestLog(tmp_path)
    for payload in payloads(2):
        log.append(payload)
    log.append(many(2, service="poison", first_trace=500).SerializeToString())
    log.append(payloads(3)[2])
    log.close()
    original = Store.write_group

    def refusing(self, batches, log_position=None):
        if any(row.service == "poison" for batch in batches for row in batch.resources):
            raise ValueError("refused for itself")
        return original(self, batches, log_position)

    monkeypatch.setattr(Store, "write_group", refusing)
    with caplog.at_level(logging.ERROR, logger="o11ykit.store"):
        Writer(Store(tmp_path)).stop()
    assert counts(tmp_path)["spans"] == 9
    assert meta(tmp_path, "dropped_spans") == 2
    assert any("could not write a batch of 2 spans" in r.message for r in caplog.records)
    monkeypatch.setattr(Store, "write_group", original)
    Writer(Store(tmp_path)).stop()  # nothing is replayed again, the dropped batch included
    assert counts(tmp_path)["spans"] == 9


def test_submitted_batches_are_written_by_stop_and_seen_after_wait_written(tmp_path):
    writer = Writer(Store(tmp_path))
    for i in range(5):
        request = many(3, first_trace=1 + 10 * i)
        assert writer.submit(batch_from_request(request), request.SerializeToString) == 3
    assert writer.wait_written(10)
    assert counts(tmp_path)["spans"] == 15
    writer.stop()
    assert counts(tmp_path)["spans"] == 15


def test_a_batch_that_cannot_be_written_is_dropped_counted_and_said_once(tmp_path, caplog):
    writer = Writer(Store(tmp_path))
    good = many(2, first_trace=1)
    bad = batch_from_request(many(2, first_trace=100))
    bad.spans[0] = bad.spans[0]._replace(name=object())
    with caplog.at_level(logging.ERROR, logger="o11ykit.store"):
        writer.submit(bad, lambda: b"")
        writer.submit(batch_from_request(good), good.SerializeToString)
        writer.submit(bad, lambda: b"")
        assert writer.wait_written(10)
    writer.stop()
    assert counts(tmp_path)["spans"] == 2
    assert meta(tmp_path, "dropped_spans") == 4
    assert len([r for r in caplog.records if "could not write a batch" in r.message]) == 1


def submit(writer: Writer, first_trace: int, spans: int = 3) -> None:
    request = many(spans, first_trace=first_trace)
    writer.submit(batch_from_request(request), request.SerializeToString)


def test_a_database_locked_by_another_program_is_waited_out_not_dropped(tmp_path, caplog):
    writer = Writer(Store(tmp_path))
    writer.store.connection.execute("PRAGMA busy_timeout=50")  # else 5 s a try
    holder = sqlite3.connect(tmp_path / DATABASE_NAME, isolation_level=None)
    try:
        with caplog.at_level(logging.WARNING, logger="o11ykit.store"):
            holder.execute("BEGIN IMMEDIATE")  # another program's write lock
            submit(writer, 1)
            submit(writer, 10)
            assert not writer.wait_written(0.5)  # acknowledged, logged, not yet stored
            holder.execute("ROLLBACK")
            assert writer.wait_written(10)
        assert counts(tmp_path)["spans"] == 6
        assert meta(tmp_path, "dropped_spans") == 0
        said = [r.message for r in caplog.records]
        assert len([m for m in said if "the database refuses writes" in m]) == 1  # once
        assert any("the database takes writes again" in m for m in said)
    finally:
        holder.close()
        writer.stop()


def test_a_full_disk_loses_nothing_acknowledged_even_when_the_store_stops_first(tmp_path):
    writer = Writer(Store(tmp_path))
    submit(writer, 1)
    assert writer.wait_written(10)
    # The database may grow no further: every write is "database or disk is full".
    (pages,) = writer.store.connection.execute("PRAGMA page_count").fetchone()
    writer.store.connection.execute(f"PRAGMA max_page_count={pages}")
    submit(writer, 10, spans=200)
    submit(writer, 300)
    assert not writer.wait_written(0.5)
    started = time.monotonic()
    writer.stop()  # does not wait for room that never comes
    assert time.monotonic() - started < 5
    assert counts(tmp_path)["spans"] == 3
    # Room again (a new process has no page limit): the next start writes what was logged.
    Writer(Store(tmp_path)).stop()
    assert counts(tmp_path)["spans"] == 3 + 200 + 3
    assert meta(tmp_path, "dropped_spans") == 0


def test_a_stopped_writer_refuses_new_batches(tmp_path):
    writer = Writer(Store(tmp_path))
    writer.stop()
    with pytest.raises(StoreBusy, match="stopping"):
        writer.submit(batch_from_request(many(1)), lambda: b"")


def test_a_new_store_has_its_page_size_and_an_older_one_keeps_its_own(tmp_path):
    """Larger pages made the writer faster (benchmarks/README.md, "Page size"); SQLite sets a
    file's page size when it is made, so a store from before keeps 4 KiB pages, and the
    writer's backstop checkpoint stays at the same size in bytes for either."""
    older = tmp_path / "older"
    older.mkdir()
    made_before = sqlite3.connect(older / DATABASE_NAME)  # SQLite's default page size
    made_before.execute("CREATE TABLE t (x)")
    made_before.close()
    for directory, page_size in ((tmp_path / "new", PAGE_BYTES), (older, 4096)):
        store = Store(directory)
        # A Store written to in-process checkpoints every 64 MiB of WAL, whatever its pages.
        (pages,) = store.connection.execute("PRAGMA wal_autocheckpoint").fetchone()
        assert pages * page_size == 64 * 1024 * 1024
        writer = Writer(store)
        try:
            message = many(50)
            writer.submit(batch_from_request(message), message.SerializeToString)
            assert writer.wait_written(10.0)
            connection = writer.store.connection
            assert connection.execute("PRAGMA page_size").fetchone() == (page_size,)
            (pages,) = connection.execute("PRAGMA wal_autocheckpoint").fetchone()
            assert pages * page_size == BACKSTOP_BYTES
            assert counts(directory)["spans"] == 50
        finally:
            writer.stop()


def test_the_wal_is_checkpointed_off_the_writers_path_while_it_runs(tmp_path):
    writer = Writer(Store(tmp_path))
    try:
        database = tmp_path / DATABASE_NAME
        # The writer's own automatic checkpoint is a backstop far above what this writes.
        (pages,) = writer.store.connection.execute("PRAGMA wal_autocheckpoint").fetchone()
        (page_size,) = writer.store.connection.execute("PRAGMA page_size").fetchone()
        assert pages * page_size == BACKSTOP_BYTES
        before = database.stat().st_size
        for n in range(5):
            message = many(400, first_trace=n * 400 + 1)
            writer.submit(batch_from_request(message), message.SerializeToString)
        assert writer.wait_written(10.0)
        # Only a checkpoint copies the WAL's pages back into the database file.
        deadline = time.monotonic() + 5
        while database.stat().st_size == before and time.monotonic() < deadline:
            time.sleep(0.05)
        assert database.stat().st_size > before
    finally:
        writer.stop()
