"""The store's receivers as exporters meet them: real processes on loopback, free ports."""

from __future__ import annotations

import base64
import contextlib
import errno
import gc
import gzip
import http.client
import ipaddress
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    InstrumentationScope,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from o11ykit.cli import main
from o11ykit.store import http_base, writer
from o11ykit.store import server as server_module
from o11ykit.store.decode import IngestError, decode_body
from o11ykit.store.dirlock import DirectoryInUse
from o11ykit.store.ingest import Store
from o11ykit.store.ingest_log import LOG_DIRECTORY
from o11ykit.store.process import StoreProcess, spawn_store
from o11ykit.store.queries import Queries
from o11ykit.store.receivers import Intake
from o11ykit.store.schema import DATABASE_NAME, SCHEMA_VERSION
from o11ykit.store.server import StoreServer
from o11ykit.timeformats import format_time, parse_time
from tests.conftest import REPO, free_port
from tests.support.store_data import counts, many, request, span
from tests.support.store_openapi import validate_traces

pytestmark = pytest.mark.integration

PROTOBUF = {"Content-Type": "application/x-protobuf"}
JSON = {"Content-Type": "application/json"}


def post(port: int, body: bytes, headers: dict[str, str], path: str = "/v1/traces"):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body, headers)
        response = connection.getresponse()
        return response.status, response.read(), dict(response.getheaders())
    finally:
        connection.close()


def error_status(body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    """(code, message) of a google.rpc.Status error body, read in the encoding it came in."""
    if headers["Content-Type"] == "application/x-protobuf":
        status = status_pb2.Status.FromString(body)
        return status.code, status.message
    document = json.loads(body)
    return document["code"], document["message"]


def trace_body(store: StoreProcess, trace_id: str) -> str | None:
    try:
        with urllib.request.urlopen(f"{store.query_url}/api/v3/traces/{trace_id}", timeout=5) as r:
            return r.read().decode()
    except urllib.error.HTTPError:
        return None


def written(store: StoreProcess) -> Path:
    """The store's directory, once it holds every batch acknowledged so far.

    A 200 means a batch is in the ingest log; any query waits for the writer to store what
    was acknowledged before it, so one query makes the database safe to read directly.
    """
    with urllib.request.urlopen(f"{store.query_url}/api/v3/services", timeout=10) as answer:
        answer.read()
    return store.directory


def stored_spans(directory: Path) -> dict[str, int]:
    with sqlite3.connect(directory / DATABASE_NAME) as connection:
        return dict(connection.execute("SELECT service, count(*) FROM spans GROUP BY service"))


@pytest.fixture
def store(tmp_path):
    with spawn_store(tmp_path / "data", max_body_bytes=1024 * 1024) as store:
        yield store


# -- starting and stopping ---------------------------------------------------------------------


def test_a_spawned_store_says_where_it_listens_and_stops_clean(tmp_path):
    # How long it takes to be ready is the benchmark's to measure (benchmarks/store).
    store = spawn_store(tmp_path / "data")
    try:
        assert store.http_port and store.grpc_port and store.query_port
        log = store.stderr()
        assert f"http://127.0.0.1:{store.http_port}/v1/traces" in log
        assert f"127.0.0.1:{store.grpc_port}" in log and str(store.query_port) in log
    finally:
        assert store.stop() == 0
    assert not store.log_path.exists()  # its temporary directory, log and all, is gone


def test_a_store_with_a_log_path_logs_there_and_leaves_no_temporary_directory(
    tmp_path, monkeypatch
):
    # A temporary directory of its own: the other test worker's stores come and go in the
    # shared one.
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    log_path = tmp_path / "logs" / "store.log"
    # Detached, as `o11ykit app up` starts it: stopped by pid, nobody cleans up after it.
    store = spawn_store(tmp_path / "data", grpc_port=None, detach=True, log_path=log_path)
    try:
        assert list(temporary.iterdir()) == []  # the ready file's directory went with it
        assert f"http://127.0.0.1:{store.http_port}/v1/traces" in log_path.read_text()
    finally:
        os.kill(store.pid, signal.SIGTERM)
        assert store.process.wait(10) == 0
    assert "o11ykit store: stopped" in log_path.read_text()
    # A second start appends: the first run's lines stay.
    with spawn_store(tmp_path / "data", grpc_port=None, log_path=log_path):
        pass
    assert log_path.read_text().count("o11ykit store: stopped") == 2


def test_a_detached_store_needs_a_log_path(tmp_path):
    with (
        mock.patch.object(subprocess, "Popen") as popen,
        pytest.raises(ValueError, match="log_path: a detached store needs a log file"),
    ):
        spawn_store(tmp_path / "data", detach=True)
    popen.assert_not_called()


def listening_addresses(pid: int) -> dict[int, str]:
    """Port -> address of each TCP socket the process listens on, as the kernel has them."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):  # an fd closed while we looked
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target.removeprefix("socket:[").removesuffix("]"))
    listening = {}
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                address, port = local.split(":")
                listening[int(port, 16)] = _proc_address(address)
    return listening


def _proc_address(text: str) -> str:
    raw = bytes.fromhex(text)
    if sys.byteorder == "little":  # /proc writes each 32-bit word in host order
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    # gRPC listens on IPv6 sockets: 127.0.0.1 as ::ffff:127.0.0.1.
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address)


def non_loopback_address() -> str | None:
    """An address of this machine other networks reach it by, if it has one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # a UDP connect sends nothing: it picks a route
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def reachable(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=2):
            return True
    except OSError:
        return False


needs_proc = pytest.mark.skipif(
    not Path("/proc/self/net/tcp").exists(), reason="reads listening sockets from Linux /proc"
)


@needs_proc
def test_by_default_every_port_listens_on_loopback_only(tmp_path):
    with spawn_store(tmp_path / "data") as store:
        ports = {store.http_port, store.grpc_port, store.query_port}
        assert listening_addresses(store.pid) == dict.fromkeys(ports, "127.0.0.1")
        assert "WARNING" not in store.stderr()
        outside = non_loopback_address()
        if outside is not None:
            assert not reachable(outside, store.http_port)
            assert not reachable(outside, store.query_port)


@needs_proc
def test_listen_all_listens_on_every_interface_and_warns(tmp_path):
    with spawn_store(tmp_path / "data", listen_all=True) as store:
        listening = listening_addresses(store.pid)
        assert set(listening) == {store.http_port, store.grpc_port, store.query_port}
        assert listening[store.http_port] == listening[store.query_port] == "0.0.0.0"
        # gRPC asked for 0.0.0.0 listens on IPv6's any address, IPv4 included.
        assert listening[store.grpc_port] in ("0.0.0.0", "::")
        assert "WARNING listening on 0.0.0.0" in store.stderr()
        assert post(store.http_port, many(1).SerializeToString(), PROTOBUF)[0] == 200
        outside = non_loopback_address()
        if outside is not None:
            assert reachable(outside, store.http_port)
            assert reachable(outside, store.query_port)


@needs_proc
def test_host_overrides_listen_all(tmp_path):
    with spawn_store(tmp_path / "data", host="127.0.0.1", listen_all=True, grpc_port=None) as s:
        assert set(listening_addresses(s.pid).values()) == {"127.0.0.1"}
        assert "WARNING" not in s.stderr()


def test_serve_help_says_what_it_starts_where_data_goes_and_what_is_kept(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["store", "serve", "--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "OTLP receivers (HTTP and gRPC) and a Jaeger API v3 query server" in text
    assert "one SQLite database in WAL mode in --dir" in text
    assert "Retention is unlimited unless --max-spans or --max-age is given" in text
    assert "overrides --listen-all" in text


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--otlp-http-port", "99999"], "argument --otlp-http-port: '99999' is not a port"),
        (["--otlp-grpc-port", "-1"], "argument --otlp-grpc-port: '-1' is not a port"),
        (["--query-port", "x"], "argument --query-port: 'x' is not a port: 0 to 65535"),
        (["--max-spans", "0"], "argument --max-spans: '0' is not a whole number of at least 1"),
        (["--max-body-bytes", "-5"], "argument --max-body-bytes: '-5' is not a whole number"),
    ],
)
def test_a_malformed_setting_is_refused_naming_it(tmp_path, capsys, arguments, says):
    with pytest.raises(SystemExit) as exited:
        main(["store", "serve", "--dir", str(tmp_path / "data"), *arguments])
    assert exited.value.code == 2
    assert says in capsys.readouterr().err
    assert not (tmp_path / "data").exists()  # nothing was started or created


# inf, 1e30: once accepted, every write failed on an eviction cutoff SQLite cannot bind.
@pytest.mark.parametrize("age", ["-1", "0", "0s", "soon", "nan", "inf", "1e30", "9999999999h"])
def test_a_max_age_that_is_not_a_positive_duration_is_refused(tmp_path, capsys, age):
    with pytest.raises(SystemExit) as exited:
        main(["store", "serve", "--dir", str(tmp_path / "data"), "--max-age", age])
    assert exited.value.code == 2
    says = f"argument --max-age: {age!r} is not seconds, or a duration like 24h, more than 0"
    assert says in capsys.readouterr().err
    assert not (tmp_path / "data").exists()


def test_the_importable_api_refuses_bad_settings_naming_them(tmp_path):
    with pytest.raises(ValueError, match="http_port: '70000' is not a port"):
        StoreServer(tmp_path, http_port=70000)
    with pytest.raises(ValueError, match="max_body_bytes: '0' is not a whole number of at least 1"):
        StoreServer(tmp_path, max_body_bytes=0)
    with pytest.raises(ValueError, match=r"max_body_bytes: '1\.5' is not a whole number"):
        StoreServer(tmp_path, max_body_bytes=1.5)
    with pytest.raises(ValueError, match="query_port: 'None' is not a port"):
        StoreServer(tmp_path, query_port=None)  # only the gRPC port can be left out
    with pytest.raises(ValueError, match="max_spans: 0 is not a whole number of at least 1"):
        Store(tmp_path / "a", max_spans=0)
    with pytest.raises(ValueError, match="max_age_seconds: -1 is not a number of seconds"):
        Store(tmp_path / "b", max_age_seconds=-1)
    with pytest.raises(ValueError, match="max_age_seconds: inf is not a number of seconds"):
        Store(tmp_path / "c", max_age_seconds=float("inf"))
    # StoreServer under its own names; its age is seconds, a duration's text is spawn_store's.
    with pytest.raises(ValueError, match="max_age: '24h' is not a number of seconds more than 0"):
        StoreServer(tmp_path / "d", max_age="24h")
    with pytest.raises(ValueError, match=r"max_spans: '1\.5' is not a whole number"):
        StoreServer(tmp_path / "d", max_spans=1.5)
    assert not any(tmp_path.iterdir())  # refused before anything was created


@pytest.mark.parametrize("max_spans", [0, -5, 1.5, True])
def test_store_server_and_spawn_store_refuse_max_spans_in_the_same_words(tmp_path, max_spans):
    # docs/store.md promises it: both check it with `--max-spans`' own parser.
    said = []
    with mock.patch.object(subprocess, "Popen") as popen:
        for start in (StoreServer, spawn_store):
            with pytest.raises(ValueError) as refused:
                start(tmp_path / "data", max_spans=max_spans)
            said.append(str(refused.value))
    popen.assert_not_called()
    expected = f"max_spans: {str(max_spans)!r} is not a whole number of at least 1"
    assert said == [expected, expected]


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"max_spans": 0}, "max_spans: '0' is not a whole number of at least 1"),
        ({"max_age": "soon"}, "max_age: 'soon' is not seconds, or a duration like 24h"),
        ({"query_port": 70000}, "query_port: '70000' is not a port"),
        ({"max_body_bytes": -5}, "max_body_bytes: '-5' is not a whole number of at least 1"),
    ],
)
def test_spawn_store_refuses_a_bad_setting_before_it_starts_a_process(tmp_path, setting, says):
    with mock.patch.object(subprocess, "Popen") as popen, pytest.raises(ValueError, match=says):
        spawn_store(tmp_path / "data", **setting)
    popen.assert_not_called()


