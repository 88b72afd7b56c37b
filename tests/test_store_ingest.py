"""Ingest: OTLP bytes (protobuf, JSON, gzip) in, validated rows out, one transaction a batch."""

from __future__ import annotations

import base64
import gzip
import json
import sqlite3
import time
import zlib
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from o11ykit.store import analytics, writer
from o11ykit.store import ingest as store_ingest
from o11ykit.store.batches import batch_from_request, value_text
from o11ykit.store.decode import IngestError, decode_body
from o11ykit.store.ingest import Store
from o11ykit.store.schema import DATABASE_NAME
from o11ykit.store.writer import Writer
from tests.support.store_data import MS, SECOND, T0, counts, kv, many, request, span

PROTOBUF = "application/x-protobuf"
JSON = "application/json"


def otlp_json(message) -> bytes:
    """OTLP JSON as an exporter writes it: hex ids, enum names, camelCase."""
    document = MessageToDict(message)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(document).encode()


@pytest.fixture
def store(tmp_path: Path):
    store = Store(tmp_path)
    yield store
    store.close()


def ingest(store: Store, body: bytes, content_type: str = PROTOBUF, encoding: str | None = None):
    return store.write(batch_from_request(decode_body(body, content_type, encoding)))


def test_protobuf_request_is_stored_with_indexed_and_resource_attributes(store, tmp_path):
    body = request(
        [
            span(
                1,
                1,
                "GET /orders",
                attributes={
                    "tenant.id": "acme",
                    "http.response.status_code": 500,
                    "not.indexed": "x",
                },
            ),
            span(1, 2, "SELECT", parent=1, kind=3, attributes={"db.system.name": "sqlite"}),
        ],
        "orders",
        **{"service.version": "1.2"},
    ).SerializeToString()
    assert ingest(store, body) == 2
    assert counts(tmp_path) == {
        "spans": 2,
        "span_attributes": 3,
        "resources": 1,
        "resource_attributes": 2,
        "scopes": 1,
    }
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        rows = connection.execute(
            "SELECT service, name, kind, start_ns, duration_ns, status_code, parent_span_id"
            " FROM spans ORDER BY id"
        ).fetchall()
        attributes = connection.execute(
            "SELECT key, value FROM span_attributes ORDER BY key"
        ).fetchall()
    assert rows == [
        ("orders", "GET /orders", 2, T0, 10 * MS, 0, None),
        ("orders", "SELECT", 3, T0, 10 * MS, 0, (1).to_bytes(8, "big")),
    ]
    # Values are text, so a search for "500" finds the integer 500.
    assert attributes == [
        ("db.system.name", "sqlite"),
        ("http.response.status_code", "500"),
        ("tenant.id", "acme"),
    ]


def test_resources_and_scopes_are_deduplicated_across_batches(store, tmp_path):
    ingest(store, many(5).SerializeToString())
    ingest(store, many(5, first_trace=100).SerializeToString())
    ingest(store, many(5, service="other", first_trace=200).SerializeToString())
    found = counts(tmp_path)
    assert (found["spans"], found["resources"], found["scopes"]) == (15, 2, 1)
    # A new store (a restart) finds the stored resource rather than adding it again.
    store.close()
    again = Store(tmp_path)
    again.write(batch_from_request(many(5, first_trace=300)))
    again.close()
    assert counts(tmp_path)["resources"] == 2


