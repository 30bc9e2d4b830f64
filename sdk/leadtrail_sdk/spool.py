"""Files the client keeps on disk: the spool (events not yet acknowledged) and the dead-letter file.

Both are plain NDJSON so an operator can read them with ``jq``. All methods are blocking and
thread-safe: the client calls them through ``asyncio.to_thread`` so a slow disk never stalls the bot's
event loop, and a write still running when the caller is cancelled finishes under the same lock.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from leadtrail_sdk.stamps import utc_now_iso

SEGMENT_BYTES = 4 * 1024 * 1024
_SEGMENT_NAME = re.compile(r"^spool\.(\d{6,})\.ndjson$")
_CURSOR_NAME = "spool.cursor"
DEAD_LETTER_NAME = "dead-letter.ndjson"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    """A new file's name is durable only once its directory is synced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """Append-only segments ``spool.NNNNNN.ndjson`` read oldest first from a persisted cursor.

    One line is one encoded event. Appends are fsync'd before they count as spooled; segments rotate at
    ``segment_bytes`` and are deleted once fully acknowledged, so the directory holds only the backlog.
    The cursor (segment, byte offset) is rewritten atomically after every acknowledged batch; a crash
    between an acknowledgement and that rewrite replays one batch, which the collector dedupes by
    ``event_id``. One spool directory belongs to one client at a time.
    """

    def __init__(self, directory: Path, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.directory = directory
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        directory.mkdir(parents=True, exist_ok=True)
        self._segments = sorted(
            int(match.group(1)) for path in directory.iterdir() if (match := _SEGMENT_NAME.match(path.name))
        )
        self._last_segment = self._segments[-1] if self._segments else 0
        self._offset = self._read_cursor()
        self.torn_tail = self._repair_tail()
        self._pending = self._count_pending()

    @property
    def pending(self) -> int:
        """Events in the spool that the collector has not acknowledged."""
        return self._pending

    def append(self, lines: Sequence[bytes]) -> None:
        """Durably add events at the tail (newest end)."""
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            if not self._segments or self._size(self._segments[-1]) >= self.segment_bytes:
                self._last_segment += 1
                self._segments.append(self._last_segment)
                created = True
            else:
                created = False
            fd = os.open(self._path(self._segments[-1]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_directory(self.directory)
            self._pending += len(lines)

    def peek(self, max_lines: int, max_bytes: int) -> list[bytes]:
        """The oldest unacknowledged events (at least one if any, never across a segment boundary)."""
        with self._lock:
            while self._segments:
                lines: list[bytes] = []
                size = 0
                with open(self._path(self._segments[0]), "rb") as segment:
                    segment.seek(self._offset)
                    while len(lines) < max_lines:
                        line = segment.readline()
                        if not line.endswith(b"\n") or (lines and size + len(line) > max_bytes):
                            break
                        lines.append(line[:-1])
                        size += len(line)
                if lines:
                    return lines
                if len(self._segments) == 1:
                    break
                self._drop_head()
            self._pending = 0  # nothing readable is left, whatever the count said
            return []

    def consume(self, lines: Sequence[bytes]) -> None:
        """Mark the events returned by the last :meth:`peek` as acknowledged."""
        with self._lock:
            self._offset += sum(len(line) + 1 for line in lines)
            self._pending -= len(lines)
            if self._offset >= self._size(self._segments[0]):
                self._drop_head()
            else:
                self._save_cursor()

    def _drop_head(self) -> None:
        self._path(self._segments.pop(0)).unlink(missing_ok=True)
        self._offset = 0
        self._save_cursor()

    def _path(self, segment: int) -> Path:
        return self.directory / f"spool.{segment:06d}.ndjson"

    def _size(self, segment: int) -> int:
        try:
            return self._path(segment).stat().st_size
        except FileNotFoundError:
            return 0

    def _save_cursor(self) -> None:
        head = self._segments[0] if self._segments else self._last_segment + 1
        temporary = self.directory / (_CURSOR_NAME + ".tmp")
        temporary.write_text(json.dumps({"segment": head, "offset": self._offset}), encoding="utf-8")
        os.replace(temporary, self.directory / _CURSOR_NAME)

    def _read_cursor(self) -> int:
        """The offset into the head segment; segments the cursor has passed are leftovers of a crash."""
        try:
            cursor = json.loads((self.directory / _CURSOR_NAME).read_text(encoding="utf-8"))
            segment, offset = int(cursor["segment"]), int(cursor["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return 0
        # New segments must be numbered past the cursor, or the next open would take them for consumed.
        self._last_segment = max(self._last_segment, segment - 1)
        while self._segments and self._segments[0] < segment:
            self._path(self._segments.pop(0)).unlink(missing_ok=True)
        if self._segments and self._segments[0] == segment:
            return max(0, min(offset, self._size(segment)))
        return 0

    def _repair_tail(self) -> bytes:
        """Cut a half-written last line (a crash mid-append) so new lines do not glue onto it."""
        if not self._segments:
            return b""
        path = self._path(self._segments[-1])
        data = path.read_bytes()
        keep = data.rfind(b"\n") + 1
        if keep == len(data):
            return b""
        with open(path, "r+b") as segment:
            segment.truncate(keep)
            segment.flush()
            os.fsync(segment.fileno())
        if len(self._segments) == 1:
            self._offset = min(self._offset, keep)
        return data[keep:]

    def _count_pending(self) -> int:
        total = 0
        for index, segment in enumerate(self._segments):
            with open(self._path(segment), "rb") as file:
                if index == 0:
                    file.seek(self._offset)
                while chunk := file.read(1024 * 1024):
                    total += chunk.count(b"\n")
        return total


class DeadLetterFile:
    """Events the collector rejected for good, with its reasons: kept for a human, never retried."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, entries: Sequence[tuple[Any, list[dict[str, Any]]]]) -> None:
        """One line per event: ``{"event": ..., "errors": [...], "at": iso}``."""
        at = utc_now_iso()
        data = b"".join(
            json.dumps({"event": event, "errors": errors, "at": at}, ensure_ascii=False).encode() + b"\n"
            for event, errors in entries
        )
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                _write_all(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
