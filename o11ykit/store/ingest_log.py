"""The ingest log: accepted requests appended to files before the database holds them.

A receiver answers 200 once a request is in the log, not once SQLite has committed it, so
the writer can commit many requests at a time (a commit costs about as much as the pages
it touches, and requests arriving together touch many of the same ones). A store that is
killed loses nothing it acknowledged: at the next start the writer applies what the log
holds beyond the position recorded in the database with the last commit.

The log is a directory of segments, `<store>/ingest-log/<number>.log`, each a run of
records: an 8-byte header (payload length, CRC-32 of the payload, little-endian) and the
payload, an OTLP ExportTraceServiceRequest as protobuf. A segment whose records are all in
the database is deleted. A record cut short (the process killed mid-append) ends its
segment; replay stops there and the segment is cut back to its last whole record.

The data reaches the operating system with each append, so it survives the store process
dying; like SQLite in WAL mode with synchronous=NORMAL, a power cut may lose the last
moments.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, NamedTuple

LOG_DIRECTORY = "ingest-log"
# A new segment once the current one is this large; the writer deletes applied ones.
SEGMENT_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct("<II")
_SUFFIX = ".log"


class LogPosition(NamedTuple):
    """Just past a record: its segment's number and the byte offset where the record ends."""

    segment: int
    offset: int


class IngestLog:
    """Appends records and replays those past a position. Not thread-safe: callers lock."""

    def __init__(
        self,
        store_directory: str | Path,
        segment_bytes: int = SEGMENT_BYTES,
        newer_than: int = 0,
    ) -> None:
        """`newer_than`: the segment the database's position names. Appends go to a segment
        numbered past it even when the directory lost its segments (deleted, or not copied
        with the database): replay skips segments older than the position, and would skip
        records appended to a reused lower number."""
        self.directory = Path(store_directory) / LOG_DIRECTORY
        self.directory.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        segments = self.segments()
        self._segment = max(segments[-1] if segments else 0, newer_than) + 1
        self._file = self._open(self._segment)
        self._offset = 0

    @property
    def current_segment(self) -> int:
        """The segment appended to; every older one holds records from before."""
        return self._segment

    def segments(self) -> list[int]:
        """Numbers of the segments on disk, oldest first."""
        return sorted(
            int(path.stem) for path in self.directory.glob(f"*{_SUFFIX}") if path.stem.isdigit()
        )

    def append(self, payload: bytes) -> LogPosition:
        """Write one record in one system call; returns the position just past it."""
        if self._offset >= self.segment_bytes:
            self._next_segment()
        record = _HEADER.pack(len(payload), zlib.crc32(payload)) + payload
        written = os.write(self._file.fileno(), record)
        if written != len(record):  # a full disk: what was written is a torn record
            try:
                os.ftruncate(self._file.fileno(), self._offset)
            except OSError:
                # The torn record stays and ends this segment for replay (which cuts it
                # off): later records must go to another, or replay would stop before them.
                self._next_segment()
            raise OSError(f"the ingest log took {written} of {len(record)} bytes")
        self._offset += written
        return LogPosition(self._segment, self._offset)

    def _next_segment(self) -> None:
        # Opened before the old one is closed: if it cannot be (OSError), nothing changed.
        following = self._open(self._segment + 1)
        self._file.close()
        self._segment += 1
        self._file = following
        self._offset = 0

    def replay(self, after: LogPosition) -> Iterator[tuple[bytes, LogPosition]]:
        """Each record past `after` with the position just past it, in order.

        Only segments older than the one this log appends to: call it before appending.
        """
        for segment in self.segments():
            if segment < after.segment or segment >= self._segment:
                continue
            start = after.offset if segment == after.segment else 0
            yield from self._records(segment, start)

    def discard_before(self, segment: int) -> None:
        """Delete the segments older than `segment`: everything in them is in the database."""
        for number in self.segments():
            if number < segment and number != self._segment:
                self._path(number).unlink(missing_ok=True)

    def close(self) -> None:
        self._file.close()

    def _records(self, segment: int, start: int) -> Iterator[tuple[bytes, LogPosition]]:
        path = self._path(segment)
        with path.open("rb") as file:
            file.seek(start)
            offset = start
            while header := file.read(_HEADER.size):
                if len(header) < _HEADER.size:
                    break
                length, crc = _HEADER.unpack(header)
                payload = file.read(length)
                if len(payload) < length or zlib.crc32(payload) != crc:
                    break
                offset += _HEADER.size + length
                yield payload, LogPosition(segment, offset)
        if path.stat().st_size > offset:  # a torn record at the end: cut it off
            os.truncate(path, offset)

    def _path(self, segment: int) -> Path:
        return self.directory / f"{segment:08d}{_SUFFIX}"

    def _open(self, segment: int) -> BinaryIO:
        return self._path(segment).open("ab", buffering=0)
