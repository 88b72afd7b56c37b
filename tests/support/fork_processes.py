"""Processes, ports and HTTP polling for the tests that run real servers and scripts.

Every server is started in its own session (process group), so stopping it can reach the
workers it forked or spawned too, and the tests can prove that nothing of it is left.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from tests.support.otlp_receiver import REPO_ROOT

SUPPORT = Path(__file__).resolve().parent
# The library is configured by argument in these tests; a variable left in the developer's
# shell (OTEL_EXPORTER_OTLP_ENDPOINT, O11YKIT_BACKEND, ...) must not change what they test.
_FOREIGN_PREFIXES = ("OTEL_", "O11YKIT_")


def free_port() -> int:
    """A port nobody listens on right now (bound to 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def refused_port() -> Iterator[int]:
    """A port where connections are refused for as long as this holds it: bound, never
    listening, and without SO_REUSEADDR, so no server started meanwhile can take it. A
    port from free_port() can be handed to the next server that binds port 0 (one of the
    test's own, or another worker's), and traffic meant for nowhere then reaches it: a dead
    backend's export requests would be counted as a traced app's own."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
    env.update(extra)
    # Warnings must reach stderr unbuffered, in the order they happen.
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def no_proxy_client(timeout: float = 5.0, keepalive: bool = True) -> httpx.Client:
    # A fresh connection per request lets the kernel hand requests to different workers.
    limits = httpx.Limits(max_keepalive_connections=None if keepalive else 0)
    return httpx.Client(timeout=timeout, trust_env=False, limits=limits)


# --------------------------------------------------------------------------------------------
# Process state, read from /proc so zombies count as gone and nothing extra is needed
# --------------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may itself contain spaces.
    return raw[raw.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] not in ("Z", "X")


def group_members(pgid: int) -> list[int]:
    """Live processes in the process group (session leader's group) `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            # After the state: ppid, pgrp.
            if fields and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return bool(condition())


# --------------------------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------------------------


class Server:
    """A server command run in its own session, its output in a file (a pipe could fill up)."""

    def __init__(self, command: Sequence[str], log_file: Path, env: Mapping[str, str]) -> None:
        self.log_file = log_file
        with log_file.open("wb") as output:
            self.process = subprocess.Popen(
                list(command),
                cwd=REPO_ROOT,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                start_new_session=True,
            )
        self.pid = self.process.pid

    def output(self) -> str:
        return self.log_file.read_text(encoding="utf-8", errors="replace")

    def wait_ready(self, url: str, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        with no_proxy_client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"server exited with {self.process.returncode}:\n{self.output()[-3000:]}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.1)
        raise RuntimeError(f"server not ready at {url} after {timeout} s:\n{self.output()[-3000:]}")

    def stop(self, timeout: float = 10.0) -> bool:
        """SIGTERM and wait; SIGKILL the whole group on timeout. True if it stopped cleanly."""
        clean = True
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                clean = False
        # Helpers (multiprocessing's resource tracker) may take a moment after their parent.
        clean = clean and wait_until(lambda: not group_members(self.pid), 3.0)
        if not clean:
            # Whatever is left (the master, or a worker that outlived it) is ended here.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            self.process.wait(timeout=5.0)
            wait_until(lambda: not group_members(self.pid), 5.0)
        return clean


@contextlib.contextmanager
def running(
    command: Sequence[str], log_file: Path, env: Mapping[str, str], ready_url: str
) -> Iterator[Server]:
    server = Server(command, log_file, env)
    try:
        server.wait_ready(ready_url)
        yield server
    finally:
        server.stop()


def uvicorn_command(app: str, port: int, workers: int = 1) -> list[str]:
    return [
        sys.executable, "-m", "uvicorn", app,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--no-access-log", "--log-level", "warning",
    ]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------------


def run_script(
    script: str, args: Sequence[str], env: Mapping[str, str], timeout: float = 20.0
) -> tuple[dict[str, Any], str]:
    """Runs tests/support/<script> and returns (the JSON of its last stdout line, its stderr).

    Its own session, so a hung script's children (multiprocessing workers) die with it.
    """
    process = subprocess.Popen(
        [sys.executable, str(SUPPORT / script), *args],
        cwd=REPO_ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=5.0)
    assert process.returncode == 0, f"{script} exited with {process.returncode}:\n{stderr}"
    lines = stdout.strip().splitlines()
    assert lines, f"{script} printed nothing:\n{stderr}"
    return json.loads(lines[-1]), stderr
