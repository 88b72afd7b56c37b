"""The one rule that keeps drills out of production: who may turn fault injection on, where.

An explicit `enabled=True` in production is a mistake in code, so it raises; a setting
from the environment is a deployment slip, so it is refused with a warning and the
service runs on, untouched.
"""

from __future__ import annotations

import logging

from o11ykit.config import ConfigError, Settings

log = logging.getLogger("o11ykit")
PRODUCTION_NAMES = ("production", "prod")


def is_production(environment: str | None) -> bool:
    return (environment or "").strip().lower() in PRODUCTION_NAMES


def injection_allowed(enabled: bool | None, settings: Settings) -> bool:
    """Whether to install fault injection: `enabled` when given, else the `faults` setting."""
    if enabled is None:
        wanted = settings.faults
        explicit = settings.sources.get("faults") == "argument"
    else:
        wanted, explicit = bool(enabled), True
    if not wanted:
        return False
    if not is_production(settings.environment):
        return True
    where = settings.sources.get("environment", "default")
    message = (
        f"o11ykit fault injection is refused in production (environment={settings.environment!r} "
        f"from {where}); drills belong on staging systems"
    )
    if explicit:
        raise ConfigError(message)
    log.warning("%s; it stays off", message)
    return False
