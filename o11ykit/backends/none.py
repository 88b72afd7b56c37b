"""No export: spans are still created (for tests and in-process readers), never sent."""

from __future__ import annotations

from o11ykit.config import Settings


def transport(settings: Settings) -> None:
    return None


def trace_link(settings: Settings, trace_id: str) -> str | None:
    return None
