"""WAL checkpoints on a thread of their own, off the writer's path.

SQLite checkpoints automatically at the end of the commit that takes the WAL past
`wal_autocheckpoint` pages, on the committing thread: every few groups the store's writer
stopped to copy pages back into the database and sync it. Here a second connection
checkpoints after commits instead, at most every CHECKPOINT_SECONDS, in PASSIVE mode (it
never waits for the writer or for readers), while SQLite runs without the GIL, so the
writer goes on. The writer keeps a larger automatic threshold (BACKSTOP_BYTES) should this
thread fall behind: the WAL stays bounded either way.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

from o11ykit.store.schema import DATABASE_NAME

# Often enough that a checkpoint copies a few MB, not hundreds.
CHECKPOINT_SECONDS = 0.5
# The writer's own automatic checkpoint: a backstop only.
BACKSTOP_BYTES = 256 * 1024 * 1024

log = logging.getLogger("o11ykit.store")


class Checkpointer:
    """Checkpoints the store in `directory` after commits; `committed()` says one happened."""

    def __init__(self, directory: Path) -> None:
        # Not open_database: that may write (schema, meta), and only the writer writes.
        self._connection = sqlite3.connect(
            Path(directory) / DATABASE_NAME, isolation_level=None, check_same_thread=False
        )
        self._connection.execute("PRAGMA busy_timeout=5000")
        self._committed = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="o11ykit-store-checkpoints", daemon=True
        )
        self._thread.start()

    def committed(self) -> None:
        self._committed.set()

    def stop(self) -> None:
        self._stopping.set()
        self._committed.set()
        self._thread.join()
        self._connection.close()

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._committed.wait()
            self._committed.clear()
            if self._stopping.is_set():
                return
            try:
                self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except sqlite3.Error:  # busy or failing: the next commit, or the backstop, retries
                log.debug("WAL checkpoint failed", exc_info=True)
            self._stopping.wait(CHECKPOINT_SECONDS)
