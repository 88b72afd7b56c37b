"""Who injected, fixed and cleared which fault, when: kept in memory and appended as JSONL.

The drill's timeline and postmortem are built from this record, so each line is flushed
as it is written: a service killed mid-drill loses nothing already acted on.
"""

from __future__ import annotations

import collections
import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ACTIONS = ("inject", "fix", "unfix", "clear")
MEMORY_LIMIT = 1000


def rfc3339_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AuditLog:
    """The last MEMORY_LIMIT entries in memory; every entry in `path` when one is given."""

    def __init__(self, path: str | Path | None = None, *, limit: int = MEMORY_LIMIT) -> None:
        self.path = Path(path) if path is not None else None
        self._entries: collections.deque[dict[str, Any]] = collections.deque(maxlen=limit)
        self._lock = threading.Lock()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def record(
        self, action: str, fault_id: str, actor: str, spec: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        if action not in ACTIONS:
            raise ValueError(f"audit action {action!r}; accepted: {', '.join(ACTIONS)}")
        entry: dict[str, Any] = {"time": rfc3339_now(), "action": action, "fault": fault_id}
        if spec is not None:
            entry["spec"] = spec
        entry["actor"] = actor
        line = json.dumps(entry, separators=(",", ":"), sort_keys=False) + "\n"
        with self._lock:
            self._entries.append(entry)
            if self.path is not None:
                with self.path.open("a", encoding="utf-8") as file:
                    file.write(line)
                    file.flush()
        return entry

    def entries(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)
