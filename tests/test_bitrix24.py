"""The Bitrix24 link against a local fake portal, the real writer and both databases."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import aiohttp
import pytest

from bot.connectors.bitrix24.client import Bitrix24Client
from bot.connectors.bitrix24.worker import CrmWorker
from bot.ingestion.http_app import ServiceState
from bot.ingestion.validation import validate_items
from bot.runtime.connectors import webhook_routes
from bot.runtime.service import start_ingest_site
from bot.settings import Settings
from storage import crm_jobs
from storage.database import Database
from storage.models import CrmJob
from storage.timeline import find_client_ids, load_events
from storage.writer import EventWriter
from tests.fake_bitrix24 import FakeBitrix24

APP_TOKEN = "outbound-app-token-123"


@dataclass
class Link:
    fake: FakeBitrix24
    worker: CrmWorker
    settings: Settings


@asynccontextmanager
async def crm_link(
    db: Database, writer: EventWriter, *, client_rps: float = 50.0, **fake_options: Any
) -> AsyncIterator[Link]:
    async with FakeBitrix24(**{"rate": 1000.0, "capacity": 1000.0, **fake_options}) as fake:
        settings = Settings(
            bitrix24={"webhook_url": fake.webhook_url, "application_token": APP_TOKEN, "source_id": "WEB"}
        )
        client = Bitrix24Client(fake.webhook_url, requests_per_second=client_rps, timeout_seconds=5)
        worker = CrmWorker(settings.bitrix24, db, writer, client, retry_base_seconds=0.02)
        await worker.prepare()
        try:
            yield Link(fake, worker, settings)
        finally:
            await worker.stop()


async def write(writer: EventWriter, *items: dict[str, Any]) -> None:
    validated = validate_items(list(items), UTC)
    assert validated.errors == []
    await writer.write(validated.rows)


def event(user_id: str, kind: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {"timestamp": f"2026-11-20T10:{minute:02d}:00+03:00", "user_id": user_id, "event": kind, **fields}


def lead_dialog(user_id: str, phone: str | None = None) -> list[dict[str, Any]]:
    contact = {"phone": phone} if phone else {}
    return [
        event(user_id, "message_received", 0, message="Хочу на окрашивание <в субботу>", channel="whatsapp"),
        event(user_id, "assistant_response", 1, assistant_response="Суббота, 12:00 свободно. Записать?"),
        event(
            user_id, "lead_created", 2, name="Алия", lead_id=f"lead_{user_id}", channel="whatsapp", **contact
        ),
    ]


async def jobs(db: Database) -> list[CrmJob]:
    async with db.sessions() as session:
        return list((await session.execute(CrmJob.__table__.select())).all())  # type: ignore[arg-type]


async def drain(worker: CrmWorker, db: Database, patience: float = 30) -> None:
    """Run the worker until no job is pending (retries are due within milliseconds here)."""
    deadline = time.monotonic() + patience
    while True:
        await worker.run_once()
        async with db.sessions() as session:
            status = await crm_jobs.link_status(session)
        if status.pending == 0:
            return
        assert time.monotonic() < deadline, f"jobs still pending: {await jobs(db)}"
        await asyncio.sleep(0.03)


async def client_of(db: Database, query: str) -> list[int]:
    async with db.sessions() as session:
        return await find_client_ids(session, query)


async def test_lead_created_once_despite_failures_and_a_lost_answer(
    db: Database, writer: EventWriter
) -> None:
    async with crm_link(db, writer) as link:
        fake = link.fake
        await write(writer, *lead_dialog("wa_79001112233", phone="+7 900 111-22-33"))
        fake.fail_next(1)  # the first lookup fails outright
        fake.drop_next_answer(1, method="crm.lead.add")  # the lead is made, its answer lost
        await drain(link.worker, db)
        # A restart re-reads nothing and a repeated lead event enqueues nothing new.
        await write(writer, event("wa_79001112233", "lead_created", 5, lead_id="lead_again"))
        await drain(link.worker, db)

    [(lead_id, lead)] = fake.leads.items()
    assert lead["ORIGINATOR_ID"] == "leadtrail" and lead["ORIGIN_ID"].startswith("client-")
    assert lead["NAME"] == "Алия" and lead["SOURCE_ID"] == "WEB"
    assert lead["PHONE"] == [{"VALUE": "+79001112233", "VALUE_TYPE": "WORK"}]
    adds = [call for call in fake.calls if call.method == "crm.lead.add"]
    assert [call.status for call in adds] == [-1]  # applied once, answer dropped, never sent again
    assert 500 in [call.status for call in fake.calls]
    # The retry found the lead by ORIGIN_ID instead of making a second one.
    assert [call.status for call in fake.calls if call.method == "batch:crm.lead.list"][-1] == 200

    [client_id] = await client_of(db, "wa_79001112233")
    assert await client_of(db, f"BX_{lead_id}") == [client_id]
    async with db.sessions() as session:
        timeline = await load_events(session, client_id)
    [linked] = [item for item in timeline if item.event == "crm_linked"]
    assert linked.message == f"Лид создан в Битрикс24: BX_{lead_id}" and linked.channel == "whatsapp"

    [comment] = fake.comments
    assert comment["ENTITY_TYPE"] == "lead" and int(comment["ENTITY_ID"]) == lead_id
    assert "Клиент: Хочу на окрашивание <в субботу>" in comment["COMMENT"]
    assert "Ассистент: Суббота, 12:00 свободно. Записать?" in comment["COMMENT"]
    assert {row.status for row in await jobs(db)} == {"done"}


async def test_client_found_by_phone_is_linked_not_created(db: Database, writer: EventWriter) -> None:
    async with crm_link(db, writer) as link:
        contact_id = link.fake.add_contact(NAME="Алия", PHONE=[{"VALUE": "8 (900) 555-44-33"}])
        await write(writer, *lead_dialog("tg_555", phone="+79005554433"))
        await drain(link.worker, db)
        fake = link.fake

    assert fake.leads == {}
    assert "crm.lead.add" not in fake.methods(status=None)
    [client_id] = await client_of(db, "tg_555")
    assert await client_of(db, f"BX_C{contact_id}") == [client_id]
    [comment] = fake.comments
    assert (comment["ENTITY_TYPE"], int(comment["ENTITY_ID"])) == ("contact", contact_id)


async def test_a_lead_that_already_has_a_crm_id_is_left_alone(db: Database, writer: EventWriter) -> None:
    async with crm_link(db, writer) as link:
        await write(writer, event("tg_seed", "lead_created", 1, crm_id="BX_67890", phone="+79001234567"))
        await drain(link.worker, db)
        assert link.fake.calls == []
        assert await jobs(db) == []


async def test_pace_keeps_under_the_limit_and_503_is_waited_out(db: Database, writer: EventWriter) -> None:
    # At 2 requests/s against a portal that allows 2/s (burst 2), nothing is refused.
    async with crm_link(db, writer, client_rps=2.0, rate=2.0, capacity=2.0) as link:
        for number in range(2):
            await write(writer, *lead_dialog(f"tg_pace{number}"))
        await drain(link.worker, db)
        assert len(link.fake.leads) == 2 and len(link.fake.comments) == 2
        assert 503 not in [call.status for call in link.fake.calls]
    # Far faster than the portal allows: it answers 503 QUERY_LIMIT_EXCEEDED, the client backs off,
    # and every lead still arrives exactly once.
    async with crm_link(db, writer, client_rps=100.0, rate=5.0, capacity=1.0, next_id=500) as link:
        for number in range(2):
            await write(writer, *lead_dialog(f"tg_burst{number}"))
        await drain(link.worker, db, patience=60)
        assert 503 in [call.status for call in link.fake.calls]
        assert len(link.fake.leads) == 2 and len(link.fake.comments) == 2
    assert {row.status for row in await jobs(db)} == {"done"}


async def test_failed_jobs_are_given_up_with_a_short_reason(db: Database, writer: EventWriter) -> None:
    async with crm_link(db, writer) as link:
        link.settings.bitrix24.max_attempts = 2
        await write(writer, *lead_dialog("tg_down"))
        link.fake.fail_next(10)
        await drain(link.worker, db)
        async with db.sessions() as session:
            status = await crm_jobs.link_status(session)
    assert (status.pending, status.failed) == (0, 1)
    [failure] = status.recent_failures
    assert failure.kind == "lead" and failure.error.startswith("INTERNAL_SERVER_ERROR")
    assert status.last_success_at is None


async def post_webhook(url: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.post(f"{url}/v1/bitrix24/events", data=form) as r:
        return r.status, await r.json()


def outbound(event_name: str, entity_id: int, token: str | None = APP_TOKEN) -> dict[str, str]:
    form = {"event": event_name, "data[FIELDS][ID]": str(entity_id), "ts": "1732540000"}
    if token is not None:
        form["auth[application_token]"] = token
        form["auth[domain]"] = "salon.bitrix24.ru"
    return form


async def test_inbound_webhook_records_crm_changes_on_the_timeline(db: Database, writer: EventWriter) -> None:
    async with crm_link(db, writer) as link:
        fake = link.fake
        lead_id = fake.add_lead(TITLE="Алия", STATUS_ID="IN_PROCESS")
        deal_id = fake.add_deal(
            LEAD_ID=str(lead_id),
            STAGE_ID="WON",
            STAGE_SEMANTIC_ID="S",
            OPPORTUNITY="4500.00",
            CURRENCY_ID="RUB",
        )
        await write(writer, event("tg_77", "message_received", 0, crm_id=f"BX_{lead_id}", channel="telegram"))
        routes = webhook_routes(link.settings, db, writer, crm=link.worker)
        runner, port = await start_ingest_site(
            link.settings, db, writer, ServiceState(), port=0, routes=routes
        )
        url = f"http://127.0.0.1:{port}"
        try:
            assert (await post_webhook(url, outbound("ONCRMDEALUPDATE", deal_id, "wrong")))[0] == 401
            assert (await post_webhook(url, outbound("ONCRMDEALUPDATE", deal_id, None)))[0] == 401
            assert await jobs(db) == []
            assert await post_webhook(url, outbound("ONCRMCOMPANYADD", 5)) == (
                200,
                {"status": "ignored", "event": "ONCRMCOMPANYADD"},
            )
            assert (await post_webhook(url, {**outbound("ONCRMLEADUPDATE", 1), "data[FIELDS][ID]": "x"}))[
                0
            ] == 400
            for _ in range(2):  # Bitrix24 may tell twice; the payment is recorded once
                assert await post_webhook(url, outbound("ONCRMDEALUPDATE", deal_id)) == (
                    200,
                    {"status": "queued"},
                )
            fake.leads[lead_id].update(STATUS_ID="JUNK", STATUS_SEMANTIC_ID="F", STATUS_DESCRIPTION="Дорого")
            assert (await post_webhook(url, outbound("ONCRMLEADUPDATE", lead_id)))[0] == 200
            unknown_lead = fake.add_lead(TITLE="Кто-то ещё")
            assert (await post_webhook(url, outbound("ONCRMLEADADD", unknown_lead)))[0] == 200
            assert (await post_webhook(url, outbound("ONCRMDEALUPDATE", 99999)))[0] == 200  # deleted since
            await drain(link.worker, db)
        finally:
            await runner.cleanup()

    # Three fetches went out together in one batch.
    assert "batch" in fake.methods() and "batch:crm.deal.get" in fake.methods()
    [client_id] = await client_of(db, "tg_77")
    assert await client_of(db, f"BX_D{deal_id}") == [client_id]
    async with db.sessions() as session:
        timeline = await load_events(session, client_id)
    [payment] = [item for item in timeline if item.event == "payment_status"]
    assert (payment.status, payment.amount, payment.currency) == ("paid", 4500.0, "RUB")
    [refusal] = [item for item in timeline if item.event == "refusal"]
    assert refusal.reason == "Дорого" and refusal.actor == "system"
    assert await client_of(db, f"BX_{unknown_lead}") == []  # not a LeadTrail client: nothing invented
    statuses = sorted((row.status, row.attempts, row.last_error or "") for row in await jobs(db))
    assert statuses[-1][:2] == ("failed", 1) and statuses[-1][2].startswith("NOT_FOUND")
    assert {status for status, _, _ in statuses[:-1]} == {"done"}


@pytest.mark.parametrize(
    "url", ["https://portal.bitrix24.ru/rest/1/secret", "ftp://x/rest/1/s/", "https://p/x"]
)
def test_webhook_url_setting_is_checked_and_never_printed(url: str) -> None:
    if url.startswith("https://portal"):
        settings = Settings(bitrix24={"webhook_url": url})
        assert settings.bitrix24.enabled
        assert "secret" not in repr(settings.bitrix24)
        assert settings.bitrix24.webhook_url is not None
        assert settings.bitrix24.webhook_url.get_secret_value().endswith("/secret/")
    else:
        with pytest.raises(ValueError, match="inbound webhook URL"):
            Settings(bitrix24={"webhook_url": url})


async def test_inbound_webhook_is_refused_while_the_link_is_off(db: Database, writer: EventWriter) -> None:
    settings = Settings(bitrix24={"application_token": APP_TOKEN})  # no webhook_url: no worker
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    try:
        status, body = await post_webhook(f"http://127.0.0.1:{port}", outbound("ONCRMDEALUPDATE", 1))
    finally:
        await runner.cleanup()
    assert status == 401 and "not configured" in body["error"]
    assert await jobs(db) == []