def test_json_request_with_hex_ids_and_enum_names_or_numbers(store, tmp_path):
    message = request([span(7, 8, "json span", kind=2, error=True, attributes={"tenant.id": "j"})])
    document = json.loads(otlp_json(message))
    assert document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["kind"] == "SPAN_KIND_SERVER"
    assert ingest(store, json.dumps(document).encode(), JSON) == 1
    # The same span with numbers for the enums, as some exporters write them.
    item = document["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    item.update(kind=3, status={"code": 2}, spanId="0000000000000009")
    assert ingest(store, json.dumps(document).encode(), "application/json; charset=utf-8") == 1
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        rows = connection.execute(
            "SELECT trace_id, span_id, kind, status_code FROM spans"
        ).fetchall()
    assert rows == [
        ((7).to_bytes(16, "big"), (8).to_bytes(8, "big"), 2, 2),
        ((7).to_bytes(16, "big"), (9).to_bytes(8, "big"), 3, 2),
    ]


COMPRESSED = {
    "gzip": gzip.compress,
    "x-gzip": gzip.compress,  # RFC 9110: the same coding
    "GZip": gzip.compress,  # codings are case-insensitive
    "deflate": zlib.compress,  # the zlib format, as OpenTelemetry Python's exporter sends it
}


@pytest.mark.parametrize("encoding", COMPRESSED)
@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
def test_compressed_bodies(store, content_type, encoding):
    message = many(3)
    raw = message.SerializeToString() if content_type == PROTOBUF else otlp_json(message)
    assert ingest(store, COMPRESSED[encoding](raw), content_type, encoding) == 3


def _big_attribute() -> bytes:
    return request([span(1, 1, attributes={"payload": "x" * 70_000})]).SerializeToString()


def _big_event_or_link_attribute(where: str) -> bytes:
    message = request([span(1, 1)])
    item = message.resource_spans[0].scope_spans[0].spans[0]
    if where == "event":
        added = item.events.add(name="retry")
    else:
        added = item.links.add(trace_id=b"\2" * 16, span_id=b"\3" * 8)
    pair = added.attributes.add(key="dump")
    pair.value.string_value = "x" * 70_000
    return message.SerializeToString()


def _bad_parent(parent: bytes) -> bytes:
    message = request([span(1, 1)])
    message.resource_spans[0].scope_spans[0].spans[0].parent_span_id = parent
    return message.SerializeToString()


def _bad_link(trace: bytes, span_bytes: bytes) -> bytes:
    message = request([span(1, 1)])
    message.resource_spans[0].scope_spans[0].spans[0].links.add(trace_id=trace, span_id=span_bytes)
    return message.SerializeToString()


def _bad_ids(trace: bytes, span_bytes: bytes) -> bytes:
    message = request([span(1, 1)])
    item = message.resource_spans[0].scope_spans[0].spans[0]
    item.trace_id, item.span_id = trace, span_bytes
    return message.SerializeToString()


def _time_beyond_int64() -> bytes:
    # Found by the fuzz test: OTLP times are fixed64, SQLite integers stop at 2^63 - 1.
    message = request([span(1, 1)])
    message.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano = 2**63
    return message.SerializeToString()


def _json_with(**fields) -> bytes:
    return json.dumps({"resourceSpans": [], **fields}).encode()


def _json_span(**fields) -> bytes:
    item = {"traceId": "01" * 16, "spanId": "02" * 8, "name": "x", **fields}
    scope_spans = [{"scope": {}, "spans": [item]}]
    return json.dumps({"resourceSpans": [{"scopeSpans": scope_spans}]}).encode()


BAD_INPUTS = {
    "malformed protobuf": (b"\x0a\xff\xff\xff\xff\x0f", PROTOBUF, None, 400, "malformed protobuf"),
    "malformed JSON": (b'{"resourceSpans": [', JSON, None, 400, "malformed JSON"),
    "JSON not an object": (b"[1, 2]", JSON, None, 400, "must be an object"),
    "wrong content type": (b"hello", "text/plain", None, 415, "unsupported Content-Type"),
    "no content type": (b"hello", None, None, 415, "no Content-Type: send application/x-proto"),
    "unknown top-level field": (_json_with(resourceLogs=[]), JSON, None, 400, "resourceLogs"),
    "trace id 15 bytes": (
        _bad_ids(bytes(range(1, 16)), b"\1" * 8),
        PROTOBUF,
        None,
        400,
        "invalid trace id",
    ),
    "trace id all zero": (_bad_ids(bytes(16), b"\1" * 8), PROTOBUF, None, 400, "invalid trace id"),
    "span id 7 bytes": (_bad_ids(b"\1" * 16, b"\1" * 7), PROTOBUF, None, 400, "invalid span id"),
    "span id all zero": (_bad_ids(b"\1" * 16, bytes(8)), PROTOBUF, None, 400, "invalid span id"),
    "JSON trace id not hex": (_json_span(traceId="zz" * 16), JSON, None, 400, "not hex"),
    "JSON empty span id": (_json_span(spanId=""), JSON, None, 400, "invalid span id"),
    "JSON wrong type": (_json_span(name=42), JSON, None, 400, "invalid OTLP JSON"),
    "attribute too big": (_big_attribute(), PROTOBUF, None, 400, "'payload'"),
    "event attribute too big": (
        _big_event_or_link_attribute("event"),
        PROTOBUF,
        None,
        400,
        "attribute 'dump' of event 'retry' is over",
    ),
    "link attribute too big": (
        _big_event_or_link_attribute("link"),
        PROTOBUF,
        None,
        400,
        "attribute 'dump' of a link of span",
    ),
    "parent span id 4 bytes": (_bad_parent(b"\1" * 4), PROTOBUF, None, 400, "invalid parent"),
    "link trace id 1 byte": (
        _bad_link(b"\1", b"\1" * 8),
        PROTOBUF,
        None,
        400,
        "invalid trace id '01' in a link of span",
    ),
    "link span id empty": (
        _bad_link(b"\1" * 16, b""),
        PROTOBUF,
        None,
        400,
        "invalid span id '' in a link of span",
    ),
    "JSON link trace id short": (
        _json_span(links=[{"traceId": "01", "spanId": "eee19b7ec3c1b174"}]),
        JSON,
        None,
        400,
        "invalid trace id '01' in a link",
    ),
    "time beyond int64": (_time_beyond_int64(), PROTOBUF, None, 400, "invalid time"),
    "truncated gzip": (
        gzip.compress(many(3).SerializeToString())[:-10],
        PROTOBUF,
        "gzip",
        400,
        "gzip",
    ),
    "not gzip": (b"plain bytes", PROTOBUF, "gzip", 400, "gzip"),
    "gzip bomb": (gzip.compress(b"\0" * (17 * 1024 * 1024)), PROTOBUF, "gzip", 413, "over"),
    "truncated deflate": (
        zlib.compress(many(3).SerializeToString())[:-10],
        PROTOBUF,
        "deflate",
        400,
        "malformed deflate body",
    ),
    "not deflate": (b"plain bytes", PROTOBUF, "deflate", 400, "malformed deflate body"),
    "deflate, then more": (
        zlib.compress(many(3).SerializeToString()) + b"more",
        PROTOBUF,
        "deflate",
        400,
        "malformed deflate body",
    ),
    "deflate bomb": (zlib.compress(b"\0" * (17 * 1024 * 1024)), PROTOBUF, "deflate", 413, "over"),
    "unsupported encoding": (b"x", PROTOBUF, "br", 415, "use gzip or deflate"),
}


@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS.keys())
def test_bad_input_is_refused_with_a_status_and_leaves_the_database_as_it_was(
    store, tmp_path, case
):
    body, content_type, encoding, status, fragment = case
    ingest(store, many(4).SerializeToString())
    before = counts(tmp_path)
    with pytest.raises(IngestError) as refused:
        ingest(store, body, content_type, encoding)
    assert refused.value.status == status
    assert fragment in refused.value.message
    assert counts(tmp_path) == before


