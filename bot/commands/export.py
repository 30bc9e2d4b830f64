"""``leadtrail export``: every event of a period to a CSV, XLSX or Parquet file, streamed."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.cli import EXIT_USAGE, CommandFailed
from bot.commands.report import add_period_arguments, check_location, chosen_period
from bot.settings import Settings

# Kept here (not imported from bot.export.writers) so building the parser imports nothing heavy.
FORMAT_CHOICES = ("csv", "xlsx", "parquet")


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMAT_CHOICES, help="file format (default: from the --out file's extension)"
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="file to write (replaced if it exists)")
    add_period_arguments(parser)


def chosen_format(args: argparse.Namespace) -> str:
    if args.format is not None:
        return str(args.format)
    suffix = Path(args.out).suffix.lower().lstrip(".")
    if suffix in FORMAT_CHOICES:
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
    from sqlalchemy.exc import SQLAlchemyError

    from bot.commands.common import opened_database
    from bot.export.service import export_events

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
