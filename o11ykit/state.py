"""The one handle per process, for the parts that run without a reference to it."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from o11ykit.handle import Handle

lock = threading.RLock()
_handle: Handle | None = None


def current() -> Handle | None:
    return _handle


def set_current(handle: Handle | None) -> None:
    global _handle
    _handle = handle
