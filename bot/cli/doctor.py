"""``leadtrail doctor [--online]``: prints one line per check (✅/⚠️/❌) with what to fix; exit 1 on any ❌."""

from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path

from bot.cli.doctor_checks import (
    Finding,
    Level,
    check_bot_api,
    check_database,
    check_model_calls,
    check_shared_values,
    check_yclients_sync,
    offline_checks,
)
from bot.cli.doctor_checks import config_failed as config_not_loaded
from bot.settings import CONFIG_ENV_VAR, ConfigError, Settings
from reports.texts import doctor as texts


def _config_path(args: argparse.Namespace) -> Path | None:
    chosen = getattr(args, "config", None) or os.environ.get(CONFIG_ENV_VAR)
    return Path(chosen) if chosen else None


def _print(findings: list[Finding]) -> int:
    for finding in findings:
        print(finding.line())
    failed = sum(finding.level is Level.FAIL for finding in findings)
    warned = sum(finding.level is Level.WARN for finding in findings)
    print(texts.SUMMARY.format(failed=failed, warned=warned))
    return 1 if failed else 0


async def run_doctor(settings: Settings, args: argparse.Namespace) -> int:
    path = _config_path(args)
    # The file already loaded and validated; read again only to see which secrets it holds.
    data = tomllib.loads(path.read_text(encoding="utf-8")) if path is not None else {}
    findings = offline_checks(settings, path, data)
    database = await check_database(settings)
    findings.append(database)
    if database.level is Level.OK:
        findings += await check_model_calls(settings)
        findings.append(await check_shared_values(settings))
        findings += await check_yclients_sync(settings)
    if args.online:
        findings.append(await check_bot_api(settings))
    return _print(findings)


def config_failed(args: argparse.Namespace, error: ConfigError) -> int:
    """The config does not load: that is the doctor's first finding, not a usage error."""
    reason = str(error).removeprefix("config: ")
    return _print([config_not_loaded(_config_path(args), reason)])
