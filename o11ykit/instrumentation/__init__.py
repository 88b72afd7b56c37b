"""Turns on what is installed and reports, once, what it skipped and why.

A library the service has not imported yet is instrumented when it does (on_import.py),
not imported by init(): a service that never uses an installed library pays nothing for it.
"""

from __future__ import annotations

import importlib.util
import logging
import sys
from collections.abc import Callable
from types import ModuleType

from opentelemetry.sdk.trace import TracerProvider

from o11ykit.config import INSTRUMENTATIONS, Settings
from o11ykit.instrumentation.on_import import when_imported

log = logging.getLogger("o11ykit")
# The libraries instrumented once imported: each is a module of the same name.
_LIBRARIES = ("sqlalchemy", "httpx", "httpx2", "requests")
# Cancels the calls still waiting for their library's import (stop_waiting).
_cancels: dict[str, Callable[[], bool]] = {}


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _sqlalchemy(provider: TracerProvider) -> str:
    from o11ykit.instrumentation import sqlalchemy

    return sqlalchemy.enable(provider.get_tracer("o11ykit.sqlalchemy"))


def _client(library: str) -> Callable[[TracerProvider], str]:
    def enable(provider: TracerProvider) -> str:
        from o11ykit.instrumentation import clients

        return clients.enable(library, provider)

    return enable


def _logging(provider: TracerProvider) -> str:
    from o11ykit.instrumentation import logs

    return logs.enable()


_ENABLERS: dict[str, Callable[[TracerProvider], str]] = {
    "sqlalchemy": _sqlalchemy,
    "httpx": _client("httpx"),
    "httpx2": _client("httpx2"),
    "requests": _client("requests"),
    "logging": _logging,
}


def enable_all(
    settings: Settings, provider: TracerProvider, *, wait_for_import: bool = True
) -> dict[str, str]:
    """Each integration's status: 'active ...', 'skipped: <reason>' or, for a library not
    imported yet, 'waiting: ...' until the service imports it (then the dict is updated).

    `wait_for_import=False` enables every library now, importing it: what `doctor` checks.
    """
    wanted = (
        set(INSTRUMENTATIONS)
        if "all" in settings.instrumentations
        else set(settings.instrumentations)
    )
    report: dict[str, str] = {}
    not_imported = []
    for name in INSTRUMENTATIONS:
        if name not in wanted:
            report[name] = "skipped: not in the instrumentations setting"
        elif name != "logging" and not _installed(name):
            report[name] = f"skipped: {name} is not installed"
        elif name == "fastapi":
            report[name] = (
                "waiting for an app: pass init(app=app) or call o11ykit.instrument_app(app)"
            )
        elif wait_for_import and name in _LIBRARIES and name not in sys.modules:
            report[name] = ""  # its place in the report; decided below
            not_imported.append(name)
        else:
            report[name] = _enable(name, provider)
    # After the libraries already imported: enabling one may import another (httpx2's
    # instrumentation imports httpx), which is then enabled here, once its instrumentation
    # is whole, rather than by an import hook that fires while that is half imported.
    for name in not_imported:
        if name in sys.modules:
            report[name] = _enable(name, provider)
        else:
            report[name] = f"waiting: instrumented when the service imports {name}"
            _cancels[name] = when_imported(name, _enable_on_import(name, provider, report))
    skipped = {k: v for k, v in report.items() if v.startswith("skipped")}
    if skipped:
        log.info(
            "o11ykit: instrumentations skipped: %s",
            "; ".join(f"{k} ({v.removeprefix('skipped: ')})" for k, v in skipped.items()),
        )
    return report


def _enable(name: str, provider: TracerProvider) -> str:
    try:
        return _ENABLERS[name](provider)
    except Exception as exc:
        return f"skipped: failed to enable ({type(exc).__name__}: {exc})"


def _enable_on_import(
    name: str, provider: TracerProvider, report: dict[str, str]
) -> Callable[[ModuleType], None]:
    def enable(module: ModuleType) -> None:
        _cancels.pop(name, None)
        report[name] = status = _enable(name, provider)
        if status.startswith("skipped"):  # said once: this runs once a process
            log.warning("o11ykit: %s imported, not instrumented: %s", name, status)

    return enable


def stop_waiting(report: dict[str, str]) -> None:
    """Cancel the instrumentation of libraries not imported yet (o11ykit shut down)."""
    for name, cancel in list(_cancels.items()):
        if cancel():
            report[name] = f"skipped: o11ykit shut down before the service imported {name}"
        _cancels.pop(name, None)
