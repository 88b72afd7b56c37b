"""Spans from forked and spawned workers arrive, each stamped with its own process.

Real processes only: a multiprocessing parent script, `uvicorn --workers 2` (spawned workers
that each call init) and `gunicorn --preload -w 2` (forked workers that inherit the master's
init). Every span is checked at a real OTLP receiver: the resource's `process.pid` must be
the process that made the span (which puts its pid on the span too), never the parent's, and
`service.instance.id` must differ per process.
"""

from __future__ import annotations

import sys
import time
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.support.fork_processes import (
    Server,
    alive,
    clean_env,
    free_port,
    group_members,
    no_proxy_client,
    run_script,
    uvicorn_command,
)
from tests.support.otlp_receiver import OtlpReceiver

pytestmark = pytest.mark.integration

Span = dict[str, Any]
CHILDREN = 3
# Requests are sent this many at a time so that one busy worker leaves the next to another.
CONCURRENCY = 4
MAX_REQUESTS = 200
REQUEST_BUDGET_SECONDS = 20.0


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def resource_pid(span: Span) -> int:
    return int(span["resource"]["process.pid"])


def instance_id(span: Span) -> str:
    return str(span["resource"]["service.instance.id"])


def assert_stamped_by_their_own_process(spans: list[Span], pid_attribute: str) -> None:
    """Each span's resource pid is the pid the process put on the span itself, and each
    process has exactly one service.instance.id, shared with no other process."""
    instances: dict[int, set[str]] = defaultdict(set)
    for span in spans:
        assert resource_pid(span) == span["attributes"][pid_attribute], span
        instances[resource_pid(span)].add(instance_id(span))
    assert all(len(ids) == 1 for ids in instances.values()), instances
    all_ids = [next(iter(ids)) for ids in instances.values()]
    assert len(set(all_ids)) == len(all_ids), instances


def numbered(spans: list[Span]) -> dict[int, list[Span]]:
    by_number: dict[int, list[Span]] = defaultdict(list)
    for span in spans:
        if "request.number" in span["attributes"]:
            by_number[int(span["attributes"]["request.number"])].append(span)
    return by_number


def drive_until_two_workers(
    get: Callable[[int], dict[str, Any]], receiver: OtlpReceiver
) -> dict[int, int]:
    """Sends numbered requests until spans from two worker pids have arrived.

    Bounded by MAX_REQUESTS and REQUEST_BUDGET_SECONDS. Returns {request number: pid that
    answered it}.
    """
    served: dict[int, int] = {}
    deadline = time.monotonic() + REQUEST_BUDGET_SECONDS
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        while len(served) < MAX_REQUESTS and time.monotonic() < deadline:
            numbers = range(len(served), len(served) + CONCURRENCY)
            for number, answer in zip(numbers, pool.map(get, numbers), strict=True):
                served[number] = answer["pid"]
            span_pids = {
                resource_pid(s) for s in receiver.spans() if "worker.pid" in s["attributes"]
            }
            if len(span_pids) >= 2:
                return served
            time.sleep(0.05)
    raise AssertionError(
        f"spans from two workers did not arrive after {len(served)} requests; "
        f"workers that answered: {sorted(set(served.values()))}\n{receiver.summary()}"
    )


def stop_and_check_nothing_is_left(server: Server, worker_pids: set[int]) -> None:
    assert server.stop(timeout=10.0), f"server needed SIGKILL:\n{server.output()[-3000:]}"
    left = [pid for pid in worker_pids if alive(pid)] + group_members(server.pid)
    assert not left, f"processes left after the server stopped: {left}"


# --------------------------------------------------------------------------------------------
# multiprocessing, fork start method
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "parent",
    [
        # The parent has traced, but nothing was sent yet when the children fork.
        pytest.param("queued", id="parent-span-queued"),
        # The parent only called init(): the most common shape of a script with a pool.
        pytest.param("idle", id="parent-idle"),
        # The parent already exported, so it holds an open connection when it forks.
        pytest.param("exported", id="parent-span-exported"),
    ],
)
def test_multiprocessing_fork_children_send_their_spans_at_exit(
    tmp_path: Path, parent: str
) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        report, stderr = run_script(
            "fork_mp.py", [receiver.http_endpoint, parent, str(CHILDREN)], clean_env()
        )
        assert [c["exitcode"] for c in report["children"]] == [0] * CHILDREN, report
        child_pids = {c["pid"] for c in report["children"]}
        expected = {f"child-{i}" for i in range(CHILDREN)}
        # Each child waited for its export before exiting and the parent has exited too, so
        # whatever was sent is recorded already; the wait only absorbs file polling.
        try:
            spans = receiver.wait_for_spans(
                lambda spans: expected <= {s["name"] for s in spans}, timeout=2.0
            )
        except AssertionError as missing:
            raise AssertionError(f"{missing}\nparent script stderr:\n{stderr}") from None

    children = [s for s in spans if s["name"] in expected]
    assert sorted(s["name"] for s in children) == sorted(expected), "a child span was duplicated"
    assert {resource_pid(s) for s in children} == child_pids
    assert report["parent_pid"] not in {resource_pid(s) for s in children}
    parents = [s for s in spans if s["name"] == "parent-before-fork"]
    assert [resource_pid(s) for s in parents] == (
        [] if parent == "idle" else [report["parent_pid"]]
    )
    assert_stamped_by_their_own_process(children + parents, "child.pid")
    assert "o11ykit" not in stderr, stderr