# Free ports unless a test names its own, so only what the test puts in the way can stop it.
FREE_PORTS = ("--otlp-http-port", "0", "--otlp-grpc-port", "0", "--query-port", "0")


def serve_once(
    directory: Path, *ports: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`o11ykit store serve` in a child process that is expected to refuse to start: were it
    to start, it would serve until the timeout rather than hang the run."""
    command = [sys.executable, "-m", "o11ykit.store", "serve", "--dir", str(directory)]
    return subprocess.run(
        [*command, *(ports or FREE_PORTS)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=REPO,
        env=env,
    )


@pytest.mark.parametrize("under", ["", "sub"])
def test_a_dir_that_is_a_file_is_refused_saying_so(tmp_path, under):
    (tmp_path / "notes").write_text("not a store")
    result = serve_once(tmp_path / "notes" / under if under else tmp_path / "notes")
    assert result.returncode == 1
    assert "--dir must name a directory (it is created if missing), not a file" in result.stderr
    assert (tmp_path / "notes").read_text() == "not a store"


def test_a_database_file_that_is_not_one_is_named_with_what_to_do(tmp_path, capsys):
    from o11ykit.cli import build_parser

    (tmp_path / DATABASE_NAME).write_text("notes, not a store")
    args = build_parser().parse_args(["store", "serve", "--dir", str(tmp_path), *FREE_PORTS])
    assert server_module.serve(args) == 1
    said = capsys.readouterr().err
    assert said == (
        f"o11ykit store: cannot start: file is not a database: {tmp_path / DATABASE_NAME}"
        " holds something else; move it elsewhere, or give the store another directory"
        " with --dir\n"
    )
    assert (tmp_path / DATABASE_NAME).read_text() == "notes, not a store"


@pytest.mark.parametrize(
    "refusal",
    [
        PermissionError(errno.EACCES, "Permission denied", "/data/store"),
        OSError(errno.EROFS, "Read-only file system", "/data/store/traces.db"),
        sqlite3.OperationalError("attempt to write a readonly database"),
    ],
)
def test_a_data_directory_that_is_not_writable_says_so_and_names_dir(
    tmp_path, monkeypatch, capsys, refusal
):
    # In-process: tests may run as root, whom file modes do not stop.
    from o11ykit.store import server as store_server

    def refuse(self):
        raise refusal

    monkeypatch.setattr(store_server.StoreServer, "start", refuse)
    from o11ykit.cli import build_parser

    args = build_parser().parse_args(["store", "serve", "--dir", str(tmp_path), *FREE_PORTS])
    assert store_server.serve(args) == 1
    said = capsys.readouterr().err
    assert said.startswith("o11ykit store: cannot start: ")
    assert said.rstrip().endswith(
        f"the data directory {tmp_path} is not writable: choose another with --dir"
    )
    assert said.count("\n") == 1


def test_a_port_refused_for_permission_is_not_blamed_on_the_data_directory(
    tmp_path, monkeypatch, capsys
):
    # A privileged port bound by a user: EACCES as for a directory, but with no file name.
    from o11ykit.cli import build_parser
    from o11ykit.store import server as store_server

    def refuse(self):
        raise OSError(errno.EACCES, "cannot listen on 127.0.0.1:80 (query): Permission denied")

    monkeypatch.setattr(store_server.StoreServer, "start", refuse)
    args = build_parser().parse_args(["store", "serve", "--dir", str(tmp_path), *FREE_PORTS])
    assert store_server.serve(args) == 1
    said = capsys.readouterr().err
    assert "cannot listen on 127.0.0.1:80 (query)" in said and "--dir" not in said


def test_a_file_inside_the_store_is_not_blamed_on_dir(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / LOG_DIRECTORY).write_text("in the way")
    result = serve_once(tmp_path / "data")
    assert result.returncode == 1
    assert LOG_DIRECTORY in result.stderr and "--dir must name" not in result.stderr


def test_a_second_store_on_the_same_directory_is_refused_and_takes_nothing(store):
    assert post(store.http_port, many(3).SerializeToString(), PROTOBUF)[0] == 200
    log = store.directory / LOG_DIRECTORY
    segments = sorted(path.name for path in log.iterdir())
    second = serve_once(store.directory)
    assert second.returncode == 1
    error = second.stderr
    assert f"is in use by another o11ykit store (process {store.pid})" in error
    assert "another directory with --dir" in error
    # It neither replayed nor deleted the running store's log, and that store goes on.
    assert sorted(path.name for path in log.iterdir()) == segments
    assert post(store.http_port, many(2, first_trace=50).SerializeToString(), PROTOBUF)[0] == 200
    assert sum(stored_spans(written(store)).values()) == 5


def test_one_writer_a_directory_in_process_too(tmp_path):
    first = Store(tmp_path)
    with pytest.raises(DirectoryInUse, match=f"{tmp_path} is in use by another o11ykit store"):
        Store(tmp_path)
    first.close()
    Store(tmp_path).close()  # closing released it


@pytest.mark.parametrize("option", ["--otlp-http-port", "--otlp-grpc-port", "--query-port"])
def test_a_port_in_use_is_a_clear_refusal_not_a_traceback(tmp_path, capsys, option):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = {"--otlp-http-port": "0", "--otlp-grpc-port": "0", "--query-port": "0"}
        ports[option] = str(port)
        arguments = [part for pair in ports.items() for part in pair]
        assert main(["store", "serve", "--dir", str(tmp_path / "data"), *arguments]) == 1
    err = capsys.readouterr().err
    role = {
        "--otlp-http-port": "OTLP/HTTP",
        "--otlp-grpc-port": "OTLP/gRPC",
        "--query-port": "query",
    }
    # Which port, and what for, whatever the errno.
    assert f"cannot listen on 127.0.0.1:{port} ({role[option]})" in err
    assert "is another store or collector running?" in err
    # It listens before it opens the store: nothing was created, locked or replayed.
    assert not (tmp_path / "data").exists()


def test_a_host_that_does_not_resolve_is_refused_before_anything_is_created(tmp_path, capsys):
    directory = tmp_path / "data"
    assert main(["store", "serve", "--dir", str(directory), "--host", "nosuch.invalid"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("o11ykit store: cannot start:") and "nosuch.invalid:4318" in err
    # Neither the non-loopback warning (it never listened) nor a data directory.
    assert "WARNING" not in err and err.count("\n") == 1, err
    assert not directory.exists()


def test_a_start_refused_after_listening_lets_go_of_every_port(tmp_path):
    ports = {"http_port": free_port(), "grpc_port": free_port(), "query_port": free_port()}
    holder = Store(tmp_path)  # the directory is taken once the ports are bound
    try:
        with pytest.raises(DirectoryInUse):
            StoreServer(tmp_path, **ports).start()
    finally:
        holder.close()
    # gRPC keeps a port it bound until its server has started and stopped; a request in that
    # instant finds no writer and is told to come back (503 / UNAVAILABLE), not a crash.
    with pytest.raises(writer.StoreBusy, match="not running"):
        Intake().submit(many(1), many(1).SerializeToString)
    with StoreServer(tmp_path, **ports) as store:
        assert (store.http_port, store.grpc_port, store.query_port) == tuple(ports.values())


def test_a_grpc_port_in_use_is_one_line_from_the_store_not_grpcs_own_log_too(tmp_path):
    environment = {k: v for k, v in os.environ.items() if k != "GRPC_VERBOSITY"}
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = ["--otlp-http-port", "0", "--query-port", "0", "--otlp-grpc-port", str(port)]
        result = serve_once(tmp_path, *ports, env=environment)
    assert result.returncode == 1
    assert result.stderr.startswith(f"o11ykit store: cannot start: [Errno {errno.EADDRINUSE}]")
    assert result.stderr.count("\n") == 1, result.stderr


def test_max_spans_and_max_age_on_the_command_line_bound_the_store(tmp_path):
    hour, now = 3600 * 10**9, time.time_ns()

    def recent(first: int, count: int) -> bytes:
        spans = [span(first + n, n + 1, start=now - n * 1000) for n in range(count)]
        return request(spans).SerializeToString()

    def spans_and_evicted() -> tuple[int, int]:
        with sqlite3.connect(written(store) / DATABASE_NAME) as connection:
            (count,) = connection.execute("SELECT count(*) FROM spans").fetchone()
            (evicted,) = connection.execute(
                "SELECT value FROM meta WHERE key = 'evicted_spans'"
            ).fetchone()
        return count, evicted

    with spawn_store(tmp_path / "data", grpc_port=None, max_spans=100, max_age="24h") as store:
        # 24h is hours, not seconds: the span 23 hours old stays, the one 25 hours old goes.
        aged = request(
            [span(1, 1, "25h", start=now - 25 * hour), span(2, 2, "23h", start=now - 23 * hour)]
        )
        assert post(store.http_port, aged.SerializeToString(), PROTOBUF)[0] == 200
        # Evicted as it is written, or by the writer's idle check (every 5 s) at the latest.
        deadline = time.monotonic() + 15
        while spans_and_evicted() != (1, 1):
            assert time.monotonic() < deadline, spans_and_evicted()
            time.sleep(0.1)
        for batch in range(3):
            assert post(store.http_port, recent(10 + 100 * batch, 100), PROTOBUF)[0] == 200
        count, evicted = spans_and_evicted()
    # The count is trimmed back to the limit once it is 5% over it.
    assert 100 <= count <= 105 and count + evicted == 302


def _status(store: StoreProcess) -> dict:
    with urllib.request.urlopen(f"{store.query_url}/api/o11ykit/status", timeout=10) as answer:
        return json.loads(answer.read())


def test_status_says_what_the_store_holds_and_what_retention_evicted(tmp_path):
    now = time.time_ns()
    with spawn_store(tmp_path / "data", grpc_port=None, max_spans=100) as store:
        empty = _status(store)
        assert (empty["spans"], empty["services"], empty["evictedSpans"]) == (0, 0, 0)
        assert empty["oldestSpanStart"] is None and empty["newestSpanStart"] is None
        for batch in range(3):
            spans = [span(10 + 100 * batch + n, n + 1, start=now - n * 1000) for n in range(100)]
            assert post(store.http_port, request(spans).SerializeToString(), PROTOBUF)[0] == 200
        answer = _status(store)  # the query server answers once what was accepted is written
        with sqlite3.connect(written(store) / DATABASE_NAME) as connection:
            (count,) = connection.execute("SELECT count(*) FROM spans").fetchone()
        cli = subprocess.run(
            [sys.executable, "-m", "o11ykit.cli", "traces", "status", "--url", store.query_url],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "COLUMNS": "100"},
        )
    assert (answer["spans"], answer["evictedSpans"]) == (count, 300 - count)
    assert 100 <= count <= 105  # trimmed back to the limit once 5% over it
    assert (answer["services"], answer["droppedSpans"]) == (1, 0)
    assert answer["schemaVersion"] == SCHEMA_VERSION
    # Every batch starts its spans at the same instants, so whichever stayed cover them all.
    assert parse_time(answer["newestSpanStart"]) == now
    assert parse_time(answer["oldestSpanStart"]) == now - 99_000
    assert answer["databaseBytes"] > 0 and answer["walBytes"] >= 0
    assert cli.returncode == 0, cli.stderr
    assert re.search(rf"evicted by retention\s+│ {300 - count}\s", cli.stdout), cli.stdout
    assert re.search(rf"spans\s+│ {count}\s", cli.stdout), cli.stdout


def test_status_takes_no_parameters(tmp_path):
    with spawn_store(tmp_path / "data", grpc_port=None) as store:
        url = f"{store.query_url}/api/o11ykit/status?since=1h"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url, timeout=10)
        body = json.loads(refused.value.read())
    assert refused.value.code == 400
    assert body["message"] == "unknown parameter since; /api/o11ykit/status takes no parameters"


def test_in_process_server_picks_free_ports_and_drains_on_stop(tmp_path):
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as server:
        assert post(server.http_port, many(3).SerializeToString(), PROTOBUF)[0] == 200
        with urllib.request.urlopen(f"{server.query_url}/api/v3/services", timeout=5) as r:
            assert json.loads(r.read()) == {"services": ["svc"]}
        # What `store serve` prints: every address it listens on, each one that answers.
        described = server.describe()
        assert f"{server.otlp_http_endpoint}/v1/traces" in described
        assert "OTLP/gRPC" not in described  # grpc_port=None: no gRPC receiver
        assert f"{server.query_url}/api/v3/services" in described
        page = f"{server.query_url}/"
        assert f"in a browser {page} " in described
        with urllib.request.urlopen(page, timeout=5) as r:
            assert r.status == 200 and b"svc" in r.read()
    assert counts(tmp_path)["spans"] == 3


def test_a_query_on_a_kept_alive_connection_after_stop_is_a_503(tmp_path):
    server = StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0).start()
    connection = http.client.HTTPConnection("127.0.0.1", server.query_port, timeout=10)
    try:
        connection.request("GET", "/api/v3/services")
        assert connection.getresponse().read() == b'{"services":[]}'
        server.stop()  # the connection's thread outlives the listening socket
        connection.request("GET", "/api/v3/services")
        answer = connection.getresponse()
        assert answer.status == 503
        assert json.loads(answer.read())["message"] == "the store is stopping"
    finally:
        connection.close()
        server.stop()


def test_connections_past_the_cap_are_answered_503_not_given_a_thread(tmp_path, monkeypatch):
    monkeypatch.setattr(http_base.Server, "max_connections", 3)
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as server:
        address = ("127.0.0.1", server.query_port)
        idle = [socket.create_connection(address, timeout=10) for _ in range(3)]
        try:
            with socket.create_connection(address, timeout=10) as extra:
                assert extra.recv(4096).startswith(b"HTTP/1.1 503 Service Unavailable")
            idle.pop().close()  # its thread ends and gives its place back
            deadline = time.monotonic() + 10
            while True:
                with socket.create_connection(address, timeout=10) as again:
                    again.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                    if again.recv(4096).startswith(b"HTTP/1.1 200"):
                        break
                assert time.monotonic() < deadline
                time.sleep(0.05)
        finally:
            for sock in idle:
                sock.close()


def test_a_body_sent_with_a_get_is_read_not_taken_for_the_next_request(store):
    smuggled = b"GET /api/v3/services HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", store.query_port), timeout=10) as sock:
        sock.sendall(
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
            + f"Content-Length: {len(smuggled)}\r\n\r\n".encode()
            + smuggled
        )
        answers = b""
        sock.settimeout(1.0)
        with contextlib.suppress(TimeoutError):
            while chunk := sock.recv(4096):
                answers += chunk
    assert answers.count(b"HTTP/1.1 ") == 1, answers
    assert answers.endswith(b'{"status":"ok"}')


def test_a_fault_in_a_query_is_a_500_with_a_message_and_the_server_goes_on(
    tmp_path, monkeypatch, caplog
):
    def broken(self):
        raise RuntimeError("a bug")

    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as server:
        monkeypatch.setattr(Queries, "services", broken)
        with pytest.raises(urllib.error.HTTPError) as answer:
            urllib.request.urlopen(f"{server.query_url}/api/v3/services", timeout=5)
        assert answer.value.code == 500
        body = json.loads(answer.value.read())
        assert body["code"] == 13 and "RuntimeError: a bug" in body["message"], body
        assert "could not answer /api/v3/services" in caplog.text
        monkeypatch.undo()
        with urllib.request.urlopen(f"{server.query_url}/api/v3/services", timeout=5) as r:
            assert r.status == 200


def test_only_the_serving_process_tunes_the_garbage_collector(tmp_path):
    before = gc.get_threshold()
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as server:
        assert post(server.http_port, many(3).SerializeToString(), PROTOBUF)[0] == 200
    assert gc.get_threshold() == before  # a host application's collector is its own
    # `o11ykit store serve`, in a process of its own, reports its collector once ready.
    ready = tmp_path / "ready.json"
    script = f"""
import gc, os, signal, sys, threading, time
from pathlib import Path
from unittest import mock
from o11ykit.cli import main
def report():
    while not Path({str(ready)!r}).exists():
        time.sleep(0.01)
    print("collector", gc.get_threshold(), gc.get_freeze_count() > 0, flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=report, daemon=True).start()
sys.exit(main(["store", "serve", "--dir", {str(tmp_path / "served")!r}, "--no-grpc",
               "--otlp-http-port", "0", "--query-port", "0", "--ready-file", {str(ready)!r}]))
"""
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "collector (20000, 20, 100) True" in out.stdout


# -- OTLP/HTTP -----------------------------------------------------------------------------------


def test_protobuf_json_and_gzip_requests(store):
    status, body, headers = post(store.http_port, many(2).SerializeToString(), PROTOBUF)
    assert (status, body, headers["Content-Type"]) == (200, b"", "application/x-protobuf")
    gzipped = gzip.compress(many(2, first_trace=10).SerializeToString())
    assert post(store.http_port, gzipped, {**PROTOBUF, "Content-Encoding": "gzip"})[0] == 200
    document = {
        "resourceSpans": [
            {
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "5b8efff798038103d269b633813fc60c",
                                "spanId": "eee19b7ec3c1b174",
                                "name": "json",
                                "kind": 2,
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                            }
                        ]
                    }
                ]
            }
        ]
    }
    status, body, headers = post(store.http_port, json.dumps(document).encode(), JSON)
    assert (status, body, headers["Content-Type"]) == (200, b"{}", "application/json")
    assert "5b8efff798038103d269b633813fc60c" in trace_body(
        store, "5b8efff798038103d269b633813fc60c"
    )
    assert counts(written(store))["spans"] == 5


def test_bad_requests_get_4xx_with_a_message_and_change_nothing(store):
    post(store.http_port, many(3).SerializeToString(), PROTOBUF)
    before = counts(written(store))
    bad_id = many(2)
    bad_id.resource_spans[0].scope_spans[0].spans[1].trace_id = bytes(16)
    cases = [
        (b"\x0a\xff\xff", PROTOBUF, 400, "malformed protobuf"),
        (b"{", JSON, 400, "malformed JSON"),
        (b'{"resourceSpans": [], "extra": 1}', JSON, 400, "extra"),
        (bad_id.SerializeToString(), PROTOBUF, 400, "invalid trace id"),
        (b"x", {"Content-Type": "text/plain"}, 415, "Content-Type"),
    ]
    for body, headers, status, fragment in cases:
        answer, text, answer_headers = post(store.http_port, body, headers)
        assert answer == status, text
        # As OTLP/HTTP asks: protobuf for a protobuf request, JSON otherwise.
        wanted = "application/x-protobuf" if headers is PROTOBUF else "application/json"
        assert answer_headers["Content-Type"] == wanted
        code, message = error_status(text, answer_headers)
        assert code == 3 and fragment in message
    assert counts(written(store)) == before


def test_bad_grpc_requests_are_invalid_argument_with_a_message_and_change_nothing(store):
    import grpc

    post(store.http_port, many(3).SerializeToString(), PROTOBUF)
    before = counts(written(store))
    bad_id = many(2)
    bad_id.resource_spans[0].scope_spans[0].spans[1].span_id = bytes(8)
    with grpc.insecure_channel(store.grpc_target) as channel:
        # Raw bytes in and out, so a body that is not protobuf reaches the store as sent.
        export = channel.unary_unary(
            "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
            request_serializer=None,
            response_deserializer=None,
        )
        for body, fragment in [
            (b"\x0a\xff\xff", "malformed protobuf ExportTraceServiceRequest"),
            (bad_id.SerializeToString(), "invalid span id"),
        ]:
            with pytest.raises(grpc.RpcError) as refused:
                export(body, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert fragment in refused.value.details()
        assert counts(written(store)) == before
        # The bytes as sent are what the store logs and stores.
        assert export(many(2, first_trace=70).SerializeToString(), timeout=10) == b""
    assert counts(written(store))["spans"] == before["spans"] + 2


def test_other_paths_are_404_and_other_methods_405(store):
    assert post(store.http_port, b"", PROTOBUF, path="/v1/metrics")[0] == 404
    connection = http.client.HTTPConnection("127.0.0.1", store.http_port, timeout=5)
    connection.request("GET", "/v1/traces")
    response = connection.getresponse()
    assert (response.status, response.getheader("Allow")) == (405, "POST")
    connection.close()


def test_a_body_over_the_limit_is_refused_before_it_is_read(store):
    with socket.create_connection(("127.0.0.1", store.http_port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 2000000000\r\n\r\nonly a few bytes"
        )
        answer = sock.recv(4096).decode()
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "Connection: close" in answer


def test_conflicting_content_lengths_are_refused_and_nothing_is_stored(store):
    before = counts(written(store))
    body = many(3).SerializeToString()
    with socket.create_connection(("127.0.0.1", store.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(body)}\r\nContent-Length: 5\r\n\r\n".encode()
            + body
        )
        answer = b"".join(iter(lambda: sock.recv(4096), b"")).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400"), answer
    assert "conflicting Content-Length headers" in answer
    assert counts(written(store)) == before


def test_a_body_cut_short_is_refused_and_nothing_of_it_is_stored(store):
    before = counts(written(store))
    # Two messages one after another are one message, so the first alone parses.
    first = many(3).SerializeToString()
    body = first + many(3, first_trace=50).SerializeToString()
    with socket.create_connection(("127.0.0.1", store.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + first
        )
        sock.shutdown(socket.SHUT_WR)  # the client stops sending
        # Headers and body may come in two reads: read until the store closes.
        answer = b"".join(iter(lambda: sock.recv(4096), b"")).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 400"), answer
    assert f"body cut short: {len(first)} of {len(body)} bytes" in answer
    assert counts(written(store)) == before


def _exchange(port: int, raw: bytes, *, shut: bool = False) -> str:
    """Send raw bytes, then read every answer until the store closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        return b"".join(iter(lambda: sock.recv(65536), b"")).decode(errors="replace")


def _chunked(*chunks: bytes, extension: bytes = b"") -> bytes:
    return b"".join(b"%x%s\r\n%s\r\n" % (len(c), extension, c) for c in chunks) + b"0\r\n"


def test_a_chunked_body_is_read_as_exporters_that_stream_it_send_it(store):
    # OpenTelemetry JS streams its (gzip) body, and Java's exporter with compression does:
    # neither knows the length beforehand, so HTTP/1.1 sends it in chunks.
    body = gzip.compress(many(3, first_trace=90).SerializeToString())
    connection = http.client.HTTPConnection("127.0.0.1", store.http_port, timeout=10)
    try:
        pieces = iter([body[:10], body[10:200], body[200:]])
        connection.request(
            "POST",
            "/v1/traces",
            pieces,
            {**PROTOBUF, "Content-Encoding": "gzip", "Transfer-Encoding": "chunked"},
            encode_chunked=True,
        )
        response = connection.getresponse()
        assert (response.status, response.read()) == (200, b"")
        # The connection stays usable after a chunked request.
        connection.request(
            "POST", "/v1/traces", many(1, first_trace=95).SerializeToString(), PROTOBUF
        )
        assert connection.getresponse().status == 200
    finally:
        connection.close()
    for trace in (90, 91, 92, 95):
        assert trace_body(store, f"{trace:032x}") is not None
    # Chunk extensions and trailer fields are read past.
    plain = many(1, first_trace=97).SerializeToString()
    answer = _exchange(
        store.http_port,
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        + _chunked(plain[:5], plain[5:], extension=b";name=value")
        + b"X-Trailer: 1\r\n\r\n",
    )
    assert answer.startswith("HTTP/1.1 200"), answer
    assert trace_body(store, f"{97:032x}") is not None


@pytest.mark.parametrize(
    ("framing", "status", "message"),
    [
        (b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400, "chunk size"),
        (b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcdef\r\n0\r\n\r\n", 400, "runs past"),
        (b"Transfer-Encoding: chunked\r\n\r\n10\r\nabc", 400, "body cut short"),
        (b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", 400, "did not end"),
        (b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, "only chunked"),
        (
            b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
            400,
            "both Content-Length and Transfer-Encoding",
        ),
        (b"\r\n", 411, "Content-Length or Transfer-Encoding: chunked is required"),
        (b"Content-Length: +3\r\n\r\nabc", 400, "invalid Content-Length '+3'"),
        # Over the limit (1 MiB here) in chunks: refused once the sizes add up past it.
        (
            b"Transfer-Encoding: chunked\r\n\r\n80000\r\n" + bytes(0x80000) + b"\r\n80001\r\n",
            413,
            "body of over 1048577 bytes is over the 1048576 limit",
        ),
    ],
)
def test_bad_framing_is_refused_with_the_reason_and_nothing_is_stored(
    store, framing, status, message
):
    before = counts(written(store))
    answer = _exchange(
        store.http_port,
        b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + framing,
        shut=True,
    )
    assert answer.startswith(f"HTTP/1.1 {status}"), answer
    assert message in answer
    assert "Connection: close" in answer
    assert counts(written(store)) == before


def test_a_body_over_the_limit_is_answered_413_not_reset(store):
    # Closing with a large body unread makes the kernel reset the connection, and the client
    # would see that (and retry) rather than the 413: a body up to DRAIN_BYTES is read first.
    big = bytes(8 * 1024 * 1024)
    status, body, headers = post(store.http_port, big, PROTOBUF)
    assert status == 413
    assert error_status(body, headers) == (8, f"body of {len(big)} bytes is over the 1048576 limit")
    # A client that asks first is told at once, and sends nothing.
    with socket.create_connection(("127.0.0.1", store.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Content-Length: 8388608\r\nExpect: 100-continue\r\n\r\n"
        )
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode(errors="replace")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert "100 Continue" not in answer


def test_the_answer_has_the_requests_protobuf_content_type(store):
    for content_type in ("application/x-protobuf", "application/protobuf"):
        body = many(1, first_trace=60).SerializeToString()
        status, _, headers = post(store.http_port, body, {"Content-Type": content_type})
        assert (status, headers["Content-Type"]) == (200, content_type)
        status, answer, headers = post(store.http_port, b"\xff", {"Content-Type": content_type})
        assert (status, headers["Content-Type"]) == (400, content_type)
        assert status_pb2.Status.FromString(answer).code == 3


def test_a_bug_in_ingest_is_a_500_logged_once_with_its_traceback(tmp_path, monkeypatch, caplog):
    from o11ykit.store import receivers

    def broken(request, **_):
        raise RuntimeError("secret detail of /srv/data")

    monkeypatch.setattr(receivers, "batch_from_request", broken)
    monkeypatch.setattr(receivers, "_REPORTED_ERRORS", set())
    body = many(1).SerializeToString()
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0) as srv:
        for _ in range(3):
            status, answer, headers = post(srv.http_port, body, PROTOBUF)
            assert status == 500
            code, message = error_status(answer, headers)
            assert code == 13 and "internal error" in message
            assert "secret" not in message  # the details are for the store's log alone
    logged = [r for r in caplog.records if "could not store a batch" in r.getMessage()]
    errors = [r for r in logged if r.levelname == "ERROR"]
    assert len(errors) == 1
    assert errors[0].exc_info and "secret detail" in str(errors[0].exc_info[1])


def test_a_full_write_queue_answers_503_with_retry_after(tmp_path, monkeypatch):
    release = threading.Event()
    original = Store.write_group

    def slow_write(self, batches, log_position=None):
        release.wait(10)
        return original(self, batches, log_position)

    monkeypatch.setattr(Store, "write_group", slow_write)
    monkeypatch.setattr(writer, "QUEUE_WAIT_SECONDS", 0.5)
    body = many(1).SerializeToString()
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0, queue_batches=1) as srv:
        # One batch held by the writer, one waiting in the queue of one: the third waits for
        # room, and is refused when none comes.
        results: list[int] = []
        senders = [
            threading.Thread(target=lambda: results.append(post(srv.http_port, body, PROTOBUF)[0]))
            for _ in range(2)
        ]
        for sender in senders:
            sender.start()
            time.sleep(0.3)
        status, text, headers = post(srv.http_port, body, PROTOBUF)
        release.set()
        for sender in senders:
            sender.join()
    assert (status, headers.get("Retry-After")) == (503, "1"), text
    assert error_status(text, headers)[0] == 14
    assert results == [200, 200]


# -- real exporters ------------------------------------------------------------------------------


def _exporter(
    protocol: str, endpoint: str, service: str, spans: int, *options: str
) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.store_exporter",
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--service",
            service,
            "--spans",
            str(spans),
            *options,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_several_sdk_exporters_at_once_lose_nothing(store):
    exporters = [_exporter("http", store.traces_url, f"http-{n}", 2000) for n in range(4)]
    exporters.append(_exporter("grpc", f"http://{store.grpc_target}", "grpc-0", 2000))
    for process in exporters:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, out + err
    assert stored_spans(written(store)) == {
        **{f"http-{n}": 2000 for n in range(4)},
        "grpc-0": 2000,
    }


def test_sdk_exporters_that_compress_are_stored(store):
    # What OTEL_EXPORTER_OTLP_COMPRESSION asks of OpenTelemetry Python's exporters: gzip over
    # HTTP (the OTLP name), deflate over HTTP (the zlib format), and gRPC's own message
    # compression, which gRPC reads for the store.
    grpc_endpoint = f"http://{store.grpc_target}"
    runs = [
        ("http", store.traces_url, "gzip"),
        ("http", store.traces_url, "deflate"),
        ("grpc", grpc_endpoint, "gzip"),
        ("grpc", grpc_endpoint, "deflate"),
    ]
    exporters = [
        _exporter(protocol, endpoint, f"{protocol}-{how}", 600, "--compression", how)
        for protocol, endpoint, how in runs
    ]
    for process in exporters:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, out + err
    assert stored_spans(written(store)) == {f"{protocol}-{how}": 600 for protocol, _, how in runs}


def test_compare_over_http_ranks_first_what_the_errors_share(store):
    exporter = _exporter("http", store.traces_url, "shop", 300, "--error-tenant", "t1")
    out, err = exporter.communicate(timeout=60)
    assert exporter.returncode == 0, out + err
    now = datetime.now(timezone.utc)
    params = {
        "selection": "errors",
        "start": format_time(now - timedelta(minutes=10)),
        "end": format_time(now + timedelta(minutes=1)),
    }
    url = f"{store.query_url}/api/o11ykit/compare?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        assert answer.status == 200
        compared = json.loads(answer.read())
    # Span n has tenant t{n % 3}; every span of t1, and no other, failed.
    assert (compared["selectionCount"], compared["baselineCount"]) == (100, 200)
    top, *rest = compared["pairs"]
    assert (top["key"], top["value"], top["selectionPct"], top["baselinePct"]) == (
        "tenant.id",
        "t1",
        100.0,
        0.0,
    )
    assert all(pair["differencePct"] < top["differencePct"] for pair in rest)


def test_kill_9_while_an_exporter_sends_loses_at_most_the_batch_in_flight(tmp_path):
    data, acked_file, batch_spans = tmp_path / "data", tmp_path / "acked.txt", 200
    store = spawn_store(data, grpc_port=None)
    sender = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.store_sender",
            "--url",
            store.traces_url,
            "--acked",
            str(acked_file),
            "--batch-spans",
            str(batch_spans),
        ],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while not acked_file.exists() or len(acked_file.read_text().split()) < 20:
            assert time.monotonic() < deadline and sender.poll() is None
            time.sleep(0.02)
        store.kill()
        sender.wait(timeout=20)
    finally:
        store.kill()
        if sender.poll() is None:
            sender.kill()
            sender.wait()
    acked = len(acked_file.read_text().split())
    with sqlite3.connect(data / DATABASE_NAME) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        committed = connection.execute("SELECT count(*) FROM spans").fetchone()[0]
    # The database may be behind what was acknowledged: the rest is in the ingest log.
    assert committed % batch_spans == 0 and committed <= (acked + 1) * batch_spans
    with spawn_store(data, grpc_port=None) as again:
        # Opening the store wrote what the log held past the last commit.
        with sqlite3.connect(data / DATABASE_NAME) as connection:
            stored = connection.execute("SELECT count(*) FROM spans").fetchone()[0]
            orphans = connection.execute(
                "SELECT count(*) FROM span_attributes WHERE span_id NOT IN (SELECT id FROM spans)"
            ).fetchone()[0]
        assert (
            post(again.http_port, many(5, first_trace=10**9).SerializeToString(), PROTOBUF)[0]
            == 200
        )
        # Only the segment being appended to is left: the replayed ones are gone.
        assert len(list((data / LOG_DIRECTORY).iterdir())) == 1
        assert counts(written(again))["spans"] == stored + 5
    # Every acknowledged batch is there, whole; at most one more was logged unacknowledged.
    assert acked * batch_spans <= stored <= (acked + 1) * batch_spans
    assert stored % batch_spans == 0 and orphans == 0
    assert counts(data)["spans"] == stored + 5


# -- the library and doctor against a running store ----------------------------------------------


def test_o11ykit_init_with_the_local_backend_exports_to_the_store(store, python_snippet):
    result = python_snippet(
        f"""
        import o11ykit
        from opentelemetry import trace
        endpoint = "{store.otlp_http_endpoint}"
        o11ykit.init(service_name="roundtrip", backend="local", endpoint=endpoint)
        with o11ykit.context(tenant_id="acme", user_id="u-1"):
            with trace.get_tracer("t").start_as_current_span("work") as span:
                print(format(span.get_span_context().trace_id, "032x"))
        o11ykit.shutdown(timeout=5.0)
        """
    )
    assert result.returncode == 0, result.stderr
    trace_id = result.stdout.strip()
    body = trace_body(store, trace_id)
    assert body is not None, store.stderr()
    document = json.loads(body)
    spans = document["result"]["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert spans[0]["name"] == "work" and spans[0]["traceId"] == trace_id
    assert {"key": "tenant.id", "value": {"stringValue": "acme"}} in spans[0]["attributes"]


def _doctor(
    store: StoreProcess,
    query_url: str,
    env: dict[str, str] | None = None,
    protocol: str = "http/protobuf",
    backend: str = "local",
    endpoint: str | None = None,
) -> subprocess.CompletedProcess[str]:
    endpoint = endpoint or store.otlp_http_endpoint
    if protocol == "grpc":
        endpoint = f"http://{store.grpc_target}"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "o11ykit.cli",
            "doctor",
            "--backend",
            backend,
            "--endpoint",
            endpoint,
            "--protocol",
            protocol,
            "--query-url",
            query_url,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "", **(env or {})},
    )


