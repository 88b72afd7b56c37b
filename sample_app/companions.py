"""Processes started to run against a detached stack (a lab's or a drill's traffic),
recorded beside its state so that `o11ykit app down` stops them with it. Standard library
only: the lab commands import it and must start quickly."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

# Pid files, one a companion, in the stack's data directory.
COMPANIONS_DIR = "companions"


def process_started(pid: int) -> str | None:
    """When process `pid` started, in the kernel's clock ticks since boot (Linux:
    /proc/PID/stat, field 22), or None where it cannot be read (no such process, no /proc).

    Recorded beside a pid, it tells the process from another program that got the same
    number later (after a reboot, or once pids wrap): that one must never be signalled.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (OSError, ValueError):
        return None
    # The command name (field 2) may hold spaces and ")": the fields after it are plain.
    after_name = stat.rpartition(")")[2].split()
    return after_name[19] if len(after_name) > 19 else None


def still_the_same(pid: int, started: str | None) -> bool:
    """Whether `pid` still names the process recorded as started at `started`; a pid
    recorded without a start time (no /proc where it ran) is taken at its word."""
    return started is None or process_started(pid) == started


def register_companion(data_dir: str | Path, name: str, pid: int) -> None:
    """Record a process started to run against this stack (a lab's or a drill's traffic),
    so that stopping the stack stops it too, whoever forgot to."""
    directory = Path(data_dir) / COMPANIONS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    started = process_started(pid)
    (directory / f"{name}.pid").write_text(f"{pid} {started}" if started else str(pid))


def _read_pid_file(path: Path) -> tuple[int, str | None]:
    pid, _, started = path.read_text().strip().partition(" ")
    return int(pid), started or None


def forget_companion(data_dir: str | Path, name: str) -> None:
    """The companion `name` was stopped by whoever started it."""
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir) / COMPANIONS_DIR / f"{name}.pid").unlink()


def recorded_companion(data_dir: str | Path, name: str) -> int | None:
    """The pid recorded for the companion `name`, or None: it was stopped, or the stack with
    it (a pid kept elsewhere from before may now be another program's)."""
    try:
        pid, started = _read_pid_file(Path(data_dir) / COMPANIONS_DIR / f"{name}.pid")
    except (OSError, ValueError):
        return None
    return pid if still_the_same(pid, started) else None


def end_companion(data_dir: str | Path, name: str, pid: int | None = None) -> bool:
    """SIGTERM the companion `name` and forget it; returns whether one was recorded. Only
    the recorded pid is signalled (and only if it is `pid`, when given): a pid kept
    elsewhere from before the stack was stopped may belong to another program by now."""
    recorded = recorded_companion(data_dir, name)
    if recorded is None or (pid is not None and recorded != pid):
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(recorded, signal.SIGTERM)
    forget_companion(data_dir, name)
    return True


def take_companions(data_dir: str | Path) -> dict[str, int]:
    """Name -> pid of every companion recorded that is still running, forgetting them all
    (the caller stops them)."""
    found = {}
    for path in (Path(data_dir) / COMPANIONS_DIR).glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            pid, started = _read_pid_file(path)
            if still_the_same(pid, started):
                found[path.stem] = pid
        path.unlink(missing_ok=True)
    return found
