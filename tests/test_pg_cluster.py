"""Two real ``leadtrail run`` processes on one PostgreSQL database: they share ingestion without duplicates
or split clients, one of them is the scheduler leader, the morning report reaches each owner once, and
the standby takes over when the leader is killed."""

from __future__ import annotations

import asyncio
import signal
import time
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
from sqlalchemy import func, select

from storage.database import Database, open_database
from storage.models import Client, ClientIdentity, OutboxMessage, StoredEvent
from tests.conftest import SEED_EVENT, _fresh_postgres_database
from tests.fake_bot_api import Call, FakeBotAPI
from tests.processes import RunningService, free_port, running_service, write_config

BOT_TOKEN = "123456:CLUSTER-token_abcdefghijklmn"
OWNERS = (1001, 1002)
ZONE = "Europe/Moscow"
INGEST_TOKEN = "cluster-ingest-token-0123456789"


def cluster_config(tmp_path: Path, name: str, url: str, api: FakeBotAPI) -> tuple[Path, int]:
    port = free_port()
    # The report is due from this very minute, so whichever process leads sends it at start (catch-up).
    daily_at = datetime.now(UTC).astimezone(ZoneInfo(ZONE)).strftime("%H:%M")
    path = write_config(
        tmp_path / f"{name}.toml",
        {
            "timezone": ZONE,
            "telegram": {"token": BOT_TOKEN, "owners": list(OWNERS), "api_server": api.base_url},
            "database": {"url": url, "leader_retry_seconds": 0.3},
            "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
            "reports": {"daily_at": daily_at},
        },
    )
    return path, port


async def post(http: aiohttp.ClientSession, service: RunningService, events: list[dict[str, Any]]) -> int:
    headers = {"Authorization": f"Bearer {INGEST_TOKEN}", "Content-Type": "application/json"}
    async with http.post(f"{service.url}/v1/events", data=orjson.dumps(events), headers=headers) as response:
        return response.status


def person(round_: int, number: int, **fields: Any) -> dict[str, Any]:
    return {
        **SEED_EVENT,
        "user_id": f"tg_{round_}_{number}",
        "crm_id": f"BX_{round_}_{number}",
        "lead_id": f"lead_{round_}_{number}",
        "phone": f"+7 900 {round_:03d}-{number:02d}-00",
        "message": f"сообщение {round_}.{number}",
        **fields,
    }


def report_calls(api: FakeBotAPI, chat_id: int, first_line: str) -> list[Call]:
    def opening(call: Call) -> str:
        media = call.params.get("media") or [{}]
        return str(call.params.get("text") or call.params.get("caption") or media[0].get("caption") or "")

    return [
        call
        for call in api.calls
        if call.method.startswith("send")
        and str(call.params.get("chat_id")) == str(chat_id)
        and opening(call).startswith(first_line)
    ]


async def daily_reports(db: Database) -> list[OutboxMessage]:
    async with db.sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.kind == "daily_report")
        return list((await session.execute(query)).scalars())


async def wait_until(predicate: Any, timeout: float, what: str) -> None:  # noqa: ASYNC109
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def test_two_processes_share_one_postgresql(tmp_path: Path, postgres_url: str) -> None:
    url = await _fresh_postgres_database(postgres_url)
    async with FakeBotAPI() as api, AsyncExitStack() as stack:
        configs = [cluster_config(tmp_path, name, url, api) for name in ("a", "b")]
        # Both start at once, on an empty database: one migrates, the other waits for it.
        services = list(
            await asyncio.gather(
                *(
                    stack.enter_async_context(running_service(path, port, tmp_path / f"{name}.log"))
                    for (path, port), name in zip(configs, ("a", "b"), strict=True)
                )
            )
        )
        roles = [(await service.healthz())["scheduler"] for service in services]
        assert sorted(roles) == ["leader", "standby"], [service.log() for service in services]
        leader, standby = services if roles[0] == "leader" else services[::-1]

        db = await open_database(url)
        try:
            # The morning report: queued once per owner, delivered once per owner.
            async def report_delivered() -> bool:
                rows = await daily_reports(db)
                return len(rows) == len(OWNERS) and all(row.sent_at is not None for row in rows)

            await wait_until(report_delivered, 30, "the daily report to be delivered")
            rows = await daily_reports(db)
            assert sorted(row.recipient for row in rows) == sorted(str(owner) for owner in OWNERS)
            first_line = rows[0].text.split("\n", 1)[0]
            await asyncio.sleep(1.5)  # long enough for a duplicate delivery by the standby to show up
            for owner in OWNERS:
                assert len(report_calls(api, owner, first_line)) == 1, f"owner {owner} got it not once"

            # The same batches to both at once, with identities neither process has seen.
            async with aiohttp.ClientSession() as http:
                for round_ in range(5):
                    batch = [person(round_, n) for n in range(20)]
                    statuses = await asyncio.gather(*(post(http, s, batch) for s in services))
                    assert statuses == [202, 202]
                    # One person, two ids, first seen by the two processes at the same moment.
                    one = person(round_, 99, user_id=f"tg_{round_}_x", crm_id=None, lead_id=None)
                    other = person(round_, 99, user_id=f"wa_{round_}_x", crm_id=None, lead_id=None)
                    other["event"] = "lead_created"
                    statuses = await asyncio.gather(post(http, leader, [one]), post(http, standby, [other]))
                    assert statuses == [202, 202]

            async with db.sessions() as session:
                events = (await session.execute(select(func.count()).select_from(StoredEvent))).scalar_one()
                clients = (await session.execute(select(func.count()).select_from(Client))).scalar_one()
                owners_of = dict(
                    (
                        await session.execute(
                            select(ClientIdentity.value, ClientIdentity.client_id).where(
                                ClientIdentity.kind == "user"
                            )
                        )
                    ).all()
                )
            assert events == 5 * (20 + 2)
            assert clients == 5 * (20 + 1), "a person became two clients"
            for round_ in range(5):
                assert owners_of[f"tg_{round_}_x"] == owners_of[f"wa_{round_}_x"]
        finally:
            await db.close()

        # The leader dies without a word; the standby takes over within a few retries.
        leader.process.send_signal(signal.SIGKILL)
        await leader.process.wait()

        async def took_over() -> bool:
            return bool((await standby.healthz())["scheduler"] == "leader")

        await wait_until(took_over, 20, "the standby to become the leader")
        assert "this process is the leader" in standby.log()
        assert await standby.stop() == 0
