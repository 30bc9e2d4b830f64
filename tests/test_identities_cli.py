"""Identities from the command line, as an operator meets them: a file where everyone shares the seed's
ids, ``leadtrail identities``, the doctor, the owners' one notice, and ``leadtrail client unlink``."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select

from storage.database import open_database
from storage.models import OutboxMessage, OwnerAudit
from tests.processes import leadtrail, write_config
from tests.test_storage import event

OWNERS = [1001, 1002]
SEED_IDS = {"crm_id": "BX_67890", "lead_id": "lead_2025_001", "phone": "+7 900 000-00-00"}


def config(tmp_path: Path, database_url: str) -> str:
    return str(
        write_config(tmp_path / "c.toml", {"database": {"url": database_url}, "telegram": {"owners": OWNERS}})
    )


def run(*args: str) -> str:
    result = leadtrail(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
async def test_a_file_where_everyone_shares_the_seed_ids(database_url: str, tmp_path: Path) -> None:
    path = config(tmp_path, database_url)
    events = tmp_path / "shared.ndjson"
    events.write_bytes(
        b"".join(
            orjson.dumps(event(f"tg_{n % 600}", n % 60, event_id=f"e-{n}", **SEED_IDS)) + b"\n"
            for n in range(3000)
        )
    )
    assert "принято: 3000, дубликатов: 0, отклонено: 0" in run("ingest", str(events), "--config", path)

    client = json.loads(run("client", "tg_7", "--json", "--config", path))["client"]
    assert client["user_ids"] == ["tg_7"] and client["crm_ids"] == [] and client["joined_by"] == []

    listed = json.loads(run("identities", "--json", "--config", path))
    assert listed["max_users_per_value"] == 5
    assert sorted((item["field"], item["value"], item["users"]) for item in listed["values"]) == [
        ("crm_id", "BX****90", 600),
        ("lead_id", "le*********01", 600),
        ("phone", "+7********00", 600),
    ]
    assert "BX_67890" not in run("identities", "--config", path)

    doctor = leadtrail("doctor", "--config", path)
    [line] = [line for line in doctor.stdout.splitlines() if line.split(" ")[1] == "identity:"]
    assert line.startswith("⚠️") and "crm_id BX****90: 600 id" in line and "BX_67890" not in line

    assert "сообщено о новых общих значениях: 3" in run("jobs", "run", "identities", "--config", path)
    assert "сообщено о новых общих значениях: 0" in run("jobs", "run", "identities", "--config", path)
    db = await open_database(database_url)
    try:
        async with db.sessions() as session:
            queued = list((await session.execute(select(OutboxMessage))).scalars())
    finally:
        await db.close()
    assert sorted(message.recipient for message in queued) == [str(owner) for owner in OWNERS]
    assert {message.kind for message in queued} == {"identities"}
    assert "BX****90" in queued[0].text and "BX_67890" not in queued[0].text


async def test_unlink_from_the_command_line_is_audited(database_url: str, tmp_path: Path) -> None:
    path = config(tmp_path, database_url)
    events = tmp_path / "family.ndjson"
    phone = {"phone": "+7 (917) 555-12-34"}
    events.write_bytes(
        b"".join(
            orjson.dumps(item) + b"\n"
            for item in (event("tg_mum", 1, **phone), event("wa_son", 2, channel="whatsapp", **phone))
        )
    )
    run("ingest", str(events), "--config", path)
    together = json.loads(run("client", "wa_son", "--json", "--config", path))["client"]
    assert together["user_ids"] == ["tg_mum", "wa_son"]
    assert together["joined_by"] == [
        {"field": "phone", "value": "+79175551234", "user_ids": ["tg_mum", "wa_son"]}
    ]
    shown = run("client", "tg_mum", "--config", path)
    assert "связаны по телефону +79175551234: tg_mum, wa_son" in shown

    done = run("client", "unlink", "wa_son", "--config", path)
    son = json.loads(run("client", "wa_son", "--json", "--config", path))["client"]
    mum = json.loads(run("client", "tg_mum", "--json", "--config", path))["client"]
    assert f"wa_son отделён от клиента #{together['id']}: теперь это клиент #{son['id']}" in done
    assert son["user_ids"] == ["wa_son"] and mum["user_ids"] == ["tg_mum"]
    assert mum["id"] == together["id"] and mum["phones"] == ["+79175551234"]

    again = leadtrail("client", "unlink", "wa_son", "--config", path)
    assert again.returncode == 1 and "nothing to unlink" in again.stderr
    unknown = leadtrail("client", "unlink", "tg_nobody", "--config", path)
    assert unknown.returncode == 1 and "tg_nobody" in unknown.stderr
    wrong = leadtrail("client", "tg_mum", "wa_son", "--config", path)
    assert wrong.returncode == 2 and "client unlink wa_son" in wrong.stderr

    db = await open_database(database_url)
    try:
        async with db.sessions() as session:
            [entry] = (await session.execute(select(OwnerAudit))).scalars()
    finally:
        await db.close()
    assert (entry.owner_id, entry.action) == (0, "unlink")
    assert entry.details == f"wa_son: #{together['id']} → #{son['id']}"
