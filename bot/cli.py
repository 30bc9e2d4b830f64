"""The ``leadtrail`` command. Heavy imports happen inside each command, so the database-only commands
start fast and never touch Telegram."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.settings import ConfigError, Settings, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class CommandFailed(Exception):
    """A command could not do its job; the message is the one line the user sees."""


def _with_config(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument(
        "--config", metavar="FILE", help="config file (default: $LEADTRAIL_CONFIG, else built-in defaults)"
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leadtrail", description="LeadTrail: the audit log of your AI assistant."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    _with_config(commands.add_parser("run", help="run the bot and the HTTP ingest"))

    demo = _with_config(commands.add_parser("demo", help="offline showcase on a local SQLite file"))
    demo.add_argument("--out", default="leadtrail-demo", help="folder for the demo database and files")
    demo.add_argument("--days", type=int, default=30, help="how many days of data to generate")
    demo.add_argument("--seed", type=int, default=2025, help="random seed, for the same data every time")

    ingest = _with_config(commands.add_parser("ingest", help="bulk import of an NDJSON file ('-' for stdin)"))
    ingest.add_argument("file")

    client = _with_config(
        commands.add_parser("client", help="a client's timeline by user_id, crm_id, lead_id or phone")
    )
    client.add_argument("id")
    client.add_argument("--json", action="store_true", help="print JSON instead of text")

    from bot.commands.report import add_report_arguments

    report = _with_config(commands.add_parser("report", help="the report's numbers for a period"))
    add_report_arguments(report)

    from bot.commands.privacy import add_anonymize_arguments, add_forget_arguments

    add_forget_arguments(_with_config(commands.add_parser("forget", help="erase one client on request, now")))
    add_anonymize_arguments(
        _with_config(commands.add_parser("anonymize", help="anonymise old events (152-FZ)"))
    )

    from bot.commands.alerts import add_alerts_arguments

    add_alerts_arguments(_with_config(commands.add_parser("alerts", help="evaluate the alert rules")))

    from bot.commands.jobs import add_jobs_arguments

    add_jobs_arguments(_with_config(commands.add_parser("jobs", help="run a scheduled job now")))

    from bot.commands.export import add_export_arguments

    add_export_arguments(
        _with_config(commands.add_parser("export", help="every event of a period to CSV, XLSX or Parquet"))
    )

    quarantine = _with_config(commands.add_parser("quarantine", help="recently rejected payloads and why"))
    quarantine.add_argument("--limit", type=int, default=20)
    quarantine.add_argument("--json", action="store_true", help="print JSON instead of text")

    from bot.commands.doctor import add_doctor_arguments

    doctor = _with_config(commands.add_parser("doctor", help="check the setup and say what to fix"))
    add_doctor_arguments(doctor)
    return parser


def _configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    return asyncio.run(coro) or EXIT_OK


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.service import run_until_signal

    _configure_logging()
    if settings.telegram.token is None:
        logging.getLogger("leadtrail").warning(
            "telegram.token is not set: the bot is off, only HTTP ingest runs (set it to talk to owners)"
        )
    return _run(run_until_signal(settings))


# Database commands: "module:function" taking (settings, args), imported only when that command runs.
_QUIET_COMMANDS = {
    "demo": "bot.demo.runner:run_demo",
    "ingest": "bot.commands.ingest_file:ingest_file",
    "client": "bot.commands.client:show_client",
    "report": "bot.commands.report:show_report",
    "forget": "bot.commands.privacy:run_forget",
    "anonymize": "bot.commands.privacy:run_anonymize",
    "alerts": "bot.commands.alerts:run_alerts_command",
    "jobs": "bot.commands.jobs:run_job",
    "quarantine": "bot.commands.quarantine:show_quarantine",
    "doctor": "bot.commands.doctor:run_doctor",
    "export": "bot.commands.export:run_export",
}

# Commands that report a config which does not load as their own finding (taking (args, error)), not exit 2.
_CONFIG_ERROR_REPORTERS = {"doctor": "bot.commands.doctor:config_failed"}


def _quiet_command(target: str) -> Callable[[argparse.Namespace, Settings], int]:
    module, name = target.split(":")

    def command(args: argparse.Namespace, settings: Settings) -> int:
        function = getattr(importlib.import_module(module), name)
        _configure_logging(logging.WARNING)
        return _run(function(settings, args))

    return command


COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "run": cmd_run,
    **{name: _quiet_command(target) for name, target in _QUIET_COMMANDS.items()},
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        if (reporter := _CONFIG_ERROR_REPORTERS.get(args.command)) is not None:
            module, name = reporter.split(":")
            return int(getattr(importlib.import_module(module), name)(args, exc))
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
