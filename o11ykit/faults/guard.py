"""The one rule that keeps drills out of production: who may turn fault injection on, where.

An explicit `enabled=True` in production is a mistake in code, so it raises; a setting
from the environment is a deployment slip, so it is refused with a warning and the
service runs on, untouched.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from o11ykit import state
from o11ykit.config import ConfigError, Settings, environment_setting

log = logging.getLogger("o11ykit")
# An environment is production when any word of its name is one of these: "prod",
# "production-eu", "us_prd" and "eu.prod.2" are; "preprod", "nonprod" and "staging" are not.
# A name that only looks like production costs a drill; one that slips past costs a service.
PRODUCTION_NAMES = ("production", "prod", "prd")
_UNSEEN = object()


def is_production(environment: str | None) -> bool:
    words = re.split(r"[^a-z0-9]+", (environment or "").lower())
    return any(word in PRODUCTION_NAMES for word in words)


def declared_environment(environ: Mapping[str, str]) -> str | None:
    """The environment these variables name, through O11YKIT_ENVIRONMENT or OTEL_* (say
    `OTEL_RESOURCE_ATTRIBUTES=deployment.environment.name=production`); None when none
    does. A launcher that supplies a default must not outrank what the deployment says.
    ConfigError when a variable that would name it is malformed: then nobody can say it
    is not production."""
    return environment_setting("environment", environ)


def refusal(settings: Settings) -> str | None:
    """Why fault injection may not run under these settings, or None when it may."""
    unread = settings.unread.get("environment")
    if unread:
        return (
            f"o11ykit fault injection is refused: {', '.join(unread)} would name the environment "
            "and could not be read, so nothing says this is not production"
        )
    if not is_production(settings.environment):
        return None
    where = settings.sources.get("environment", "default")
    return (
        f"o11ykit fault injection is refused in production (environment={settings.environment!r} "
        f"from {where}); drills belong on staging systems"
    )


class RunningEnvironment:
    """The guard again, each time o11ykit's running handle changes: `enable(app)` may run
    before `o11ykit.init(environment="production")`, and the guard must hold either way.

    Called on every use of the engine, so it costs one identity check while the handle
    stays the same.
    """

    def __init__(self) -> None:
        self._seen: object = _UNSEEN

    def __call__(self) -> str | None:
        handle = state.current()
        if handle is self._seen:
            return None
        self._seen = handle
        return None if handle is None else refusal(handle.settings)


def injection_allowed(enabled: bool | None, settings: Settings) -> bool:
    """Whether to install fault injection: `enabled` when given, else the `faults` setting."""
    if enabled is None:
        wanted = settings.faults
        explicit = settings.sources.get("faults") == "argument"
    else:
        wanted, explicit = bool(enabled), True
    if not wanted:
        return False
    message = refusal(settings)
    if message is None:
        return True
    if explicit:
        raise ConfigError(message)
    log.warning("%s; it stays off", message)
    return False