def test_one_bad_span_rejects_the_whole_request(store, tmp_path):
    message = many(10)
    message.resource_spans[0].scope_spans[0].spans[9].span_id = b""
    with pytest.raises(IngestError, match="invalid span id"):
        ingest(store, message.SerializeToString())
    assert counts(tmp_path)["spans"] == 0


def test_a_failing_write_rolls_back_everything_and_the_store_keeps_working(store, tmp_path):
    ingest(store, many(3).SerializeToString())
    before = counts(tmp_path)
    batch = batch_from_request(many(5, service="new-service", first_trace=50))
    # SQLite cannot bind an object: the insert fails after the resource row was written.
    batch.spans[-1] = batch.spans[-1]._replace(name=object())
    with pytest.raises(sqlite3.Error):
        store.write(batch)
    assert counts(tmp_path) == before
    # The resource cache did not keep the rolled-back row's id.
    assert store.write(batch_from_request(many(5, service="new-service", first_trace=50))) == 5
    assert counts(tmp_path)["resources"] == before["resources"] + 1


def test_a_group_of_batches_is_one_transaction_all_or_nothing(store, tmp_path):
    first = batch_from_request(many(3, first_trace=10))
    second = batch_from_request(many(4, service="other", first_trace=20))
    assert store.write_group([first, second]) == 7
    before = counts(tmp_path)
    good = batch_from_request(many(5, first_trace=40))
    bad = batch_from_request(many(2, first_trace=60))
    bad.spans[0] = bad.spans[0]._replace(name=object())
    with pytest.raises(sqlite3.Error):
        store.write_group([good, bad])
    assert counts(tmp_path) == before
    assert store.write_group([good, batch_from_request(many(0))]) == 5
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        ids = [row[0] for row in connection.execute("SELECT id FROM spans ORDER BY id")]
    assert ids == list(range(1, 13))  # the rolled-back group used up no row ids