def test_doctor_with_the_local_backend_reads_its_span_back(store):
    result = _doctor(store, store.query_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"read back through the query API at {store.query_url}" in result.stdout
    # What the store holds: the test span, in a store that was empty.
    assert "the store holds spans: 1, services: 1, evicted by retention: 0" in result.stdout
    assert "doctor: all good" in result.stdout


def test_doctor_with_the_local_backend_over_grpc_reads_its_span_back(store):
    result = _doctor(store, store.query_url, protocol="grpc")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"read back through the query API at {store.query_url}" in result.stdout


@pytest.mark.parametrize("backend", ["local", "jaeger"])
def test_doctor_fails_in_one_line_when_the_query_url_is_not_a_query_api(store, backend):
    # The gRPC port answers in HTTP/2 frames, not HTTP/1.1; a closed port answers nothing;
    # the OTLP/HTTP port answers 404 in its own words, not the query API's "no traces found".
    # Each is a wrong query address: for Jaeger too, which a collector in between does not
    # explain (that is only for a query API that answers without the span).
    for query_url, said in (
        (f"http://{store.grpc_target}", "does not speak HTTP/1.1"),
        (f"http://127.0.0.1:{free_port()}", "cannot reach the query API"),
        (store.otlp_http_endpoint, f"is on the query port, {store.query_port}"),
    ):
        result = _doctor(store, query_url, backend=backend)
        assert result.returncode == 1, result.stdout + result.stderr
        assert "Traceback" not in result.stderr, result.stderr
        assert "FAIL  test span sent but not readable: " in result.stdout
        assert said in result.stdout
        assert "doctor: problems found" in result.stdout


def test_doctor_sending_to_the_query_port_says_which_port_takes_otlp(store):
    result = _doctor(store, store.query_url, endpoint=store.query_url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "answered HTTP 405" in result.stdout
    assert "is it a query port (16686)? OTLP/HTTP is sent to 4318" in result.stdout


def test_doctor_with_the_jaeger_backend_reads_back_through_the_stores_jaeger_api(store):
    result = _doctor(store, store.query_url, backend="jaeger")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"read back through the query API at {store.query_url}" in result.stdout


def test_doctor_does_not_print_a_password_or_key_given_in_the_endpoint(store):
    port = urllib.parse.urlsplit(store.otlp_http_endpoint).port
    endpoint = f"http://bob:s3cret@127.0.0.1:{port}/?api_key=k3y"
    result = _doctor(store, store.query_url, endpoint=endpoint)
    assert "s3cret" not in result.stdout + result.stderr
    assert "k3y" not in result.stdout + result.stderr
    assert f"http://***@127.0.0.1:{port}/?api_key=***" in result.stdout


def test_doctor_reads_back_from_a_loopback_store_past_the_machines_proxy(store):
    # A laptop behind a corporate proxy: a proxy nothing answers at must not be asked.
    dead_proxy = f"http://127.0.0.1:{free_port()}"
    result = _doctor(
        store, store.query_url, env={"http_proxy": dead_proxy, "HTTP_PROXY": dead_proxy}
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"read back through the query API at {store.query_url}" in result.stdout


def test_doctor_pointed_at_no_query_api_says_how_to_name_the_stores(store):
    nowhere = f"http://127.0.0.1:{free_port()}"
    result = _doctor(store, nowhere)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"test span sent but not readable: cannot reach the query API at {nowhere}" in (
        result.stdout
    )
    assert "--query-url (or O11YKIT_QUERY_URL) names its query port" in result.stdout


# -- fuzzing the receiver ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_store(tmp_path_factory):
    with spawn_store(
        tmp_path_factory.mktemp("fuzz"), grpc_port=None, max_body_bytes=256 * 1024
    ) as s:
        yield s


VALID_PROTOBUF = request([span(1, 1, attributes={"tenant.id": "a"}), span(1, 2, parent=1)])
VALID_JSON = json.dumps(
    {
        "resourceSpans": [
            {
                "resource": {
                    "attributes": [{"key": "service.name", "value": {"stringValue": "fuzz"}}]
                },
                "scopeSpans": [
                    {
                        "scope": {"name": "s"},
                        "spans": [
                            {
                                "traceId": "0af7651916cd43dd8448eb211c80319c",
                                "spanId": "b7ad6b7169203331",
                                "name": "x",
                                "kind": "SPAN_KIND_CLIENT",
                                "startTimeUnixNano": "5",
                                "endTimeUnixNano": "9",
                                "status": {"code": 1},
                                "attributes": [{"key": "n", "value": {"intValue": "3"}}],
                            }
                        ],
                    }
                ],
            }
        ]
    }
).encode()


@st.composite
def mutated(draw, valid: bytes) -> bytes:
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 6))):
        action = draw(st.sampled_from(["flip", "cut", "insert", "delete"]))
        position = draw(st.integers(0, max(0, len(data) - 1)))
        if action == "flip" and data:
            data[position] ^= draw(st.integers(1, 255))
        elif action == "cut":
            del data[position:]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[position]
    return bytes(data)


