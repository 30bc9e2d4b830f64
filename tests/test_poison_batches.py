"""No poison batches: an event whose transaction fails for a reason other than storage being unavailable
is quarantined on its own, its neighbours are stored and acknowledged, and the next batch flows.

The failure is a real data condition, as a bug looks to the writer: a trigger in the test database that
refuses the events of one user id. On SQLite and on a real PostgreSQL, through the writer and through
``leadtrail run`` over HTTP.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from bot.ingestion.pipeline import ingest_items
from storage.database import Database, open_database
from storage.models import QuarantinedPayload, StoredEvent
from storage.writer import INTERNAL_ERROR, EventWriter
from tests.processes import free_port, leadtrail, running_service, write_config
from tests.test_storage import MOSCOW, event

POISONED = "tg_poison"
TOKEN = "poison-test-token"
SHARED = {"crm_id": "BX_67890", "lead_id": "lead_2025_001"}


async def poison(url: str, user_id: str = POISONED) -> None:
    """A trigger that makes every insert of this user's events fail, as a bug in the writer would."""
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            if url.startswith("sqlite"):
                await conn.execute(
                    text(
                        "CREATE TRIGGER poisoned BEFORE INSERT ON events"
                        f" WHEN NEW.user_id = '{user_id}' BEGIN SELECT RAISE(ABORT, 'a bug'); END"
                    )
                )
                return
            await conn.execute(
                text(
                    "CREATE FUNCTION poisoned() RETURNS trigger AS $$ BEGIN"
                    f" IF NEW.user_id = '{user_id}' THEN RAISE EXCEPTION 'a bug'; END IF; RETURN NEW;"
                    " END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    "CREATE TRIGGER poisoned BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION poisoned()"
                )
            )
    finally:
        await engine.dispose()


async def stored_users(db: Database) -> list[str]:
    async with db.sessions() as session:
        return sorted((await session.execute(select(StoredEvent.user_id))).scalars())


async def test_a_failing_event_is_quarantined_and_its_neighbours_stored(
    db: Database, writer: EventWriter, database_url: str
) -> None:
    await poison(database_url)
    first = [event(f"tg_{n}", n) for n in range(3)]
    second = [event("tg_7", 7), event(POISONED, 8, message="мой телефон"), event("tg_9", 9)]
    outcomes = await asyncio.gather(
        ingest_items(first, writer, MOSCOW, source="http"),
        ingest_items(second, writer, MOSCOW, source="http"),
    )
    assert [(outcome.accepted, outcome.duplicates) for outcome in outcomes] == [(3, 0), (2, 0)]
    assert outcomes[0].errors == []
    assert [error.as_dict() for error in outcomes[1].errors] == [
        {"index": 1, "field": None, "message": INTERNAL_ERROR}
    ]
    assert await stored_users(db) == ["tg_0", "tg_1", "tg_2", "tg_7", "tg_9"]
    async with db.sessions() as session:
        [kept] = (await session.execute(select(QuarantinedPayload))).scalars()
    assert kept.source == "http" and kept.errors == [{"field": None, "message": INTERNAL_ERROR}]
    assert json.loads(kept.payload)["user_id"] == POISONED
    # The next batch flows, and the same event sent again is quarantined again, alone.
    again = await ingest_items([event("tg_10", 10), second[1]], writer, MOSCOW, source="http")
    assert (again.accepted, [error.index for error in again.errors]) == (1, [1])
    assert writer.failing_since is None
    async with db.sessions() as session:
        assert (await session.execute(select(func.count()).select_from(QuarantinedPayload))).scalar_one() == 2


async def post(url: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
    data = b"".join(orjson.dumps(item) + b"\n" for item in body)
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/events", data=data, headers=headers) as r,
    ):
        return r.status, await r.json()


def service_config(tmp_path: Path, database_url: str, port: int) -> Path:
    return write_config(
        tmp_path / "c.toml",
        {
            "database": {"url": database_url},
            "ingest": {"port": port, "tokens": [TOKEN]},
            "alerts": {"ingest_errors_per_hour": 1},
        },
    )


async def test_over_http_a_poisoned_event_gets_207_and_the_source_goes_on(
    database_url: str, tmp_path: Path
) -> None:
    db = await open_database(database_url)  # migrated, so the trigger has a table to sit on
    await db.close()
    await poison(database_url)
    port = free_port()
    config = service_config(tmp_path, database_url, port)
    async with running_service(config, port, tmp_path / "run.log") as service:
        batch = [event("tg_1", 1), event("tg_2", 2), event(POISONED, 3), event("tg_4", 4), event("tg_5", 5)]
        status, body = await post(service.url, batch)
        assert (status, body) == (
            207,
            {
                "accepted": 4,
                "duplicates": 0,
                "errors": [{"index": 2, "field": None, "message": INTERNAL_ERROR}],
            },
        )
        assert await post(service.url, [event("tg_6", 6), event("tg_7", 7)]) == (
            202,
            {"accepted": 2, "duplicates": 0},
        )
        quarantine = await asyncio.to_thread(leadtrail, "quarantine", "--json", "--config", str(config))
        [entry] = json.loads(quarantine.stdout)["items"]
        assert entry["errors"] == [{"field": None, "message": INTERNAL_ERROR}]
        alerts = await asyncio.to_thread(leadtrail, "alerts", "check", "--json", "--config", str(config))
        fired = {verdict["rule"]: verdict for verdict in json.loads(alerts.stdout)}
        assert fired["ingest_errors"]["value"] == 1
        assert await service.stop() == 0


async def test_four_senders_with_ids_shared_by_everyone_get_no_503(database_url: str, tmp_path: Path) -> None:
    """The seed's crm_id and lead_id sent for 2,000 users in eight concurrent requests (503 for ever once)."""
    port = free_port()
    config = service_config(tmp_path, database_url, port)
    batches = [
        [event(f"tg_{n}", n % 60, event_id=f"shared-{n}", **SHARED) for n in range(start, start + 250)]
        for start in range(0, 2000, 250)
    ]
    async with running_service(config, port, tmp_path / "run.log") as service:
        answers = await asyncio.gather(*(post(service.url, batch) for batch in batches))
        assert [status for status, _ in answers] == [202] * len(batches)
        assert sum(body["accepted"] for _, body in answers) == 2000
        shown = await asyncio.to_thread(leadtrail, "client", "tg_7", "--json", "--config", str(config))
        assert json.loads(shown.stdout)["client"]["user_ids"] == ["tg_7"]
        assert await service.stop() == 0
