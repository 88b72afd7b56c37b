"""A backend that is down, slow, rejecting or the wrong protocol costs the service nothing.

Real processes and sockets: the traced service is a FastAPI app under uvicorn, configured
through O11YKIT_* variables only (tests/support/dead_app.py); the backend is the OTLP test
receiver in one of its modes, or a port nobody listens on. What the service says about it is
read where an operator would read it: its stderr, and its counters (`GET /stats`).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.fork_processes import (
    Server,
    clean_env,
    free_port,
    no_proxy_client,
    refused_port,
    run_script,
    uvicorn_command,
)
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration

BACKEND_WARNING = "spans are not reaching the backend"
QUEUE_WARNING = "the export queue is full"
# Short enough that a few seconds of traffic make dozens of failed batches, each of which
# could have been a log line.
SCHEDULE_DELAY = 0.1
SHUTDOWN_TIMEOUT = 0.5


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


@contextlib.contextmanager
def dead_endpoint() -> Iterator[str]:
    """An endpoint that refuses connections, and stays refused while the test runs."""
    with refused_port() as port:
        yield f"http://127.0.0.1:{port}"


def app_env(endpoint: str, protocol: str = "http/protobuf") -> dict[str, str]:
    return clean_env(
        O11YKIT_BACKEND="otlp",
        O11YKIT_ENDPOINT=endpoint,
        O11YKIT_PROTOCOL=protocol,
        O11YKIT_SCHEDULE_DELAY=str(SCHEDULE_DELAY),
    )


class App:
    """The traced service, run by uvicorn on a free port."""

    def __init__(self, tmp_path: Path, name: str, env: dict[str, str]) -> None:
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        self.server = Server(
            uvicorn_command("tests.support.dead_app:app", port), tmp_path / f"{name}.log", env
        )

    def work(self, client: httpx.Client) -> float:
        """One traced request; returns its latency in seconds."""
        started = time.perf_counter()
        answer = client.get(f"{self.base}/work")
        latency = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        return latency

    def stats(self, client: httpx.Client) -> dict[str, Any]:
        # Once the timer has run twice more, every earlier span has been exported or dropped.
        time.sleep(3 * SCHEDULE_DELAY)
        answer = client.get(f"{self.base}/stats")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def warnings(self, text: str) -> int:
        return self.server.output().count(text)


@contextlib.contextmanager
def serving(tmp_path: Path, **envs: dict[str, str]) -> Iterator[dict[str, App]]:
    """Starts one app per keyword at once (startup is the slow part), stops them all after."""
    apps = {name: App(tmp_path, name, env) for name, env in envs.items()}
    try:
        for app in apps.values():
            app.server.wait_ready(f"{app.base}/health")
        yield apps
    finally:
        for app in apps.values():
            app.server.stop()


def drive(app: App, requests: int, pause: float) -> dict[str, Any]:
    """Paced traced requests, then the app's counters and, once it has stopped, its log."""
    with no_proxy_client() as client:
        for _ in range(requests):
            app.work(client)
            time.sleep(pause)
        stats = app.stats(client)
    # Stopping runs the exit flush too: a warning it logs must be counted with the others.
    assert app.server.stop(), app.server.output()
    return stats


def test_a_dead_endpoint_refuses_and_no_server_can_take_it() -> None:
    with refused_port() as port:
        with socket.socket() as client, pytest.raises(ConnectionRefusedError):
            client.connect(("127.0.0.1", port))
        # As uvicorn binds (SO_REUSEADDR): refused while the endpoint is held.
        with socket.socket() as server, pytest.raises(OSError) as taken:
            server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            server.bind(("127.0.0.1", port))
        assert taken.value.errno == errno.EADDRINUSE


# --------------------------------------------------------------------------------------------
# A dead endpoint: no failed request, no added latency, one warning
# --------------------------------------------------------------------------------------------

REQUESTS = 200