bodies = st.one_of(
    st.binary(max_size=2048),
    mutated(VALID_PROTOBUF.SerializeToString()),
    mutated(VALID_JSON),
    st.just(VALID_PROTOBUF.SerializeToString()),
)
content_types = st.sampled_from(
    ["application/x-protobuf", "application/json", "application/json; charset=utf-8", "text/plain"]
)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=bodies, content_type=content_types, encoding=st.sampled_from([None, "gzip", "deflate"]))
def test_fuzzed_requests_never_get_a_5xx_and_only_valid_ones_are_stored(
    fuzz_store, body, content_type, encoding
):
    headers = {"Content-Type": content_type}
    if encoding:
        body = gzip.compress(body) if encoding == "gzip" else zlib.compress(body)
        headers["Content-Encoding"] = encoding
    before = counts(written(fuzz_store))["spans"]
    status, text, _ = post(fuzz_store.http_port, body, headers)
    assert status < 500, text
    try:
        expected = sum(
            len(scope.spans)
            for resource in decode_body(
                body, content_type, headers.get("Content-Encoding")
            ).resource_spans
            for scope in resource.scope_spans
        )
    except IngestError:
        expected = 0
    if status != 200:
        expected = 0
    assert counts(written(fuzz_store))["spans"] == before + expected
    with sqlite3.connect(fuzz_store.directory / DATABASE_NAME) as connection:
        assert connection.execute("PRAGMA quick_check").fetchone() == ("ok",)