def test_span_attributes_repeated_in_one_span_are_stored_once(store, tmp_path):
    message = many(1)
    repeated = message.resource_spans[0].scope_spans[0].spans[0].attributes
    repeated.extend([kv("enduser.id", "ann"), kv("enduser.id", "ann")])
    assert ingest(store, message.SerializeToString()) == 1
    assert counts(tmp_path)["span_attributes"] == 2  # its tenant.id, and enduser.id once


def test_a_store_from_before_schema_3_keeps_its_attribute_table_and_works(tmp_path):
    # The layout of span_attributes before schema 3: a rowid table and two indexes.
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        connection.executescript(
            "CREATE TABLE span_attributes (span_id INTEGER NOT NULL, key TEXT NOT NULL,"
            " value TEXT NOT NULL);"
            "CREATE INDEX span_attributes_kv ON span_attributes(key, value, span_id);"
            "CREATE INDEX span_attributes_span_kv ON span_attributes(span_id, key, value);"
        )
    store = Store(tmp_path)
    message = many(3)
    for item in message.resource_spans[0].scope_spans[0].spans:
        item.attributes.append(kv("enduser.id", "ann"))
    assert ingest(store, message.SerializeToString()) == 3
    found = analytics.breakdown(
        store.connection, group_by="enduser.id", start_ns=T0 - SECOND, end_ns=T0 + SECOND
    )
    store.close()
    assert [(group.value, group.count) for group in found.groups] == [("ann", 3)]
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        sql = connection.execute(
            "SELECT sql FROM sqlite_schema WHERE name = 'span_attributes'"
        ).fetchone()[0]
    assert "WITHOUT ROWID" not in sql


def test_retention_by_count_evicts_the_oldest_and_counts_them(tmp_path):
    store = Store(tmp_path, max_spans=100)
    for n in range(10):
        store.write(batch_from_request(many(50, first_trace=1 + n * 50)))
    store.close()
    with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
        kept, lowest = connection.execute("SELECT count(*), min(id) FROM spans").fetchone()
        evicted = connection.execute("SELECT value FROM meta WHERE key = 'evicted_spans'")
        orphans = connection.execute(
            "SELECT count(*) FROM span_attributes WHERE span_id NOT IN (SELECT id FROM spans)"
        )
        assert (evicted.fetchone()[0], orphans.fetchone()[0]) == (500 - kept, 0)
    assert 100 <= kept <= 105
    assert lowest == 500 - kept + 1


