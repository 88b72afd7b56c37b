"""Turns on what is installed and reports, once, what it skipped and why."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Callable

from opentelemetry.sdk.trace import TracerProvider

from o11ykit.config import INSTRUMENTATIONS, Settings

log = logging.getLogger("o11ykit")


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


def enable_all(settings: Settings, provider: TracerProvider) -> dict[str, str]:
    """Each integration's status: 'active ...' or 'skipped: <reason>'."""
    wanted = (
        set(INSTRUMENTATIONS)
        if "all" in settings.instrumentations
        else set(settings.instrumentations)
    )
    report: dict[str, str] = {}
    for name in INSTRUMENTATIONS:
        if name not in wanted:
            report[name] = "skipped: not in the instrumentations setting"
        elif name != "logging" and not _installed(name):
            report[name] = f"skipped: {name} is not installed"
        elif name == "fastapi":
            report[name] = (
                "waiting for an app: pass init(app=app) or call o11ykit.instrument_app(app)"
            )
        else:
            try:
                report[name] = _ENABLERS[name](provider)
            except Exception as exc:
                report[name] = f"skipped: failed to enable ({type(exc).__name__}: {exc})"
    skipped = {k: v for k, v in report.items() if v.startswith("skipped")}
    if skipped:
        log.info(
            "o11ykit: instrumentations skipped: %s",
            "; ".join(f"{k} ({v.removeprefix('skipped: ')})" for k, v in skipped.items()),
        )
    return report
