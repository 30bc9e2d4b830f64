"""``leadtrail export``: every event of a period to a CSV, XLSX or Parquet file, streamed."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.arguments import EXPORT_FORMATS
from bot.cli.common import opened_database
from bot.cli.errors import EXIT_USAGE, CommandFailed
from bot.cli.report import check_location, chosen_period
from bot.export.service import export_events
from bot.settings import Settings


def chosen_format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".")
    if suffix in EXPORT_FORMATS:
        return suffix
    raise ValueError(f"--format is missing and --out {args.out!r} does not end in .csv, .xlsx or .parquet")


def _output_path(raw: str) -> Path:
    out = Path(raw).expanduser()
    if out.is_dir():
        raise ValueError(f"--out {raw!r} is a folder; name a file in it")
    if not out.resolve().parent.is_dir():
        raise ValueError(f"--out {raw!r}: folder {str(out.resolve().parent)!r} does not exist")
    return out


async def run_export(settings: Settings, args: argparse.Namespace) -> int:
    """Write the file and print one line; 2 for wrong arguments, CommandFailed when storage or disk fails."""
    try:
        period = chosen_period(args, datetime.now(UTC), settings)
        check_location(args)
        fmt = chosen_format(args)
        out = _output_path(args.out)
    except ValueError as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    async with opened_database(settings) as db:
        try:
            result = await export_events(db, settings.tz, period, fmt, out, location=args.location)
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot read events from the database: {type(exc).__name__}") from None
        except OSError as exc:
            raise CommandFailed(f"cannot write {str(out)!r}: {exc.strerror or exc}") from None
    print(
        f"exported {result.events} events ({period.start_local}..{period.end_local}) "
        f"to {out} ({result.size_bytes} bytes)"
    )
    return 0
