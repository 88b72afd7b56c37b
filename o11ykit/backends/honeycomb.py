"""Honeycomb over OTLP: the team header always, the dataset header only for classic keys."""

from __future__ import annotations

import re
from urllib.parse import quote

from o11ykit.backends import otlp
from o11ykit.config import ConfigError, Settings
from o11ykit.transport import OtlpTransport

ENDPOINTS = {"us": "https://api.honeycomb.io", "eu": "https://api.eu1.honeycomb.io"}
UI = {"us": "https://ui.honeycomb.io", "eu": "https://ui.eu1.honeycomb.io"}
# Classic keys are 32 hex characters; classic ingest keys look like hcaic_ + 58 characters.
_CLASSIC_KEY = re.compile(r"^[a-f0-9]{32}$")
_CLASSIC_INGEST_KEY = re.compile(r"^hc[a-z]ic_[a-z0-9]{58}$")
DEFAULT_CLASSIC_DATASET = "unknown_service"


def is_classic_key(key: str) -> bool:
    return bool(_CLASSIC_KEY.match(key) or _CLASSIC_INGEST_KEY.match(key))


def headers(settings: Settings) -> dict[str, str]:
    key = settings.honeycomb_api_key
    if not key:
        raise ConfigError(
            "o11ykit setting honeycomb_api_key is required for backend=honeycomb; "
            "set HONEYCOMB_API_KEY or pass honeycomb_api_key=...",
            settings=("honeycomb_api_key",),
        )
    result = {**settings.headers, "x-honeycomb-team": key}
    if is_classic_key(key):
        result["x-honeycomb-dataset"] = (
            settings.honeycomb_dataset or settings.service_name or DEFAULT_CLASSIC_DATASET
        )
    return result


def transport(settings: Settings) -> OtlpTransport:
    endpoint = settings.endpoint or ENDPOINTS[settings.honeycomb_region]
    return otlp.build(endpoint, settings, headers(settings))


def trace_link(
    settings: Settings, trace_id: str, team: str | None = None, environment: str | None = None
) -> str | None:
    """The trace in Honeycomb's UI; the team and environment slugs come from /1/auth."""
    if not team:
        return None
    base = f"{UI[settings.honeycomb_region]}/{quote(team)}"
    if environment:
        base += f"/environments/{quote(environment)}"
    return f"{base}/trace?trace_id={trace_id}"
