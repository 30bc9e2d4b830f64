"""The checks behind ``leadtrail doctor``: one finding per check, with what to fix, never a secret's value.

Most checks are pure functions of the settings and the file system; the database check connects once
and changes nothing (no migration, no new SQLite file), and the Bot API is asked only when told to.
"""

from __future__ import annotations

import asyncio
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.retention_key import key_file
from bot.settings import Settings
from reports.texts import doctor as texts
from reports.texts import identities as identity_texts
from reports.texts import yclients as yclients_texts
from reports.texts.numbers import NONE, format_local

MIN_INGEST_TOKEN_CHARS = 20
_SECRET_KEYS = frozenset({"token", "tokens", "password", "hash_secret", "secret", "webhook_url"})
_SECRET_SUFFIXES = ("_token", "_tokens", "_secret", "_password")
_PATH_SUFFIXES = ("_dir", "_directory", "_path", "_file")


class Level(Enum):
    OK = "✅"
    WARN = "⚠️"
    FAIL = "❌"


@dataclass(frozen=True)
class Finding:
    level: Level
    key: str
    text: str

    def line(self) -> str:
        return f"{self.level.value} {self.key}: {self.text}"


def ok(key: str, text: str) -> Finding:
    return Finding(Level.OK, key, text)


def warn(key: str, text: str) -> Finding:
    return Finding(Level.WARN, key, text)


def fail(key: str, text: str) -> Finding:
    return Finding(Level.FAIL, key, text)


def check_config_loaded(path: Path | None) -> Finding:
    if path is None:
        return ok("config", texts.CONFIG_DEFAULTS)
    return ok("config", texts.CONFIG_READ.format(path=path))


def config_failed(path: Path | None, reason: str) -> Finding:
    where = texts.CONFIG_FILE.format(path=path) if path is not None else texts.CONFIG_ENV
    return fail("config", texts.CONFIG_FAILED.format(where=where, reason=reason))


def _is_secret(name: str, key: str, value: Any) -> bool:
    if key in _SECRET_KEYS or key.endswith(_SECRET_SUFFIXES):
        return True
    return name == "database.url" and isinstance(value, str) and make_url(value).password is not None


