"""The store as a child process (`python -m o11ykit.store serve`), for tests and labs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from o11ykit import argtypes
from o11ykit.store.receivers import TRACES_PATH

# The child's side of the handshake, shared with the test receiver in tests/support.


def write_ready_file(path: Path, data: dict[str, Any]) -> None:
    """The real ports, for the parent that polls: it must never see the file half written."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def watch_parent(stop: threading.Event) -> None:
    """Sets `stop` if the process that started this one dies without stopping it."""
    parent = os.getppid()
    while not stop.wait(1.0):
        if os.getppid() != parent:
            stop.set()


class StoreProcess:
    """A store running as `python -m o11ykit.store serve`; see `spawn_store`."""

    def __init__(
        self, process: subprocess.Popen[bytes], work: Path, directory: Path, log_path: Path
    ) -> None:
        self.process = process
        self.directory = directory
        self.log_path = log_path
        self._work = work
        self.http_port = 0
        self.grpc_port: int | None = None
        self.query_port = 0

    def __enter__(self) -> StoreProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def otlp_http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def traces_url(self) -> str:
        return f"{self.otlp_http_endpoint}{TRACES_PATH}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def query_url(self) -> str:
        return f"http://127.0.0.1:{self.query_port}"

    def stderr(self) -> str:
        """What the store has written to its log (all of it, for a log appended to)."""
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (the store drains its queue and exits), then SIGKILL if it will not."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self._work, ignore_errors=True)
        return self.process.returncode

    def kill(self) -> None:
        """SIGKILL, as a crash would: nothing is drained."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self._work, ignore_errors=True)

    def _wait_until_ready(self, timeout: float) -> None:
        ready_file = self._work / "ready.json"
        deadline = time.monotonic() + timeout
        while not ready_file.exists():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the store exited with {self.process.returncode} before it was ready:\n"
                    f"{self.stderr()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"the store was not ready after {timeout} s:\n{self.stderr()}")
            time.sleep(0.01)
        ready = json.loads(ready_file.read_text(encoding="utf-8"))
        self.http_port = int(ready["http_port"])
        self.grpc_port = ready["grpc_port"]
        self.query_port = int(ready["query_port"])


def spawn_store(
    directory: str | Path,
    *,
    http_port: int = 0,
    grpc_port: int | None = 0,
    query_port: int = 0,
    max_spans: int | None = None,
    max_age: float | str | None = None,
    max_body_bytes: int | None = None,
    host: str | None = None,
    listen_all: bool = False,
    startup_timeout: float = 15.0,
    env: dict[str, str] | None = None,
    detach: bool = False,
    log_path: str | Path | None = None,
) -> StoreProcess:
    """Start a store in a child process and wait until it listens (free ports by default).

    It dies with this process unless `detach`: then it runs in its own session until
    stopped by pid (what `o11ykit app up` needs, since `up` returns while the stack runs).
    `log_path`: the file its output is appended to; by default a file in a temporary
    directory that `stop` and `kill` remove. Required with `detach`: whoever stops that
    store by pid could not remove a temporary directory, and its log should outlive it.
    `max_age` is seconds or a Go duration ("24h"), as `--max-age` takes it. A bad setting is
    a ValueError naming it, before any process starts.
    """
    if detach and log_path is None:
        raise ValueError("log_path: a detached store needs a log file that outlives this process")
    # The parsers of `o11ykit store serve`'s options, which the child is given them as.
    argtypes.refuse_bad_settings(
        [
            ("http_port", argtypes.port, http_port),
            ("grpc_port", argtypes.port, grpc_port),
            ("query_port", argtypes.port, query_port),
            ("max_spans", argtypes.positive, max_spans),
            ("max_age", argtypes.max_age, max_age),
            ("max_body_bytes", argtypes.positive, max_body_bytes),
        ]
    )
    work = Path(tempfile.mkdtemp(prefix="o11ykit-store-"))  # the ready file, and the log
    log = Path(log_path) if log_path is not None else work / "stderr.log"
    command = [
        sys.executable,
        "-m",
        "o11ykit.store",
        "serve",
        "--dir",
        str(directory),
        "--otlp-http-port",
        str(http_port),
        "--query-port",
        str(query_port),
        "--ready-file",
        str(work / "ready.json"),
    ]
    if not detach:
        command.append("--exit-with-parent")
    command += ["--otlp-grpc-port", str(grpc_port)] if grpc_port is not None else ["--no-grpc"]
    if max_spans is not None:
        command += ["--max-spans", str(max_spans)]
    if max_age is not None:
        command += ["--max-age", str(max_age)]
    if max_body_bytes is not None:
        command += ["--max-body-bytes", str(max_body_bytes)]
    if host is not None:
        command += ["--host", host]
    if listen_all:
        command.append("--listen-all")
    try:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as output:
            # A file, not a pipe: it can never fill up and block the child.
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=output, stderr=output, env=env,
                start_new_session=detach,
            )  # fmt: skip
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    store = StoreProcess(process, work, Path(directory), log)
    try:
        store._wait_until_ready(startup_timeout)
    except BaseException:
        store.stop()
        raise
    if log_path is not None:  # the ready file was all the directory held
        shutil.rmtree(work, ignore_errors=True)
    return store
