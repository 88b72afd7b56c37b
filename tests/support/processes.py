"""Services the tests run as child processes: start one under uvicorn, wait, stop it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# Loopback calls must never go through a proxy set on the machine.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def child_environment(
    extra: Mapping[str, str], not_inherited: tuple[str, ...] = ()
) -> dict[str, str]:
    """This process's environment without proxy settings or names starting with
    `not_inherited` (settings from the developer's shell would change the child), plus extra."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if not key.upper().endswith("_PROXY") and not key.upper().startswith(not_inherited)
    }
    return {**clean, **extra}


def start_uvicorn(
    module: str, port: int, env: Mapping[str, str], output_file: Path, cwd: Path = REPO
) -> subprocess.Popen[bytes]:
    """`module` ("package.module:app") served on 127.0.0.1:port, its output in output_file."""
    command = [
        sys.executable, "-m", "uvicorn", module,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
    ]  # fmt: skip
    # A file, not a pipe: nobody reads the output while the service runs, and a full pipe
    # would block it.
    with output_file.open("wb") as output:
        return subprocess.Popen(
            command,
            cwd=cwd,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_until_http_ready(
    url: str, process: subprocess.Popen[bytes], timeout: float, describe: Callable[[], str]
) -> None:
    """Return once url answers 200; RuntimeError with describe() (e.g. the process's output)
    if the process exits first or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"the process for {url} exited with {process.returncode} before it was ready:"
                f"\n{describe()}"
            )
        with contextlib.suppress(OSError), _OPENER.open(url, timeout=1.0) as answer:
            if answer.status == 200:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} was not ready after {timeout} s:\n{describe()}")
        time.sleep(0.1)


def stop_process(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM first, so a service shuts down and o11ykit flushes; SIGKILL if that hangs."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
