"""One writer a data directory: a lock the operating system drops when its holder dies.

Two stores writing to one directory would each apply and then delete the other's ingest
log (a 200 would no longer survive a kill) and interleave their row ids. The lock is an
advisory lock on `<directory>/writer.lock` (`flock`; `msvcrt.locking` on Windows): it is
released when the file is closed or the process ends, `kill -9` included, so a store that
died never leaves a stale lock behind. The file holds the holder's process id, to name it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

LOCK_NAME = "writer.lock"

try:
    import fcntl

    def _try_lock(handle: BinaryIO) -> None:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

except ImportError:  # Windows
    import msvcrt

    def _try_lock(handle: BinaryIO) -> None:
        handle.seek(0)
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)


class DirectoryInUse(OSError):
    """Another store (in this process or another) is writing to the directory."""


def lock_directory(directory: Path) -> BinaryIO:
    """Take the directory's writer lock; it is held until the returned file is closed.

    Raises DirectoryInUse, naming the holder's process id where it can be read.
    """
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / LOCK_NAME, "a+b")  # noqa: SIM115 - the open file is the lock
    try:
        _try_lock(handle)
    except OSError:
        holder = _holder(directory / LOCK_NAME)
        handle.close()
        by = f" (process {holder})" if holder else ""
        raise DirectoryInUse(
            f"the data directory {directory.resolve()} is in use by another o11ykit store{by}"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()).encode())
    handle.flush()
    return handle


def _holder(path: Path) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:  # Windows refuses to read a locked byte
        return ""
    return text if text.isdigit() else ""
