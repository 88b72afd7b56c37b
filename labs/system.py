"""The sample system a lab or a drill acts on, as its state file finds it: where its data
lives, and whether its processes still run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def found_state(directory: str | os.PathLike) -> dict[str, Any] | None:
    """The stack's state in `directory`, or None when there is none. Its `data_dir` is
    `directory` itself, made absolute: the file records `--data-dir` as it was typed, so a
    relative one read from anywhere else named another directory (no lab running there,
    or a progress file that could not be written)."""
    from sample_app import stack

    state = stack.read_state(Path(directory))
    return None if state is None else located(state, directory)


def located(state: dict[str, Any], directory: str | os.PathLike) -> dict[str, Any]:
    """`state` with its `data_dir` the directory it was found in (or started in), absolute."""
    state["data_dir"] = str(Path(directory).absolute())
    return state


def is_running(state: dict[str, Any]) -> bool:
    """Whether every process the state records still runs. One that died without `o11ykit
    app down` leaves its state file behind, and a command that trusted it reached for a
    port nobody listens on."""
    from sample_app.stack import recorded_processes

    expected = set(state.get("services") or {})
    if state.get("store_pid"):
        expected.add("store")
    return bool(expected) and expected <= set(recorded_processes(state))


def end_leftovers(state: dict[str, Any]) -> None:
    """Stop whatever of a system that is not running still runs (its processes, its labs'
    and drills' traffic) and remove its state file, so that a new one can start there."""
    from sample_app.stack import stop_from_state

    stop_from_state(state)
