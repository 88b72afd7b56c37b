"""The drill's log: one JSON event per line, appended and fsynced before a command
returns. The state is rebuilt from it by replay, so a runner that crashes and restarts
loses no timing."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any


class DrillLog:
    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, event: str, **data: Any) -> dict[str, Any]:
        entry = {"t": time.time(), "event": event, **data}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(entry, sort_keys=True) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return entry

    def events(self) -> list[dict[str, Any]]:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                break  # a line cut by a crash mid-write: everything before it stands
        return events
