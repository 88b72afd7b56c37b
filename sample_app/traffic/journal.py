"""What happened to each request, and the JSON-lines file that keeps it.

The journal is the ground truth of a drill: which tenants and users really got errors,
to grade a team's answer against. One line per request, written as soon as it ends.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import IO

# The error of a request still in flight when the run stopped: the run gave up on it, the
# user did not see a failure. Journaled (it reached the gateway), never counted as an error.
CANCELLED = "cancelled"


@dataclass(frozen=True)
class Outcome:
    t: float  # unix time the request started
    visit: int
    persona: str
    method: str
    path: str  # without the query string
    route: str  # the path template, e.g. /api/products/{id}
    tenant: str
    user: str
    status: int | None  # None when no response came (refused, timed out, cancelled)
    ms: float
    error: str | None  # the transport error, CANCELLED, or None when a response came

    @property
    def cancelled(self) -> bool:
        return self.error == CANCELLED

    @property
    def failed(self) -> bool:
        """A server error or no answer at all; 4xx are answers (a 402 is a declined card)."""
        if self.status is None:
            return not self.cancelled
        return self.status >= 500


class Journal:
    """Appends one JSON line per outcome; line-buffered, so a reader sees each request as
    it ends and a killed run loses nothing already answered."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self._path = Path(path) if path is not None else None
        self._file: IO[str] | None = None

    def __enter__(self) -> Journal:
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self._path.open("w", encoding="utf-8", buffering=1)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def write(self, outcome: Outcome) -> None:
        if self._file is not None:
            self._file.write(json.dumps(asdict(outcome), separators=(",", ":")) + "\n")