@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_dead_endpoint_costs_no_request_no_latency_and_warns_once(tmp_path: Path) -> None:
    with (
        OtlpReceiver(tmp_path) as receiver,
        dead_endpoint() as nowhere,
        serving(tmp_path, healthy=app_env(receiver.http_endpoint), dead=app_env(nowhere)) as apps,
    ):
        healthy, dead = apps["healthy"], apps["dead"]
        latencies: dict[str, list[float]] = {"healthy": [], "dead": []}
        with no_proxy_client() as client:
            # Alternating, so both see the same machine load; paced, so the dead one keeps
            # failing for a few seconds: dozens of batches at SCHEDULE_DELAY.
            for _ in range(REQUESTS):
                latencies["healthy"].append(healthy.work(client))
                latencies["dead"].append(dead.work(client))
                time.sleep(0.01)
            healthy_stats, dead_stats = healthy.stats(client), dead.stats(client)
        for app in (healthy, dead):
            assert app.server.stop(), app.server.output()
        received = receiver.wait_for_spans(lambda spans: len(spans) >= REQUESTS, 5.0)

    # The healthy twin really exported: the comparison is against a working pipeline. Which
    # requests its spans were for says where any extra ones came from.
    paths = Counter(f"{s['name']} {s['attributes'].get('url.path')}" for s in received)
    assert healthy_stats["exported"] == REQUESTS, (healthy_stats, dead_stats, paths)
    assert healthy_stats["dropped"] == 0, healthy_stats
    assert paths["GET /work /work"] == REQUESTS, paths
    assert dead_stats["exported"] == 0
    assert dead_stats["dropped_export_failed"] == REQUESTS
    assert dead_stats["failed_batches"] >= 10, dead_stats
    assert "connection refused" in dead_stats["last_error"], dead_stats
    # A sanity check, not a benchmark: refused exports happen off the request path.
    healthy_median = statistics.median(latencies["healthy"])
    dead_median = statistics.median(latencies["dead"])
    assert dead_median < 1.5 * healthy_median + 0.002, (healthy_median, dead_median)
    # Dozens of failed batches, one line.
    assert dead.warnings(BACKEND_WARNING) == 1, dead.server.output()
    assert healthy.warnings("o11ykit") == 0, healthy.server.output()


# --------------------------------------------------------------------------------------------
# shutdown(timeout) keeps its word
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "backend, protocol, when",
    [
        ("dead", "http/protobuf", "queued"),
        ("dead", "grpc", "queued"),
        ("slow", "http/protobuf", "queued"),
        ("slow", "http/protobuf", "inflight"),
        ("slow", "grpc", "inflight"),
    ],
)
@pytest.mark.serial  # a fixed time bound, which another test's load would move
def test_shutdown_returns_within_its_timeout(
    tmp_path: Path, backend: str, protocol: str, when: str
) -> None:
    slow = OtlpReceiver(tmp_path, mode="slow", slow_seconds=5.0) if backend == "slow" else None
    with slow or contextlib.nullcontext(), dead_endpoint() as nowhere:
        if slow is None:
            endpoint = nowhere
        else:
            endpoint = slow.grpc_endpoint if protocol == "grpc" else slow.http_endpoint
        started = time.monotonic()
        report, stderr = run_script(
            "dead_shutdown.py", [endpoint, protocol, str(SHUTDOWN_TIMEOUT), when], clean_env()
        )
        wall = time.monotonic() - started
        sent = slow.requests() if slow else []

    assert report["elapsed"] < 1.5, (report, stderr)
    # Nor does the process wait at exit for the answer the slow receiver gives after 5 s.
    assert wall < 4.5, (wall, report, stderr)
    if slow is not None:
        # The flush was really attempted, up to the timeout: the receiver saw the spans.
        assert sent, stderr
        if when == "queued":
            assert report["elapsed"] > 0.6 * SHUTDOWN_TIMEOUT, report


