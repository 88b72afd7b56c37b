"""Attribute values as text, the way the local store keeps and compares them.

One definition for the store (what it indexes), its search parameters (what a query's value
means) and the clients that print values a learner may paste back into a search: `true`, not
`True`; `2` for the double 2.0. Stdlib only: the `o11ykit traces` command imports it.
"""

from __future__ import annotations

import json
from typing import Any


def double_text(value: float) -> str:
    """A double as searches compare it: its shortest form, without a trailing ".0"."""
    return repr(value).removesuffix(".0")


def search_text(value: Any) -> str:
    """A plain value (from JSON: str, bool, int, float, list, dict) as the store's text."""
    if isinstance(value, (list, dict)):
        return json.dumps(_plain(value), separators=(",", ":"))
    return _scalar_text(value)


def _scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return double_text(value)
    return "" if value is None else str(value)


def _plain(value: Any) -> Any:
    """Lists and maps keep their shape; every value inside them is text, as ingest's are."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    return _scalar_text(value)