@st.composite
def chunked_framing(draw, body: bytes) -> tuple[bytes, bool]:
    """`body` in chunks of random sizes, with extensions, hex in either case and trailer
    fields, as any HTTP/1.1 client may frame it; then, half the time, a few bytes of the
    framing mutated. Returns the framing and whether it is still the body, unmutated."""
    framed = bytearray()
    rest = body
    while rest:
        size = draw(st.integers(1, len(rest)))
        digits = f"{size:x}"
        if draw(st.booleans()):
            digits = digits.upper()
        extension = draw(st.sampled_from([b"", b";a=b", b';name="v"', b" ; x"]))
        framed += digits.encode() + extension + b"\r\n" + rest[:size] + b"\r\n"
        rest = rest[size:]
    framed += b"0\r\n" + draw(st.sampled_from([b"", b"X-Trailer: 1\r\n"])) + b"\r\n"
    if draw(st.booleans()):
        return bytes(framed), True
    return draw(mutated(bytes(framed))), False


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(framing=chunked_framing(VALID_PROTOBUF.SerializeToString()))
def test_fuzzed_chunked_framing_never_gets_a_5xx_and_a_whole_body_is_stored(fuzz_store, framing):
    framed, intact = framing
    before = counts(written(fuzz_store))["spans"]
    with socket.create_connection(("127.0.0.1", fuzz_store.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n" + framed
        )
        sock.shutdown(socket.SHUT_WR)  # a framing cut short must end, not wait for more
        answer = b"".join(iter(lambda: sock.recv(65536), b"")).decode(errors="replace")
    status = int(answer.split(" ", 2)[1])
    assert status < 500, answer
    after = counts(written(fuzz_store))["spans"]
    if intact:
        assert status == 200, answer
        assert after == before + 2
    else:
        assert after in (before, before + 2) or status == 200
    with sqlite3.connect(fuzz_store.directory / DATABASE_NAME) as connection:
        assert connection.execute("PRAGMA quick_check").fetchone() == ("ok",)


# -- valid requests of every shape ----------------------------------------------------------------


def _nonzero(size: int) -> st.SearchStrategy[bytes]:
    # The last bit set: never the all-zero id OTLP forbids, and no filter to reject examples.
    return st.binary(min_size=size, max_size=size).map(lambda raw: raw[:-1] + bytes([raw[-1] | 1]))


def _pairs(pairs: dict[str, AnyValue]) -> list[KeyValue]:
    return [KeyValue(key=key, value=value) for key, value in pairs.items()]


texts = st.text(max_size=12)
uint32 = st.integers(0, 2**32 - 1)
times = st.integers(0, 2**63 - 1)
scalars = st.one_of(
    texts.map(lambda text: AnyValue(string_value=text)),
    st.booleans().map(lambda flag: AnyValue(bool_value=flag)),
    st.integers(-(2**63), 2**63 - 1).map(lambda number: AnyValue(int_value=number)),
    # Finite only: proto3's JSON mapping writes NaN and infinities as strings ("NaN"), where
    # the OpenAPI document types doubleValue as a number.
    st.floats(allow_nan=False, allow_infinity=False).map(
        lambda number: AnyValue(double_value=number)
    ),
    st.binary(max_size=12).map(lambda raw: AnyValue(bytes_value=raw)),
    st.just(AnyValue()),  # a value with none of its fields set
)


def _containers(inner: st.SearchStrategy[AnyValue]) -> st.SearchStrategy[AnyValue]:
    # A function, not a lambda: hypothesis reads a multi-line lambda's source to check that
    # it uses its argument, fails, and warns that it cannot recurse.
    return st.one_of(
        st.lists(inner, max_size=3).map(
            lambda items: AnyValue(array_value=ArrayValue(values=items))
        ),
        st.dictionaries(texts, inner, max_size=3).map(
            lambda pairs: AnyValue(kvlist_value=KeyValueList(values=_pairs(pairs)))
        ),
    )


any_values = st.recursive(scalars, _containers, max_leaves=6)
attributes = st.dictionaries(texts, any_values, max_size=4).map(_pairs)


@st.composite
def valid_spans(draw, trace_ids: st.SearchStrategy[bytes]) -> Span:
    return Span(
        trace_id=draw(trace_ids),
        span_id=draw(_nonzero(8)),
        parent_span_id=draw(st.one_of(st.just(b""), _nonzero(8))),
        trace_state=draw(texts),
        flags=draw(uint32),
        name=draw(texts),
        kind=draw(st.integers(0, 5)),
        start_time_unix_nano=draw(times),
        end_time_unix_nano=draw(times),
        attributes=draw(attributes),
        dropped_attributes_count=draw(uint32),
        events=draw(
            st.lists(
                st.builds(
                    Span.Event,
                    time_unix_nano=times,
                    name=texts,
                    attributes=attributes,
                    dropped_attributes_count=uint32,
                ),
                max_size=2,
            )
        ),
        dropped_events_count=draw(uint32),
        links=draw(
            st.lists(
                st.builds(
                    Span.Link,
                    trace_id=_nonzero(16),
                    span_id=_nonzero(8),
                    trace_state=texts,
                    attributes=attributes,
                    dropped_attributes_count=uint32,
                    flags=uint32,
                ),
                max_size=2,
            )
        ),
        dropped_links_count=draw(uint32),
        status=Status(code=draw(st.integers(0, 2)), message=draw(texts)),
    )


@st.composite
def valid_requests(draw) -> ExportTraceServiceRequest:
    # A few trace ids shared by the spans, so traces have several spans across resources.
    trace_ids = st.sampled_from(draw(st.lists(_nonzero(16), min_size=1, max_size=3)))
    scope_spans = st.builds(
        ScopeSpans,
        scope=st.builds(
            InstrumentationScope,
            name=texts,
            version=texts,
            attributes=attributes,
            dropped_attributes_count=uint32,
        ),
        spans=st.lists(valid_spans(trace_ids), min_size=1, max_size=3),
        schema_url=texts,
    )
    resource_spans = st.builds(
        ResourceSpans,
        resource=st.builds(Resource, attributes=attributes, dropped_attributes_count=uint32),
        scope_spans=st.lists(scope_spans, min_size=1, max_size=2),
        schema_url=texts,
    )
    return ExportTraceServiceRequest(
        resource_spans=draw(st.lists(resource_spans, min_size=1, max_size=2))
    )


def spans_of_trace(store: StoreProcess, trace_id: str) -> Counter[bytes]:
    """The spans GET /api/v3/traces/{id} answers with, parsed back into protobuf bytes.

    The answer is checked against the OpenAPI document on the way; a 404 is no spans.
    """
    try:
        with urllib.request.urlopen(f"{store.query_url}/api/v3/traces/{trace_id}", timeout=10) as r:
            body = json.loads(r.read())
    except urllib.error.HTTPError as exc:
        assert exc.code == 404, exc.read()
        return Counter()
    validate_traces(body)
    spans: Counter[bytes] = Counter()
    for resource_spans in body["result"]["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                # OTLP JSON ids are hex; protobuf's own JSON parser wants base64.
                for node in (item, *item.get("links", ())):
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in node:
                            node[key] = base64.b64encode(bytes.fromhex(node[key])).decode()
                parsed = json_format.ParseDict(item, Span())
                spans[parsed.SerializeToString(deterministic=True)] += 1
    return spans


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(export=valid_requests(), compress=st.booleans())
def test_valid_requests_of_every_shape_are_stored_and_read_back(fuzz_store, export, compress):
    sent: dict[str, Counter[bytes]] = {}
    for resource_spans in export.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for item in scope_spans.spans:
                by_trace = sent.setdefault(item.trace_id.hex(), Counter())
                by_trace[item.SerializeToString(deterministic=True)] += 1
    # Examples may repeat a trace id: what counts is what this request added.
    before = {trace_id: spans_of_trace(fuzz_store, trace_id) for trace_id in sent}
    body, headers = export.SerializeToString(), dict(PROTOBUF)
    if compress:
        body, headers["Content-Encoding"] = gzip.compress(body), "gzip"
    status, text, _ = post(fuzz_store.http_port, body, headers)
    assert status == 200, text
    for trace_id, spans in sent.items():
        assert spans_of_trace(fuzz_store, trace_id) == before[trace_id] + spans


def test_sigterm_stops_the_store_cleanly_while_a_client_is_connected(tmp_path: Path) -> None:
    # A signal can land while a request thread holds the GIL; the main thread must still
    # notice it and drain, not sit there until the parent gives up and kills it.
    for attempt in range(3):
        store = spawn_store(tmp_path / f"s{attempt}", grpc_port=None)
        with socket.create_connection(("127.0.0.1", store.http_port)):
            returncode = store.stop(timeout=5.0)
        assert returncode == 0, store.stderr()


def test_a_server_whose_writer_fails_to_start_leaves_its_directory_unlocked(tmp_path, monkeypatch):
    def replay_fails(*args, **kwargs):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(server_module, "Writer", replay_fails)
        with pytest.raises(OSError, match="No space left") as failed:
            StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0).start()
    assert failed.value is not None  # its traceback, holding the store, is still alive
    with StoreServer(tmp_path, http_port=0, grpc_port=None, query_port=0):
        pass
