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
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings

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
        return ok(
            "config", "файл не задан: значения по умолчанию и переменные LEADTRAIL_… (задайте --config FILE)"
        )
    return ok("config", f"файл {path} прочитан, все ключи верны")


def config_failed(path: Path | None, reason: str) -> Finding:
    where = f"файл {path}" if path is not None else "переменные LEADTRAIL_…"
    return fail("config", f"{where} не загружается: {reason}. Исправьте и запустите doctor снова")


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
        return ok("config.permissions", "в файле нет секретов (токены берутся из окружения)")
    if mode & 0o077:
        return warn(
            "config.permissions",
            f"файл с секретами ({', '.join(secrets)}) доступен не только владельцу (права {mode:04o}): "
            f"chmod 600 {path}",
        )
    return ok("config.permissions", f"секреты в файле, права {mode:04o}: читает только владелец")


def check_telegram_token(settings: Settings) -> Finding:
    # The format was checked when the config loaded; a wrong one never gets this far.
    if settings.telegram.token is None:
        return warn(
            "telegram.token",
            "не задан: бот выключен, работает только HTTP-приём. Токен даёт @BotFather; "
            "задайте LEADTRAIL_TELEGRAM__TOKEN или [telegram] token",
        )
    return ok("telegram.token", "задан, формат верный")


def check_owners(settings: Settings) -> Finding:
    telegram, email = settings.telegram.owners, settings.email.owners
    if not telegram and not email:
        return fail(
            "telegram.owners",
            "пуст: никто не получит отчёты и оповещения, бот откажет всем. "
            "Впишите свой Telegram user id (его покажет @userinfobot) в [telegram] owners",
        )
    if not telegram:
        return warn("telegram.owners", f"пуст: отчёты уйдут только на e-mail ({len(email)} адр.)")
    if settings.telegram.token is None:
        return warn("telegram.owners", f"владельцев {len(telegram)}, но без telegram.token бот им не ответит")
    return ok("telegram.owners", f"владельцев: {len(telegram)}")


def check_ingest_tokens(settings: Settings) -> Finding:
    tokens = [token.get_secret_value() for token in settings.ingest.tokens]
    if not tokens:
        return warn(
            "ingest.tokens",
            "пуст: POST /v1/events отклонит всё (401). Создайте токен: "
            'python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    short = [f"ingest.tokens[{n}]" for n, token in enumerate(tokens) if len(token) < MIN_INGEST_TOKEN_CHARS]
    if short:
        return fail(
            "ingest.tokens",
            f"короче {MIN_INGEST_TOKEN_CHARS} символов, их можно подобрать: {', '.join(short)}. "
            'Замените на python3 -c "import secrets; print(secrets.token_urlsafe(32))"',
        )
    return ok("ingest.tokens", f"токенов: {len(tokens)}, все не короче {MIN_INGEST_TOKEN_CHARS} символов")


def check_hash_secret(settings: Settings) -> Finding:
    if settings.retention.hash_secret is None:
        return fail(
            "retention.hash_secret",
            f"не задан: старые диалоги (старше {settings.retention.days} дн.) не обезличиваются (152-ФЗ). "
            'Создайте ключ python3 -c "import secrets; print(secrets.token_hex(32))" '
            "и задайте LEADTRAIL_RETENTION__HASH_SECRET",
        )
    return ok("retention.hash_secret", "задан")


def check_timezone(settings: Settings, now: datetime | None = None) -> Finding:
    try:
        zone = ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return fail(
            "timezone", f"неизвестный часовой пояс {settings.timezone!r}: укажите, например, Europe/Moscow"
        )
    local = (now or datetime.now(UTC)).astimezone(zone)
    return ok("timezone", f"{settings.timezone}, там сейчас {local:%H:%M}")


def _writable_location(path: Path) -> str | None:
    """None when a file can be created at ``path`` (missing folders included); else the reason why not."""
    folder = path.parent
    while not folder.exists():
        if folder.parent == folder:
            return "нет ни одной существующей папки на пути"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} — файл, а не папка"
    if folder != path.parent:
        return None if _can_create_in(folder) else f"нельзя создать папку в {folder}"
    return None if _can_create_in(folder) else f"нет права записи в папку {folder}"


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
        return warn("database.url", "база в памяти: всё пропадёт при остановке. Укажите файл")
    path = Path(database).expanduser().resolve()
    if path.exists() and not path.is_file():
        return fail("database.url", f"{path} существует, но это не файл: укажите путь к файлу базы")
    if (reason := _writable_location(path)) is not None:
        return fail("database.url", f"файл базы {path} не создать: {reason}. Укажите другой путь")
    return ok("database.url", f"папка файла базы {path.parent} доступна для записи")


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
            findings.append(ok(key, f"{path}: запись возможна"))
        else:
            findings.append(fail(key, f"{path}: запись невозможна ({reason}). Исправьте права или путь"))
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
            return warn(
                "database",
                f"файла {database} ещё нет: `leadtrail run` создаст его и схему при первом запуске",
            )
    try:
        status = await schema_status(settings.database.url)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:200]
        return fail(
            "database",
            f"{shown} недоступна ({type(exc).__name__}: {reason}). Проверьте адрес, пароль, сервер",
        )
    if not status.known:
        return fail(
            "database",
            f"схема ревизии {status.current} новее этой версии LeadTrail (последняя {status.head}): "
            "обновите LeadTrail",
        )
    if status.current is None:
        return warn("database", "база доступна, но пуста: `leadtrail run` создаст схему при запуске")
    if not status.up_to_date:
        return warn(
            "database",
            f"схема устарела (ревизия {status.current}, нужна {status.head}): `leadtrail run` обновит её "
            "при запуске; сначала сделайте резервную копию",
        )
    return ok("database", f"доступна, схема актуальна (ревизия {status.head})")


async def check_bot_api(settings: Settings, timeout: float = 15.0) -> Finding:  # noqa: ASYNC109
    """``getMe`` against the configured Bot API server: only with ``--online``."""
    if settings.telegram.token is None:
        return warn("telegram.api_server", "не проверен: telegram.token не задан")
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

    from bot.telegram_link import create_bot

    bot = create_bot(settings)
    server = settings.telegram.api_server
    try:
        me = await asyncio.wait_for(bot.get_me(), timeout)
    except TelegramUnauthorizedError:
        return fail("telegram.token", "Bot API не принял токен (401): возьмите действующий у @BotFather")
    except (TelegramNetworkError, OSError, TimeoutError) as exc:
        return fail(
            "telegram.api_server", f"{server} недоступен ({type(exc).__name__}): проверьте сеть и адрес"
        )
    except TelegramAPIError as exc:
        return fail("telegram.api_server", f"{server} ответил ошибкой: {exc.message}")
    finally:
        await bot.session.close()
    return ok("telegram.api_server", f"{server} отвечает, бот @{me.username}")


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
    ]
    if (location := check_sqlite_location(settings)) is not None:
        findings.append(location)
    findings += check_paths(settings)
    return findings