def test_retention_deletes_resources_no_span_refers_to(tmp_path, monkeypatch):
    """A sender whose resource changes with every request (a request id in it) must not grow
    the store past its retention."""
    monkeypatch.setattr(store_ingest, "_RESOURCE_SWEEP_SECONDS", 0.0)
    store = Store(tmp_path, max_spans=20)
    for n in range(60):
        store.write(batch_from_request(request([span(n + 1, 1)], "svc", run=f"run-{n}")))
    kept = {rid for (rid,) in store.connection.execute("SELECT DISTINCT resource_id FROM spans")}
    resources = {rid for (rid,) in store.connection.execute("SELECT id FROM resources")}
    described = store.connection.execute("SELECT DISTINCT resource_id FROM resource_attributes")
    assert resources == kept == {rid for (rid,) in described}
    assert len(kept) <= 21 and set(store._resource_ids.values()) <= kept
    # A resource deleted once is stored again when it comes back, and its spans find it.
    store.write(batch_from_request(request([span(999, 1)], "svc", run="run-0")))
    row = store.connection.execute(
        "SELECT r.attributes FROM spans s JOIN resources r ON r.id = s.resource_id"
        " WHERE s.trace_id = ?",
        (bytes.fromhex(f"{999:032x}"),),
    ).fetchone()
    assert json.loads(row[0])["run"] == "run-0"
    store.close()


def test_retention_by_age_evicts_spans_older_than_the_limit(tmp_path):
    store = Store(tmp_path, max_age_seconds=3600)
    now = time.time_ns()
    old = request([span(1, 1, start=now - 2 * 3600 * SECOND), span(2, 2, start=now - 10 * SECOND)])
    store.write(batch_from_request(old))
    assert store.span_count == 1
    store.close()
    assert counts(tmp_path)["spans"] == 1


def test_an_idle_store_still_evicts_spans_past_the_maximum_age(tmp_path, monkeypatch):
    monkeypatch.setattr(store_ingest, "_AGE_CHECK_SECONDS", 0.05)
    monkeypatch.setattr(writer, "IDLE_EXPIRY_SECONDS", 0.05)
    store = Store(tmp_path, max_age_seconds=2)
    spans_writer = Writer(store)
    try:
        now = time.time_ns()
        # One span a second from going past the limit, one long inside it.
        spans = [span(1, 1, start=now - 1 * SECOND), span(2, 2, start=now + 3600 * SECOND)]
        body = request(spans)
        spans_writer.submit(batch_from_request(body), body.SerializeToString)
        assert spans_writer.wait_written(5.0)
        assert counts(tmp_path)["spans"] == 2
        deadline = time.monotonic() + 10
        while counts(tmp_path)["spans"] > 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # nothing more is sent: only the idle writer can evict it
        assert counts(tmp_path)["spans"] == 1
        with sqlite3.connect(tmp_path / DATABASE_NAME) as connection:
            evicted = connection.execute(
                "SELECT value FROM meta WHERE key = 'evicted_spans'"
            ).fetchone()[0]
        assert evicted == 1
    finally:
        spans_writer.stop()


@pytest.mark.parametrize(
    ("value", "text"),
    [("acme", "acme"), (True, "true"), (500, "500"), (1.5, "1.5"), (2.0, "2")],
)
def test_attribute_values_compare_as_text(value, text):
    assert value_text(kv("k", value).value) == text


def test_empty_and_unset_values_are_empty_text():
    assert value_text(kv("k", "").value) == ""
    assert value_text(AnyValue()) == ""
    assert value_text(kv("k", 0).value) == "0"
    assert value_text(kv("k", False).value) == "false"
