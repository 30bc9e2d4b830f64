"""One export: stream a period's events from storage into a file, never half-written.

The database is read on the event loop (async, chunk by chunk); converting and writing each chunk runs
in a worker thread, so a bot exporting a month keeps answering other owners meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.export.columns import local_values
from bot.export.writers import ExportWriter, open_writer
from reports.periods import Period
from storage.database import Database
from storage.export_queries import EXPORT_CHUNK_ROWS, stream_events


class ExportTooBig(Exception):
    """The file would exceed the size asked for (e.g. what Telegram accepts); nothing is left on disk."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    events: int
    size_bytes: int


def _write_chunk(writer: ExportWriter, chunk: list[dict[str, object]], zone: ZoneInfo) -> int | None:
    writer.write([local_values(row, zone) for row in chunk])
    return writer.written_bytes()


def _finish(writer: ExportWriter, partial: Path, out: Path, max_bytes: int | None) -> int:
    writer.close()
    size = partial.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise ExportTooBig(f"{size} bytes")
    os.replace(partial, out)
    return size


def _discard(writer: ExportWriter, partial: Path) -> None:
    writer.abort()
    partial.unlink(missing_ok=True)


async def export_events(
    db: Database,
    zone: ZoneInfo,
    period: Period,
    fmt: str,
    out: Path,
    *,
    location: str | None = None,
    chunk_rows: int = EXPORT_CHUNK_ROWS,
    max_bytes: int | None = None,
) -> ExportResult:
    """Write every event of ``period`` (local days in ``zone``) to ``out`` in ``fmt``, ordered by time.

    The file is built beside ``out`` and renamed into place only when complete, so a failure (or a
    cancelled export) leaves no truncated file behind and never replaces a good one. Over ``max_bytes``
    it raises ExportTooBig: CSV and Parquet stop as soon as they pass it, XLSX (compressed only at the
    end) when it is saved.
    """
    start, end = period.utc_bounds(zone)
    partial = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.part")
    writer = await asyncio.to_thread(open_writer, fmt, partial, zone)
    events = 0
    chunks = stream_events(db, start, end, location=location, chunk_rows=chunk_rows)
    try:
        async with aclosing(chunks):
            async for chunk in chunks:
                written = await asyncio.to_thread(_write_chunk, writer, chunk, zone)
                events += len(chunk)
                if max_bytes is not None and written is not None and written > max_bytes:
                    raise ExportTooBig(f"over {max_bytes} bytes after {events} events")
        size = await asyncio.to_thread(_finish, writer, partial, out, max_bytes)
    except BaseException:
        # Synchronous on purpose: it must run even when the task is being cancelled.
        _discard(writer, partial)
        raise
    return ExportResult(events=events, size_bytes=size)