# --------------------------------------------------------------------------------------------
# A backend that answers with errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode, words",
    [("error500", ("server error", "HTTP 500")), ("error429", ("throttled", "429"))],
)
def test_rejecting_backend_is_counted_and_warned_once(
    tmp_path: Path, mode: str, words: tuple[str, ...]
) -> None:
    requests = 60
    with (
        OtlpReceiver(tmp_path, mode=mode) as receiver,
        serving(tmp_path, app=app_env(receiver.http_endpoint)) as apps,
    ):
        stats = drive(apps["app"], requests, pause=0.02)
        rejected = [r for r in receiver.requests() if r.get("rejected")]

    assert stats["exported"] == 0
    assert stats["dropped_export_failed"] == stats["dropped"] == requests, stats
    assert stats["failed_batches"] >= 5, stats
    # Every failed batch was a real answer from the receiver, not a connection problem.
    assert len(rejected) >= stats["failed_batches"]
    assert all(word in stats["last_error"] for word in words), stats
    assert apps["app"].warnings(BACKEND_WARNING) == 1, apps["app"].server.output()


# --------------------------------------------------------------------------------------------
# The wrong protocol for the port
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "protocol, port, words",
    [
        # What transport.py says in each direction (_diagnose_grpc / _diagnose_os_error).
        ("grpc", "http", ("wrong protocol", "did not answer gRPC", "the HTTP port")),
        ("http/protobuf", "grpc", ("wrong protocol", "did not answer HTTP", "a gRPC port")),
    ],
)
def test_wrong_protocol_for_the_port_is_diagnosed_in_words(
    tmp_path: Path, protocol: str, port: str, words: tuple[str, ...]
) -> None:
    requests = 20
    with OtlpReceiver(tmp_path) as receiver:
        endpoint = receiver.http_endpoint if port == "http" else receiver.grpc_endpoint
        with serving(tmp_path, app=app_env(endpoint, protocol)) as apps:
            stats = drive(apps["app"], requests, pause=0.05)
        decoded = receiver.requests()

    assert decoded == [], "the receiver should not have understood any request"
    assert stats["exported"] == 0 and stats["dropped_export_failed"] == requests, stats
    assert stats["failed_batches"] >= 2, stats
    assert all(word in stats["last_error"] for word in words), stats
    assert apps["app"].warnings(BACKEND_WARNING) == 1, apps["app"].server.output()


# --------------------------------------------------------------------------------------------
# A full queue
# --------------------------------------------------------------------------------------------


def test_full_queue_counts_drops_and_warns_once(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        # max_queue_size=10, so batches of 10: a burst of 1,000 overflows the queue far
        # faster than batches drain it, whenever the worker wakes.
        report, stderr = run_script("dead_queue.py", [receiver.http_endpoint, "1000"], clean_env())
        before, after = report["before"], report["after"]
        spans = receiver.wait_for_spans(lambda spans: len(spans) >= after["exported"], 2.0)

    assert before["dropped_queue_full"] == before["dropped"] > 0, before
    # Every span is exported or counted as dropped: what the queue held is sent by shutdown.
    assert after["exported"] + after["dropped"] == 1000, after
    assert after["dropped"] == before["dropped"], (before, after)
    names = [s["name"] for s in spans]
    assert len(names) == len(set(names)) == after["exported"], names
    assert all(name.startswith("burst-") for name in names)
    assert stderr.count(QUEUE_WARNING) == 1, stderr
    assert stderr.count("o11ykit") == 1, stderr


# --------------------------------------------------------------------------------------------
# A backend that closes idle connections
# --------------------------------------------------------------------------------------------


def test_connection_closed_while_idle_loses_no_batch() -> None:
    batches = 4
    report, stderr = run_script("dead_idle_close.py", [str(batches)], clean_env())
    assert report["stats"]["failed_batches"] == 0, (report, stderr)
    assert report["received"] == [f"batch-{n}" for n in range(batches)], (report, stderr)
