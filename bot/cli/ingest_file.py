"""``leadtrail ingest FILE``: NDJSON bulk import through the same validation and writer as HTTP."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from itertools import islice
from typing import BinaryIO

from bot.cli.common import opened_database
from bot.cli.errors import CommandFailed
from bot.ingestion.payloads import parse_ndjson_lines
from bot.ingestion.pipeline import ingest_items
from bot.runtime.service import create_writer
from bot.settings import Settings
from reports.texts import cli as texts
from reports.texts.numbers import NONE

CHUNK_LINES = 5000
MAX_LISTED_ERRORS = 100


def _chunks(stream: BinaryIO) -> Iterator[list[bytes]]:
    while chunk := list(islice(stream, CHUNK_LINES)):
        yield chunk


def _open(path: str) -> BinaryIO:
    if path == "-":
        return sys.stdin.buffer
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CommandFailed(f"cannot read {path}: {exc.strerror}") from None


async def ingest_file(settings: Settings, args: argparse.Namespace) -> int:
    path: str = args.file
    stream = _open(path)
    accepted = duplicates = rejected = 0
    listed = 0
    first_line = 1
    async with opened_database(settings) as db:
        writer = create_writer(settings, db)
        await writer.start()
        try:
            for lines in _chunks(stream):
                parsed = parse_ndjson_lines(lines, first_line)
                first_line += len(lines)
                outcome = await ingest_items(
                    parsed.items,
                    writer,
                    settings.tz,
                    source=f"file:{path}"[:64],
                    prices=settings.ai.price_table(),
                )
                accepted += outcome.accepted
                duplicates += outcome.duplicates
                rejected += outcome.rejected
                for error in outcome.errors:
                    if listed < MAX_LISTED_ERRORS:
                        line = parsed.line_numbers[error.index]
                        print(
                            texts.INGEST_LINE_ERROR.format(
                                line=line, field=error.field or NONE, message=error.message
                            ),
                            file=sys.stderr,
                        )
                    listed += 1
        finally:
            await writer.close()
            if stream is not sys.stdin.buffer:
                stream.close()
    if listed > MAX_LISTED_ERRORS:
        print(texts.INGEST_MORE_ERRORS.format(count=listed - MAX_LISTED_ERRORS), file=sys.stderr)
    print(texts.INGEST_SUMMARY.format(accepted=accepted, duplicates=duplicates, rejected=rejected))
    if rejected:
        raise CommandFailed(f"{rejected} lines rejected (kept in quarantine, see leadtrail quarantine)")
    return 0
