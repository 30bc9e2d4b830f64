"""The morning report is claimed once per day; the outbox survives Telegram trouble; e-mail works."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes
from email.message import Message as EmailMessageType
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiosmtpd.controller import Controller
from sqlalchemy import select

from bot.runtime.delivery import DeliveryWorker
from bot.runtime.email_delivery import EmailSender
from bot.runtime.jobs.daily_report import DailyReportJob
from bot.runtime.scheduler import build_scheduler
from bot.settings import Settings
from reports.periods import Period
from storage.database import Database, open_database
from storage.models import OutboxMessage
from storage.outbox import Attachment, enqueue
from tests.bot_harness import BOT_TOKEN
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port

MOSCOW = ZoneInfo("Europe/Moscow")
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'delivery.db'}")
    yield database
    await database.close()


def settings(**email: object) -> Settings:
    return Settings(telegram={"owners": [1001, 1002]}, reports={"daily_at": "09:00"}, email=email)


@dataclass(frozen=True)
class Rendered:
    text: str
    subject: str
    charts: tuple[Attachment, ...]


async def render(period: Period) -> Rendered:
    day = period.start_local
    return Rendered(f"Отчёт за {day:%d.%m.%Y}", f"LeadTrail: {day}", (Attachment("funnel.png", PNG),))


async def outbox(db: Database) -> list[OutboxMessage]:
    async with db.sessions() as session:
        return list((await session.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=MOSCOW)


async def test_daily_report_is_sent_once_across_restarts_and_late_starts(db: Database) -> None:
    config = settings()
    woken: list[bool] = []

    def job() -> DailyReportJob:  # a new object is what a restarted process has
        return DailyReportJob(db, config, render, lambda: woken.append(True))

    assert not await job().run_if_due(at(10, 8, 59))
    assert await job().run_if_due(at(10, 9, 0))
    assert not await job().run_if_due(at(10, 9, 5))  # restarted at 09:05
    assert not await job().run_if_due(at(10, 12, 0))
    messages = await outbox(db)
    assert [(m.recipient, m.text) for m in messages] == [
        ("1001", "Отчёт за 09.03.2026"),
        ("1002", "Отчёт за 09.03.2026"),
    ]

    assert await job().run_if_due(at(11, 11, 0))  # down at 09:00, started at 11:00
    assert not await job().run_if_due(at(11, 11, 1))
    assert not await job().run_if_due(at(12, 15, 30))  # past the 6-hour grace window
    assert len(await outbox(db)) == 4
    assert woken == [True, True]


async def test_concurrent_claims_send_once(db: Database) -> None:
    config = settings()
    jobs = [DailyReportJob(db, config, render, lambda: None) for _ in range(5)]
    results = await asyncio.gather(*(job.run_if_due(at(10, 9, 1)) for job in jobs))
    assert results.count(True) == 1
    assert len(await outbox(db)) == 2


async def test_outbox_survives_429_500_and_a_blocked_owner(db: Database) -> None:
    async with FakeBotAPI() as api:
        bot = Bot(BOT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
        try:
            async with db.sessions() as session, session.begin():
                for owner in (1001, 1002, 1003):
                    await enqueue(
                        session, kind="alert", channel="telegram", recipient=str(owner), text="⚠️ Тревога"
                    )
            api.fail_next("sendMessage", status=429, retry_after=1)
            api.fail_next("sendMessage", status=500, description="Internal Server Error")
            api.block_chat(1002)
            worker = DeliveryWorker(db, lambda: bot)
            assert (
                await worker.deliver_due() == 1
            )  # 1001 got 429, 1002 is blocked, 1003 got 500? no: 429 then 500
            for _ in range(40):
                if all(m.sent_at or m.failed_at for m in await outbox(db)):
                    break
                async with db.sessions() as session, session.begin():
                    for message in await outbox(db):
                        if not (message.sent_at or message.failed_at):
                            stored = await session.get(OutboxMessage, message.id)
                            assert stored is not None
                            stored.next_attempt_at = datetime.now(MOSCOW) - timedelta(seconds=1)
                await worker.deliver_due()
            state = {
                m.recipient: (m.sent_at is not None, m.failed_at is not None, m.last_error)
                for m in await outbox(db)
            }
        finally:
            await bot.session.close()
    assert state["1001"][:2] == (True, False)
    assert state["1003"][:2] == (True, False)
    assert state["1002"][:2] == (False, True)
    assert "blocked" in (state["1002"][2] or "")
    delivered = {call.params["chat_id"] for call in api.calls_of("sendMessage") if call.ok}
    assert delivered == {1001, 1003}


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[EmailMessageType] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content))  # type: ignore[attr-defined]
        return "250 OK"


async def test_email_delivery_with_charts_against_a_local_smtp_server(db: Database) -> None:
    inbox = _Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = settings(
            smtp_host="127.0.0.1", smtp_port=port, starttls=False, owners=["owner@salon.example"]
        )
        assert await DailyReportJob(db, config, render, lambda: None).run_if_due(at(10, 9, 0))
        worker = DeliveryWorker(db, lambda: None, send_email=EmailSender(config.email))
        assert await worker.deliver_due() == 1  # the e-mail; Telegram is not connected, those wait
        assert [m.sent_at is not None for m in await outbox(db)] == [False, False, True]
    finally:
        controller.stop()
    [mail] = inbox.messages
    assert mail["To"] == "owner@salon.example"
    assert mail["Subject"] == "LeadTrail: 2026-03-09"
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert parts["image/png"].get_payload(decode=True) == PNG
    assert "Отчёт за 09.03.2026" in parts["text/plain"].get_payload(decode=True).decode()


async def test_scheduler_plans_the_morning_report_in_the_local_zone_and_catches_up_at_start(
    db: Database,
) -> None:
    config = settings()
    calls: list[datetime] = []
    called = asyncio.Event()

    class Probe(DailyReportJob):
        async def run_if_due(self, now: datetime) -> bool:
            calls.append(now)
            called.set()
            return False

    scheduler = build_scheduler(config, Probe(db, config, render, lambda: None))
    scheduler.start()
    try:
        await asyncio.wait_for(called.wait(), 10)  # the catch-up job runs once, right away
        job = scheduler.get_job("daily-report")
        assert job is not None
        local = job.next_run_time.astimezone(MOSCOW)
        assert (local.hour, local.minute) == (9, 0)
    finally:
        scheduler.shutdown(wait=False)
    assert len(calls) == 1
