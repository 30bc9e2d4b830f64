"""The ``leadtrail`` command. Each subcommand is a small function that imports its module only when it
runs, so the database-only commands start fast and never load Telegram or the charts."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from bot.cli.arguments import build_parser
from bot.cli.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, CommandFailed
from bot.settings import ConfigError, Settings, load_settings

Command = Callable[[argparse.Namespace, Settings], int]


def _configure_logging(level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)


def _quiet(coro: Coroutine[Any, Any, int | None]) -> int:
    """A database command: only warnings in the log, the command's own output on stdout."""
    _configure_logging(logging.WARNING)
    return asyncio.run(coro) or EXIT_OK


def run(args: argparse.Namespace, settings: Settings) -> int:
    from bot.runtime.service import run_until_signal

    _configure_logging()
    if settings.telegram.token is None:
        logging.getLogger("leadtrail").warning(
            "telegram.token is not set: the bot is off, only HTTP ingest runs (set it to talk to owners)"
        )
    return asyncio.run(run_until_signal(settings)) or EXIT_OK


def demo(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.demo import run_demo

    return _quiet(run_demo(settings, args))


def ingest(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.ingest_file import ingest_file

    return _quiet(ingest_file(settings, args))


def client(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.client import client_command

    return _quiet(client_command(settings, args))


def identities(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.identities import show_shared_values

    return _quiet(show_shared_values(settings, args))


def report(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.report import show_report

    return _quiet(show_report(settings, args))


def forget(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.privacy import run_forget

    return _quiet(run_forget(settings, args))


def anonymize(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.privacy import run_anonymize

    return _quiet(run_anonymize(settings, args))


def alerts(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.alerts import run_alerts_command

    return _quiet(run_alerts_command(settings, args))


def followup(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.followup import show_followup

    return _quiet(show_followup(settings, args))


def jobs(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.jobs import run_job

    return _quiet(run_job(settings, args))


def export(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.export import run_export

    return _quiet(run_export(settings, args))


def quarantine(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.quarantine import show_quarantine

    return _quiet(show_quarantine(settings, args))


def doctor(args: argparse.Namespace, settings: Settings) -> int:
    from bot.cli.doctor import run_doctor

    return _quiet(run_doctor(settings, args))


def doctor_without_config(args: argparse.Namespace, error: ConfigError) -> int:
    """The doctor reports a config that does not load as its own finding, not as exit 2."""
    from bot.cli.doctor import config_failed

    return config_failed(args, error)


COMMANDS: dict[str, Command] = {
    "run": run,
    "demo": demo,
    "ingest": ingest,
    "client": client,
    "identities": identities,
    "report": report,
    "forget": forget,
    "anonymize": anonymize,
    "alerts": alerts,
    "followup": followup,
    "jobs": jobs,
    "export": export,
    "quarantine": quarantine,
    "doctor": doctor,
}
CONFIG_ERROR_REPORTERS: dict[str, Callable[[argparse.Namespace, ConfigError], int]] = {
    "doctor": doctor_without_config
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = load_settings(args.config)
        return COMMANDS[args.command](args, settings)
    except ConfigError as exc:
        if (reporter := CONFIG_ERROR_REPORTERS.get(args.command)) is not None:
            return reporter(args, exc)
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except CommandFailed as exc:
        print(f"leadtrail: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
