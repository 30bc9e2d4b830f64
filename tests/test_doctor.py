"""``leadtrail doctor`` as an operator runs it: the real command, real SQLite files, the real PostgreSQL."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from pydantic import BaseModel
from sqlalchemy.engine import make_url

from bot.cli.doctor_checks import Level, check_bot_api, check_paths
from bot.ingestion.pipeline import ingest_items
from bot.settings import Settings
from reports.pricing import ModelPrice, PriceTable
from storage.database import open_database
from storage.writer import EventWriter
from tests.conftest import _fresh_postgres_database
from tests.fake_bot_api import BOT_USERNAME, FakeBotAPI
from tests.processes import clean_env, free_port, leadtrail, write_config

BOT_TOKEN = "123456:DOCTOR-token_abcdefghijklmnopqr"
INGEST_TOKEN = "ingest-Secret-0123456789abcdefXYZ"
HASH_SECRET = "hash-Secret-0123456789abcdef"
SECRETS = (BOT_TOKEN, INGEST_TOKEN, HASH_SECRET, "DOCTOR-token", "Secret-0123")


def good_config(tmp_path: Path, **changes: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "timezone": "Europe/Moscow",
        "telegram": {"token": BOT_TOKEN, "owners": [1001]},
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'data' / 'leadtrail.db'}"},
        "ingest": {"tokens": [INGEST_TOKEN]},
        "retention": {"hash_secret": HASH_SECRET},
    }
    for section, values in changes.items():
        if isinstance(values, dict):
            config[section] = {**config.get(section, {}), **values}
        else:
            config[section] = values
    return config


def save(tmp_path: Path, config: dict[str, Any], mode: int = 0o600) -> Path:
    path = write_config(tmp_path / "config.toml", config)
    path.chmod(mode)
    return path


def doctor(path: Path, *extra: str) -> tuple[int, list[str], str]:
    result = leadtrail("doctor", "--config", str(path), *extra)
    output = result.stdout + result.stderr
    for secret in SECRETS:
        assert secret not in output, f"doctor printed a secret: {output}"
    return result.returncode, result.stdout.splitlines(), output


def line_of(lines: list[str], key: str) -> str:
    found = [line for line in lines if line.split(" ", 1)[-1].startswith(f"{key}:")]
    assert len(found) == 1, f"no single line for {key}: {lines}"
    return found[0]


async def migrated_sqlite(tmp_path: Path) -> None:
    db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'data' / 'leadtrail.db'}")
    await db.close()


async def test_a_good_setup_passes_every_check_and_prints_no_secret(tmp_path: Path) -> None:
    await migrated_sqlite(tmp_path)
    code, lines, output = doctor(save(tmp_path, good_config(tmp_path)))
    assert code == 0, output
    for key in ("config", "config.permissions", "telegram.token", "telegram.owners", "ingest.tokens"):
        assert line_of(lines, key).startswith(Level.OK.value), output
    for key in ("retention.hash_secret", "timezone", "database.url"):
        assert line_of(lines, key).startswith(Level.OK.value), output
    assert "схема актуальна" in line_of(lines, "database")
    assert line_of(lines, "ai.prices") == "✅ ai.prices: вызовов модели за 30 дн. нет"
    assert lines[-1] == "Итог: ошибок 0, предупреждений 0."


async def test_unpriced_models_and_calls_without_a_client_are_named_with_what_to_do(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'leadtrail.db'}"
    db = await open_database(url)
    writer = EventWriter(db)
    await writer.start()
    recent = datetime.now(UTC) - timedelta(days=2)
    calls = [
        {"model": "yandexgpt-lite", "user_id": "tg_1"},  # priced below
        *({"model": "GigaChat-2-Max", "user_id": "tg_2"} for _ in range(3)),  # no price at all
        {
            "model": "yandexgpt-lite",
            "user_id": "unattributed",
            "input_tokens": None,
        },  # priced model, no tokens
        {"model": "yandexgpt-lite", "user_id": "unattributed"},
    ]
    items = [
        {
            "timestamp": (recent + timedelta(minutes=n)).isoformat(),
            "event": "llm_call",
            "input_tokens": 100,
            **call,
        }
        for n, call in enumerate(calls)
    ]
    lite = ModelPrice(model="yandexgpt-lite", input_per_million=200, output_per_million=200)
    await ingest_items(items, writer, UTC, source="test", prices=PriceTable("RUB", (lite,)))
    await writer.close()
    await db.close()
    prices = [{"model": "yandexgpt-lite", "input_per_million": 200, "output_per_million": 200}]
    code, lines, output = doctor(save(tmp_path, good_config(tmp_path, ai={"prices": prices})))
    assert code == 0, output
    priced = line_of(lines, "ai.prices")
    assert priced.startswith(Level.WARN.value), output
    assert "GigaChat-2-Max (3 выз.), yandexgpt-lite (1 выз.; цена в [[ai.prices]] есть" in priced
    unattributed = line_of(lines, "ai.unattributed")
    assert unattributed.startswith(Level.WARN.value) and "без клиента за 30 дн.: 2" in unattributed
    assert "Задайте user.id на span обработчика сообщения" in unattributed


@pytest.mark.parametrize(
    ("changes", "key", "words"),
    [
        ({"telegram": {"owners": []}}, "telegram.owners", "никто не получит"),
        ({"ingest": {"tokens": [INGEST_TOKEN, "short-Secret-0123"]}}, "ingest.tokens", "ingest.tokens[1]"),
        ({"telegram": {"token": "123456:DOCTOR-token"}}, "config", "telegram.token"),
        ({"timezone": "Europe/Kazan_City"}, "config", "timezone"),
    ],
    ids=["no-owners", "short-ingest-token", "bad-token-format", "bad-timezone"],
)
async def test_each_bad_setting_fails_with_its_own_line(
    tmp_path: Path, changes: dict[str, Any], key: str, words: str
) -> None:
    await migrated_sqlite(tmp_path)
    config = good_config(tmp_path, **changes)
    code, lines, output = doctor(save(tmp_path, config))
    assert code == 1, output
    line = line_of(lines, key)
    assert line.startswith(Level.FAIL.value) and words in line, output
    assert sum(item.startswith(Level.FAIL.value) for item in lines) == 1, output


async def test_config_readable_by_others_is_a_warning_with_chmod(tmp_path: Path) -> None:
    await migrated_sqlite(tmp_path)
    path = save(tmp_path, good_config(tmp_path), mode=0o644)
    code, lines, output = doctor(path)
    assert code == 0, output
    line = line_of(lines, "config.permissions")
    assert line.startswith(Level.WARN.value), output
    assert f"chmod 600 {path}" in line and "telegram.token" in line and "retention.hash_secret" in line


async def test_secrets_only_in_the_environment_need_no_chmod(tmp_path: Path) -> None:
    config = good_config(tmp_path)
    del config["telegram"]["token"], config["retention"], config["ingest"]
    path = save(tmp_path, config, mode=0o644)
    await migrated_sqlite(tmp_path)
    result = leadtrail(
        "doctor",
        "--config",
        str(path),
        env={
            "LEADTRAIL_TELEGRAM__TOKEN": BOT_TOKEN,
            "LEADTRAIL_RETENTION__HASH_SECRET": HASH_SECRET,
            "LEADTRAIL_INGEST__TOKENS": f'["{INGEST_TOKEN}"]',
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert line_of(result.stdout.splitlines(), "config.permissions").startswith(Level.OK.value)
    assert line_of(result.stdout.splitlines(), "ingest.tokens").startswith(Level.OK.value)
    assert all(secret not in result.stdout + result.stderr for secret in SECRETS)


async def test_sqlite_file_that_cannot_be_created_fails(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the database folder should be")
    config = good_config(tmp_path, database={"url": f"sqlite+aiosqlite:///{blocker / 'db' / 'leadtrail.db'}"})
    code, lines, output = doctor(save(tmp_path, config))
    assert code == 1, output
    line = line_of(lines, "database.url")
    assert line.startswith(Level.FAIL.value) and "файл, а не папка" in line, output
    assert not (blocker.parent / "db").exists()


async def test_missing_sqlite_file_is_created_by_run_not_by_doctor(tmp_path: Path) -> None:
    code, lines, output = doctor(save(tmp_path, good_config(tmp_path)))
    assert code == 0, output
    line = line_of(lines, "database")
    assert line.startswith(Level.WARN.value) and "leadtrail run" in line, output
    assert not (tmp_path / "data").exists(), "doctor must not create the database"


async def test_postgresql_unreachable_fails_without_printing_the_password(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://leadtrail:pg-Password-0123456789@127.0.0.1:{free_port()}/leadtrail"
    code, lines, output = doctor(save(tmp_path, good_config(tmp_path, database={"url": url})))
    assert code == 1, output
    assert line_of(lines, "database").startswith(Level.FAIL.value), output
    assert "pg-Password" not in output


async def test_postgresql_empty_then_migrated_then_from_a_newer_version(
    tmp_path: Path, postgres_url: str
) -> None:
    url = await _fresh_postgres_database(postgres_url)
    path = save(tmp_path, good_config(tmp_path, database={"url": url}))

    code, lines, output = doctor(path)
    assert code == 0 and line_of(lines, "database").startswith(Level.WARN.value), output
    assert "пуста" in line_of(lines, "database")

    await (await open_database(url)).close()
    code, lines, output = doctor(path)
    assert code == 0 and "схема актуальна" in line_of(lines, "database"), output

    parts = make_url(url)
    conn = await asyncpg.connect(
        host=parts.host, port=parts.port, user=parts.username, database=parts.database
    )
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '9999_future'")
    finally:
        await conn.close()
    code, lines, output = doctor(path)
    assert code == 1, output
    line = line_of(lines, "database")
    assert line.startswith(Level.FAIL.value) and "9999_future" in line and "обновите LeadTrail" in line


async def _doctor_async(path: Path, *extra: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "doctor",
        "--config",
        str(path),
        *extra,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=clean_env(),
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, output.decode()


async def test_bot_api_is_asked_only_with_online(tmp_path: Path) -> None:
    await migrated_sqlite(tmp_path)
    async with FakeBotAPI() as api:
        path = save(tmp_path, good_config(tmp_path, telegram={"api_server": api.base_url}))
        code, output = await _doctor_async(path)
        assert code == 0, output
        assert api.calls_of("getMe") == [], "doctor must not contact Telegram without --online"

        code, output = await _doctor_async(path, "--online")
        assert code == 0, output
        assert f"{Level.OK.value} telegram.api_server:" in output and f"@{BOT_USERNAME}" in output
        assert len(api.calls_of("getMe")) == 1


async def test_bot_api_refusing_the_token_or_unreachable_fails() -> None:
    # In-process: the real command's --online path is above; aiogram's import is paid once per session.
    async with FakeBotAPI() as api:
        settings = Settings(telegram={"token": BOT_TOKEN, "api_server": api.base_url})
        api.fail_next("getMe", 401)
        refused = await check_bot_api(settings)
        assert (refused.level, refused.key) == (Level.FAIL, "telegram.token")
        assert "не принял токен" in refused.text and BOT_TOKEN not in refused.line()
    closed = Settings(telegram={"token": BOT_TOKEN, "api_server": f"http://127.0.0.1:{free_port()}"})
    unreachable = await check_bot_api(closed)
    assert (unreachable.level, unreachable.key) == (Level.FAIL, "telegram.api_server")
    assert "недоступен" in unreachable.text


class _Spool(BaseModel):
    spool_dir: str = ""


class _WithSpool(Settings):
    spool: _Spool = _Spool()


def test_configured_folders_are_checked_for_writing(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    good = check_paths(_WithSpool(spool=_Spool(spool_dir=str(tmp_path / "spool" / "new"))))
    bad = check_paths(_WithSpool(spool=_Spool(spool_dir=str(blocker / "spool"))))
    assert [(f.level, f.key) for f in good] == [(Level.OK, "spool.spool_dir")]
    assert [(f.level, f.key) for f in bad] == [(Level.FAIL, "spool.spool_dir")]
    assert check_paths(Settings()) == []
