"""Retention on by default: with no ``[retention]`` section the first anonymisation makes its key in a file
outside the database, says where once, and the old dialogs lose the person while the numbers stay.

Run as an operator runs it (``leadtrail ingest``, ``anonymize``, ``report``, ``jobs run``, ``doctor``),
on a SQLite file and on a real PostgreSQL, with the working folder a fresh one (where a PostgreSQL
installation keeps its key by default).
"""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.database import open_database
from tests.processes import leadtrail, write_config
from tests.test_retention import read_with_wal

OLD_TEXTS = ("Хочу на окрашивание в субботу", "Есть окно в 12:00", "Гульшат Ибрагимова")
OLD = [
    {
        "timestamp": "2025-01-10T10:00:00+03:00",
        "event": "message_received",
        "user_id": "tg_old_1",
        "name": OLD_TEXTS[2],
        "phone": "+7 917 000-11-22",
        "message": OLD_TEXTS[0],
        "lat": "55.7887",
        "lon": "49.1221",
    },
    {
        "timestamp": "2025-01-10T10:00:02+03:00",
        "event": "assistant_response",
        "user_id": "tg_old_1",
        "assistant_response": OLD_TEXTS[1],
        "response_time_ms": 2000,
    },
    {"timestamp": "2025-01-10T11:00:00+03:00", "event": "lead_created", "user_id": "tg_old_1"},
]
RECENT = {
    "timestamp": "2025-03-10T10:00:00+03:00",
    "event": "message_received",
    "user_id": "tg_new_2",
    "message": "Новое сообщение",
}
REPORT = ("report", "--from", "2025-01-01", "--to", "2025-03-31", "--json")


def report_numbers(config: str, workdir: Path) -> dict[str, object]:
    result = leadtrail(*REPORT, "--config", config, cwd=workdir)
    assert result.returncode == 0, result.stderr
    numbers: dict[str, object] = json.loads(result.stdout)
    return numbers


async def _stored_texts(url: str) -> list[object]:
    """Every message, answer, name, phone and coordinate left on the events before March."""
    db = await open_database(url)
    try:
        async with db.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT message, assistant_response, name, phone, lat, lon FROM events"
                    " WHERE user_id <> 'tg_new_2'"
                )
            )
            return [value for row in rows for value in row if value is not None]
    finally:
        await db.close()


async def _tables_holding(url: str, needle: str) -> list[str]:
    """PostgreSQL: the tables with a row whose text form contains ``needle``."""
    db = await open_database(url)
    try:
        async with db.engine.connect() as conn:
            tables = (
                await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
            ).scalars()
            found = []
            for table in list(tables):
                query = text(f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE :needle')
                if (await conn.execute(query, {"needle": f"%{needle}%"})).scalar_one():
                    found.append(table)
            return found
    finally:
        await db.close()


@pytest.mark.slow
async def test_without_a_retention_section_anonymize_makes_its_key_outside_the_database(
    database_url: str, tmp_path: Path
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = str(write_config(tmp_path / "c.toml", {"database": {"url": database_url}}))
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in (*OLD, RECENT)))
    assert leadtrail("ingest", str(events), "--config", config, cwd=workdir).returncode == 0
    before = report_numbers(config, workdir)
    sqlite_file = Path(make_url(database_url).database or "") if database_url.startswith("sqlite") else None
    key_path = (
        sqlite_file.with_name("leadtrail.retention-key")
        if sqlite_file
        else workdir / "leadtrail.retention-key"
    )

    dry = leadtrail("anonymize", "--dry-run", "--before", "2025-03-01", "--config", config, cwd=workdir)
    assert dry.returncode == 0, dry.stderr
    assert not key_path.exists()  # a dry run changes nothing, outside the database neither

    done = leadtrail("anonymize", "--before", "2025-03-01", "--config", config, cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "Обезличено событий: 3, клиентов: 1" in done.stdout
    assert str(key_path) in done.stderr and "back it up together with the database" in done.stderr
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = key_path.read_text().strip()
    assert len(key) == 64

    assert report_numbers(config, workdir) == before
    assert await _stored_texts(database_url) == []
    if sqlite_file is not None:
        on_disk = read_with_wal(sqlite_file)
        assert [item for item in (*OLD_TEXTS, "+79170001122", "tg_old_1") if item.encode() in on_disk] == []
        assert key.encode() not in on_disk
    else:
        assert await _tables_holding(database_url, key) == []
        assert await _tables_holding(database_url, "tg_old_1") == []

    # The nightly job with the same default config: the same key, said once only (when it was made).
    nightly = leadtrail("jobs", "run", "retention", "--config", config, cwd=workdir)
    assert nightly.returncode == 0, nightly.stderr
    assert "Обезличено событий:" in nightly.stdout
    assert "retention-key" not in nightly.stderr
    assert report_numbers(config, workdir) == before
    assert key_path.read_text().strip() == key

    doctor = leadtrail("doctor", "--config", config, cwd=workdir)
    [line] = [line for line in doctor.stdout.splitlines() if "retention.hash_secret" in line]
    assert line.startswith("✅") and str(key_path) in line and "резервными копиями" in line


def test_a_configured_secret_wins_over_the_key_file(tmp_path: Path) -> None:
    database = tmp_path / "leadtrail.db"
    config = write_config(
        tmp_path / "c.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{database}"},
            "retention": {"hash_secret": "configured-secret-0123456789"},
        },
    )
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in OLD))
    assert leadtrail("ingest", str(events), "--config", str(config)).returncode == 0
    done = leadtrail("anonymize", "--before", "2025-03-01", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "leadtrail.retention-key").exists()
    assert "retention-key" not in done.stderr


def test_a_key_file_that_cannot_be_made_is_named(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the key's folder should be")
    config = write_config(
        tmp_path / "c.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"},
            "retention": {"key_file": str(blocked / "key")},
        },
    )
    done = leadtrail("anonymize", "--config", str(config))
    assert done.returncode == 1
    assert (
        done.stderr.startswith("leadtrail: cannot create the retention key") and str(blocked) in done.stderr
    )
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_doctor_says_where_the_key_will_be_made(tmp_path: Path) -> None:
    database = tmp_path / "data" / "leadtrail.db"
    asyncio.run(_migrate(f"sqlite+aiosqlite:///{database}"))
    config = write_config(tmp_path / "c.toml", {"database": {"url": f"sqlite+aiosqlite:///{database}"}})
    doctor = leadtrail("doctor", "--config", str(config))
    [line] = [line for line in doctor.stdout.splitlines() if "retention.hash_secret" in line]
    assert line.startswith("✅") and "будет создан" in line
    assert str(database.with_name("leadtrail.retention-key")) in line
    assert not database.with_name("leadtrail.retention-key").exists()


async def _migrate(url: str) -> None:
    db = await open_database(url)
    await db.close()