def secret_keys_in(data: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted names of the keys in a parsed config file that hold secrets (never their values)."""
    found: list[str] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found += secret_keys_in(value, f"{name}.")
        elif value in (None, "", []):
            continue
        elif _is_secret(name, key, value):
            found.append(name)
    return found


def check_config_permissions(path: Path, data: dict[str, Any]) -> Finding:
    secrets = secret_keys_in(data)
    mode = stat.S_IMODE(path.stat().st_mode)
    if not secrets:
        return ok("config.permissions", texts.PERMISSIONS_NO_SECRETS)
    if mode & 0o077:
        opened = texts.PERMISSIONS_OPEN.format(keys=", ".join(secrets), mode=mode, path=path)
        return warn("config.permissions", opened)
    return ok("config.permissions", texts.PERMISSIONS_OK.format(mode=mode))


def check_telegram_token(settings: Settings) -> Finding:
    # The format was checked when the config loaded; a wrong one never gets this far.
    if settings.telegram.token is None:
        return warn("telegram.token", texts.TOKEN_MISSING)
    return ok("telegram.token", texts.TOKEN_OK)


def check_owners(settings: Settings) -> Finding:
    telegram, email = settings.telegram.owners, settings.email.owners
    if not telegram and not email:
        return fail("telegram.owners", texts.OWNERS_NONE)
    if not telegram:
        return warn("telegram.owners", texts.OWNERS_EMAIL_ONLY.format(count=len(email)))
    if settings.telegram.token is None:
        return warn("telegram.owners", texts.OWNERS_NO_BOT.format(count=len(telegram)))
    return ok("telegram.owners", texts.OWNERS_OK.format(count=len(telegram)))


def check_ingest_tokens(settings: Settings) -> Finding:
    tokens = [token.get_secret_value() for token in settings.ingest.tokens]
    if not tokens:
        return warn("ingest.tokens", texts.INGEST_NONE)
    short = [f"ingest.tokens[{n}]" for n, token in enumerate(tokens) if len(token) < MIN_INGEST_TOKEN_CHARS]
    if short:
        return fail(
            "ingest.tokens", texts.INGEST_SHORT.format(chars=MIN_INGEST_TOKEN_CHARS, keys=", ".join(short))
        )
    return ok("ingest.tokens", texts.INGEST_OK.format(count=len(tokens), chars=MIN_INGEST_TOKEN_CHARS))


def check_hash_secret(settings: Settings) -> Finding:
    """The configured secret, else the key file: where it is (or will be made), and that it is private."""
    if settings.retention.hash_secret is not None:
        return ok("retention.hash_secret", texts.HASH_SECRET_OK)
    path = key_file(settings).path
    if not path.exists():
        if (reason := _writable_location(path)) is not None:
            return fail(
                "retention.hash_secret", texts.KEY_FILE_CANNOT_CREATE.format(path=path, reason=reason)
            )
        return ok("retention.hash_secret", texts.KEY_FILE_LATER.format(path=path))
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return warn("retention.hash_secret", texts.KEY_FILE_OPEN.format(path=path, mode=mode))
    return ok("retention.hash_secret", texts.KEY_FILE_OK.format(path=path))


def check_timezone(settings: Settings, now: datetime | None = None) -> Finding:
    try:
        zone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return fail("timezone", texts.ZONE_UNKNOWN.format(zone=settings.timezone))
    local = (now or datetime.now(UTC)).astimezone(zone)
    return ok("timezone", texts.ZONE_OK.format(zone=settings.timezone, time=f"{local:%H:%M}"))


def _writable_location(path: Path) -> str | None:
    """None when a file can be created at ``path`` (missing folders included); else the reason why not."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            return texts.NO_FOLDER_ON_PATH
        folder = folder.parent
    if not folder.is_dir():
        return texts.NOT_A_FOLDER.format(folder=folder)
    if folder != path.parent:
        return None if _can_create_in(folder) else texts.CANNOT_MAKE_FOLDER.format(folder=folder)
    return None if _can_create_in(folder) else texts.CANNOT_WRITE_FOLDER.format(folder=folder)


def _can_create_in(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def check_sqlite_location(settings: Settings) -> Finding | None:
    url = make_url(settings.database.url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return warn("database.url", texts.SQLITE_IN_MEMORY)
    path = Path(database).expanduser().resolve()
    if path.exists() and not path.is_file():
        return fail("database.url", texts.SQLITE_NOT_A_FILE.format(path=path))
    if (reason := _writable_location(path)) is not None:
        return fail("database.url", texts.SQLITE_CANNOT_CREATE.format(path=path, reason=reason))
    return ok("database.url", texts.SQLITE_OK.format(folder=path.parent))


def _path_settings(settings: Settings) -> Iterator[tuple[str, Path]]:
    """Every configured path (keys ending in _dir, _path, _file): spool, quarantine, demo output."""
    for section_name in type(settings).model_fields:
        section = getattr(settings, section_name)
        if not isinstance(section, BaseModel):
            continue
        for key in type(section).model_fields:
            value = getattr(section, key)
            if key.endswith(_PATH_SUFFIXES) and isinstance(value, str | Path) and str(value):
                yield f"{section_name}.{key}", Path(value).expanduser().resolve()


def check_paths(settings: Settings) -> list[Finding]:
    findings = []
    for key, path in _path_settings(settings):
        target = path / ".leadtrail-doctor" if path.is_dir() or key.endswith(("_dir", "_directory")) else path
        reason = _writable_location(target)
        if reason is None:
            findings.append(ok(key, texts.PATH_OK.format(path=path)))
        else:
            findings.append(fail(key, texts.PATH_FAILED.format(path=path, reason=reason)))
    return findings


def _exists(database: str) -> bool:
    return Path(database).expanduser().exists()


async def check_database(settings: Settings) -> Finding:
    from storage.schema_status import schema_status

    url = make_url(settings.database.url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database not in ("", ":memory:") and not _exists(database):
            return warn("database", texts.DATABASE_NO_FILE.format(path=database))
    try:
        status = await schema_status(settings.database.url)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        unreachable = texts.DATABASE_UNREACHABLE.format(url=shown, error=type(exc).__name__, reason=reason)
        return fail("database", unreachable)
    if not status.known:
        return fail("database", texts.DATABASE_NEWER.format(current=status.current, head=status.head))
    if status.current is None:
        return warn("database", texts.DATABASE_EMPTY)
    if not status.up_to_date:
        return warn("database", texts.DATABASE_OLD.format(current=status.current, head=status.head))
    return ok("database", texts.DATABASE_OK.format(head=status.head))


MODEL_CALL_DAYS = 30


async def check_model_calls(settings: Settings, now: datetime | None = None) -> list[Finding]:
    """Unpriced models and calls no trace named a user for, over the last ``MODEL_CALL_DAYS`` days; only
    on a database whose schema is current (the columns exist)."""
    from storage.model_call_health import model_call_health

    since = (now or datetime.now(UTC)) - timedelta(days=MODEL_CALL_DAYS)
    try:
        health = await model_call_health(settings.database.url, since)
    except (SQLAlchemyError, OSError, TimeoutError):
        return []  # the database check above already said why
    days = MODEL_CALL_DAYS
    if not health.calls:
        return [ok("ai.prices", texts.MODEL_CALLS_NONE.format(days=days))]
    table = settings.ai.price_table()
    if health.unpriced:
        models = ", ".join(
            (texts.UNPRICED_KNOWN if table.knows(model) else texts.UNPRICED_MODEL).format(
                model=model, calls=calls
            )
            for model, calls in health.unpriced
        )
        prices = warn("ai.prices", texts.MODEL_CALLS_UNPRICED.format(days=days, models=models))
    else:
        prices = ok("ai.prices", texts.MODEL_CALLS_PRICED.format(days=days, calls=health.calls))
    if health.unattributed:
        users = warn("ai.unattributed", texts.UNATTRIBUTED_SOME.format(days=days, count=health.unattributed))
    else:
        users = ok("ai.unattributed", texts.UNATTRIBUTED_NONE.format(days=days))
    return [prices, users]


async def check_shared_values(settings: Settings) -> Finding:
    """The values that stopped linking (read only; asked when the database answered and is up to date)."""
    from storage.shared_identities import read_shared_values

    try:
        values = await read_shared_values(settings.database.url)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        return warn("identity", identity_texts.DOCTOR_UNREAD.format(error=type(exc).__name__))
    limit = settings.identity.max_users_per_value
    if not values:
        return ok("identity", identity_texts.DOCTOR_NONE)
    return warn("identity", identity_texts.doctor_summary(values, limit, settings.tz))


async def check_bot_api(settings: Settings, timeout: float = 15.0) -> Finding:  # noqa: ASYNC109
    """``getMe`` against the configured Bot API server: only with ``--online``."""
    if settings.telegram.token is None:
        return warn("telegram.api_server", texts.BOT_API_SKIPPED)
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

    from bot.runtime.telegram_link import create_bot

    bot = create_bot(settings)
    server = settings.telegram.api_server
    try:
        me = await asyncio.wait_for(bot.get_me(), timeout)
    except TelegramUnauthorizedError:
        return fail("telegram.token", texts.BOT_API_REFUSED)
    except (TelegramNetworkError, OSError, TimeoutError) as exc:
        return fail(
            "telegram.api_server", texts.BOT_API_UNREACHABLE.format(server=server, error=type(exc).__name__)
        )
    except TelegramAPIError as exc:
        return fail("telegram.api_server", texts.BOT_API_ERROR.format(server=server, message=exc.message))
    finally:
        await bot.session.close()
    return ok("telegram.api_server", texts.BOT_API_OK.format(server=server, username=me.username))


def check_yclients(settings: Settings) -> Finding:
    config = settings.yclients
    api_keys = (config.partner_token, config.user_token, config.company_ids)
    if config.sync_enabled:
        return ok("yclients", yclients_texts.DOCTOR_ON.format(count=len(config.company_ids)))
    if any(api_keys):
        return warn("yclients", yclients_texts.DOCTOR_PARTIAL)
    if config.webhook_token is not None:
        return ok("yclients", yclients_texts.DOCTOR_WEBHOOK_ONLY)
    return ok("yclients", yclients_texts.DOCTOR_OFF)


async def check_yclients_sync(settings: Settings) -> list[Finding]:
    """The last reconciliation of each company, when it failed (read without changing anything)."""
    from storage.database import open_database
    from storage.yclients import link_status

    if not settings.yclients.sync_enabled:
        return []
    try:
        db = await open_database(settings.database.url, apply_migrations=False)
        try:
            async with db.sessions() as session:
                links = await link_status(session)
        finally:
            await db.close()
    except (SQLAlchemyError, OSError):
        return []  # the database check says why
    return [
        warn(
            "yclients",
            yclients_texts.DOCTOR_SYNC_FAILED.format(
                company=link.company_id,
                when=format_local(link.last_sync_at, settings.tz) if link.last_sync_at else NONE,
                error=link.last_error,
            ),
        )
        for link in links
        if link.last_error
    ]


def offline_checks(settings: Settings, config_path: Path | None, data: dict[str, Any]) -> list[Finding]:
    findings = [check_config_loaded(config_path)]
    if config_path is not None:
        findings.append(check_config_permissions(config_path, data))
    findings += [
        check_telegram_token(settings),
        check_owners(settings),
        check_ingest_tokens(settings),
        check_hash_secret(settings),
        check_timezone(settings),
        check_yclients(settings),
    ]
    if (location := check_sqlite_location(settings)) is not None:
        findings.append(location)
    findings += check_paths(settings)
    return findings
