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


def register_companion(data_dir: str | Path, name: str, pid: int) -> None:
    """Record a process started to run against this stack (a lab's or a drill's traffic),
    so that stopping the stack stops it too, whoever forgot to."""
    directory = Path(data_dir) / COMPANIONS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.pid").write_text(str(pid))


def forget_companion(data_dir: str | Path, name: str) -> None:
    """The companion `name` was stopped by whoever started it."""
    with contextlib.suppress(FileNotFoundError):
        (Path(data_dir) / COMPANIONS_DIR / f"{name}.pid").unlink()


def recorded_companion(data_dir: str | Path, name: str) -> int | None:
    """The pid recorded for the companion `name`, or None: it was stopped, or the stack with
    it (a pid kept elsewhere from before may now be another program's)."""
    try:
        return int((Path(data_dir) / COMPANIONS_DIR / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


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
    """Name -> pid of every companion recorded, forgetting them (the caller stops them)."""
    found = {}
    for path in (Path(data_dir) / COMPANIONS_DIR).glob("*.pid"):
        with contextlib.suppress(ValueError, OSError):
            found[path.stem] = int(path.read_text())
        path.unlink(missing_ok=True)
    return found
