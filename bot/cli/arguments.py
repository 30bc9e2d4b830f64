"""Every subcommand of ``leadtrail`` and its options, in one parser that imports nothing heavy: the
commands themselves are imported only when they run (``bot.cli.main``)."""

from __future__ import annotations

import argparse
from datetime import datetime

JOBS = ("daily-report", "alerts", "retention", "identities")
EXPORT_FORMATS = ("csv", "xlsx", "parquet")


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"bad moment {text!r}: expected ISO 8601 like 2025-03-15T14:00 or 2025-03-15T14:00+03:00"
        ) from None


def _with_config(parser: argparse.ArgumentParser, *, nested: bool = False) -> argparse.ArgumentParser:
    """``--config`` on a command; a nested action's has no default of its own, so a ``--config`` given
    before the action (on its parent, which carries the default) is not overwritten."""
    default = argparse.SUPPRESS if nested else None
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=default,
        help="config file (default: $LEADTRAIL_CONFIG, else built-in defaults)",
    )
    return parser


def _period_arguments(parser: argparse.ArgumentParser) -> None:
    """--from/--to, --period and --location: the commands that read a period (report, export)."""
    parser.add_argument("--from", dest="date_from", metavar="YYYY-MM-DD", help="first day (with --to)")
    parser.add_argument("--to", dest="date_to", metavar="YYYY-MM-DD", help="last day, included")
    parser.add_argument(
        "--period",
        metavar="P",
        help="today | yesterday | 7d | 30d | month (7d, 30d and month include today); "
        "default: yesterday and the 7 days before",
    )
    parser.add_argument("--location", metavar="NAME", help="only events of this location")


def _now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--now",
        type=_moment,
        metavar="ISO",
        help="the moment to evaluate at (default: now; naive = timezone)",
    )


def _json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadtrail", description="LeadTrail: the audit log of your AI assistant."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        return _with_config(commands.add_parser(name, help=help_text))

    command("run", "run the bot and the HTTP ingest")

    demo = command("demo", "offline showcase on a local SQLite file")
    demo.add_argument("--out", default="leadtrail-demo", help="folder for the demo database and files")
    demo.add_argument("--days", type=int, default=30, help="how many days of data to generate")
    demo.add_argument("--seed", type=int, default=2025, help="random seed, for the same data every time")

    command("ingest", "bulk import of an NDJSON file ('-' for stdin)").add_argument("file")

    client = command(
        "client",
        "a client's timeline by user_id, crm_id, lead_id or phone; "
        "'client unlink USER_ID' takes that user id out of its client",
    )
    client.add_argument("id", help="the client's user_id, crm_id, lead_id or phone; or 'unlink'")
    client.add_argument("user_id", nargs="?", help="with 'unlink': the user id to take out of its client")
    _json(client)

    _json(command("identities", "crm ids, lead ids and phones shared too widely to link clients"))

    report = command("report", "the report's numbers for a period")
    _period_arguments(report)
    _json(report)

    forget = command("forget", "erase one client on request, now")
    forget.add_argument("id", help="the client's user_id, crm_id, lead_id or phone")
    forget.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    anonymize = command("anonymize", "anonymise old events (152-FZ)")
    anonymize.add_argument("--dry-run", action="store_true", help="count what would change, change nothing")
    anonymize.add_argument(
        "--before",
        metavar="YYYY-MM-DD",
        help="anonymise events before this local day (default: older than retention.days)",
    )

    alerts = command("alerts", "evaluate the alert rules").add_subparsers(
        dest="alerts_action", required=True, metavar="ACTION"
    )
    check = _with_config(
        alerts.add_parser("check", help="evaluate every rule without sending; print what would fire"),
        nested=True,
    )
    _now(check)
    _json(check)

    followup = command("followup", "who to answer and call today: the four follow-up lists")
    _now(followup)
    followup.add_argument("--location", metavar="NAME", help="only clients put on a list by this location")
    _json(followup)

    jobs = command("jobs", "run a scheduled job now").add_subparsers(
        dest="jobs_action", required=True, metavar="ACTION"
    )
    _with_config(jobs.add_parser("run", help="run one scheduled job now"), nested=True).add_argument(
        "job", choices=JOBS
    )

    export = command("export", "every event of a period to CSV, XLSX or Parquet")
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, help="file format (default: from the --out file's extension)"
    )
    export.add_argument("--out", required=True, metavar="FILE", help="file to write (replaced if it exists)")
    _period_arguments(export)

    quarantine = command("quarantine", "recently rejected payloads and why")
    quarantine.add_argument("--limit", type=int, default=20)
    _json(quarantine)

    doctor = command("doctor", "check the setup and say what to fix")
    doctor.add_argument(
        "--online", action="store_true", help="also ask the Bot API who the bot is (getMe); off by default"
    )
    return parser