# --------------------------------------------------------------------------------------------
# uvicorn --workers 2: spawned workers, each calls init() at import
# --------------------------------------------------------------------------------------------


def test_uvicorn_spawned_workers_export_with_their_own_pid(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            uvicorn_command("tests.support.fork_app:app", port, workers=2),
            tmp_path / "uvicorn.log",
            clean_env(FORK_APP_ENDPOINT=receiver.http_endpoint),
        )
        try:
            server.wait_ready(f"{base}/health")
            # A new connection per request: a kept-alive one would stay with one worker.
            with no_proxy_client(keepalive=False) as client:

                def get(number: int) -> dict[str, Any]:
                    answer = client.get(f"{base}/pid", params={"n": number, "hold": 0.02})
                    assert answer.status_code == 200, answer.text
                    return answer.json()

                served = drive_until_two_workers(get, receiver)
            worker_pids = set(served.values())
            stop_and_check_nothing_is_left(server, worker_pids)
        finally:
            server.stop()
        # Spans still queued in a worker when it was stopped are sent on its way out.
        spans = receiver.wait_for_spans(lambda s: len(numbered(s)) >= len(served), 5.0)

    spans = [s for s in spans if "worker.pid" in s["attributes"]]
    assert len({resource_pid(s) for s in spans}) == 2
    assert {resource_pid(s) for s in spans} <= worker_pids
    assert server.pid not in {resource_pid(s) for s in spans}
    assert_stamped_by_their_own_process(spans, "worker.pid")
    for number, pid in served.items():
        assert [resource_pid(s) for s in numbered(spans)[number]] == [pid], number


# --------------------------------------------------------------------------------------------
# gunicorn --preload -w 2: init() in the master, workers forked from it
# --------------------------------------------------------------------------------------------


def gunicorn_command(port: int) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "tests.support.fork_wsgi:app",
        "--preload", "--workers", "2", "--bind", f"127.0.0.1:{port}",
        "--graceful-timeout", "5", "--timeout", "20",
        # gunicorn >= 24 would otherwise create ~/.gunicorn/gunicorn.ctl, shared between runs.
        "--no-control-socket",
    ]  # fmt: skip


def test_gunicorn_preloaded_workers_export_with_their_own_pid(tmp_path: Path) -> None:
    with OtlpReceiver(tmp_path) as receiver:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = Server(
            gunicorn_command(port),
            tmp_path / "gunicorn.log",
            clean_env(FORK_WSGI_ENDPOINT=receiver.http_endpoint),
        )
        master_pids: set[int] = set()
        try:
            server.wait_ready(f"{base}/health")
            with no_proxy_client(keepalive=False) as client:

                def get(number: int) -> dict[str, Any]:
                    params = {"n": number, "tenant": f"tenant-{number}", "hold": 0.02}
                    answer = client.get(f"{base}/", params=params)
                    assert answer.status_code == 200, answer.text
                    master_pids.add(answer.json()["master_pid"])
                    return answer.json()

                served = drive_until_two_workers(get, receiver)
            worker_pids = set(served.values())
            stop_and_check_nothing_is_left(server, worker_pids)
        finally:
            server.stop()
        # SIGTERM lets each worker exit through atexit, which sends what it still queues.
        spans = receiver.wait_for_spans(lambda s: len(numbered(s)) >= len(served), 5.0)

    # init() really ran in the master (preload), not in the workers.
    assert master_pids == {server.pid}
    assert server.pid not in worker_pids
    spans = [s for s in spans if s["name"] == "wsgi-request"]
    assert len({resource_pid(s) for s in spans}) >= 2
    assert {resource_pid(s) for s in spans} <= worker_pids
    assert_stamped_by_their_own_process(spans, "worker.pid")
    for number, pid in served.items():
        [span] = numbered(spans)[number]
        assert resource_pid(span) == pid
        assert span["attributes"]["tenant.id"] == f"tenant-{number}"
