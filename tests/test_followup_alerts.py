"""What the follow-up lists send by themselves: the ``unanswered`` alert from check to chat, and the
morning report's line with its button; delivered by the outbox worker through aiogram to the fake Bot
API, the buttons pressed through the real dispatcher."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.runtime.delivery import DeliveryWorker
from bot.runtime.email_delivery import build_email
from bot.runtime.jobs.alerts import AlertEngine
from bot.runtime.jobs.daily_report import morning_report, queue_morning_report
from bot.runtime.telegram_link import create_bot
from bot.settings import EmailSettings
from bot.telegram.views.followup import FollowupAction, FollowupCallback
from reports.periods import Period
from storage.followup_items import ListKind
from storage.models import AlertState, OutboxMessage
from storage.outbox import due_deliveries
from storage.timeline import find_client_ids
from tests.bot_harness import OWNER, bot_harness
from tests.followup_data import followup_events
from tests.test_bot_clients import buttons, write

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2025, 3, 15, 14, 0, tzinfo=MOSCOW)
STAFF = 3003


def message(user: str, at: datetime, text: str = "Есть окно на завтра?") -> dict[str, Any]:
    return {"timestamp": at.isoformat(), "event": "message_received", "user_id": user, "message": text}


async def test_waiting_clients_reach_owners_and_staff_once_in_working_hours(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, staff=[STAFF]) as harness:
        api, db = harness.api, harness.db
        engine = AlertEngine(db, harness.settings, lambda: None)
        bot = create_bot(harness.settings)
        worker = DeliveryWorker(db, lambda: bot)
        try:
            await write(harness, *followup_events(NOW), message("wa_second", NOW - timedelta(minutes=30)))

            # One message per waiting client, to the owner and to the staff member, with a card button.
            assert len(await engine.check(NOW)) == 2
            assert await worker.deliver_due() == 4
            sent = api.calls_of("sendMessage")
            assert sorted(call.params["chat_id"] for call in sent) == sorted([OWNER, OWNER, STAFF, STAFF])
            alsu = next(
                call for call in sent if call.params["chat_id"] == STAFF and "Алсу" in call.params["text"]
            )
            assert "Клиент ждёт ответа 1\xa0ч: Алсу Ждущая (tg_wait), канал telegram." in alsu.params["text"]
            assert (
                "«Здравствуйте! Можно записаться на &lt;b&gt;маникюр&lt;/b&gt; &amp; педикюр"
                in alsu.params["text"]
            )
            async with db.sessions() as session:
                [waiting_id] = await find_client_ids(session, "tg_wait")
            [card] = buttons(alsu)
            opened = FollowupCallback(
                action=FollowupAction.OPEN, kind=ListKind.UNANSWERED, client_id=waiting_id
            )
            assert card["callback_data"] == opened.pack()
            async with db.sessions() as session:
                texts = [row.text for row in (await session.execute(select(OutboxMessage))).scalars()]
            assert texts == [""] * 4  # delivered: the client's words are no longer kept in the outbox

            # No repeat for the same waiting message; a reply closes it silently.
            assert await engine.check(NOW + timedelta(minutes=10)) == []
            reply = {"timestamp": (NOW + timedelta(minutes=12)).isoformat(), "event": "assistant_response",
                     "user_id": "tg_wait", "assistant_response": "Да, есть"}  # fmt: skip
            await write(harness, reply)
            assert await engine.check(NOW + timedelta(minutes=15)) == []
            async with db.sessions() as session:
                scopes = set((await session.execute(select(AlertState.scope))).scalars())
            assert str(waiting_id) not in scopes

            # A burst over the limit (5) is one summary, with a button to the lists.
            burst_at = NOW + timedelta(minutes=20)
            await write(harness, *(message(f"tg_burst_{n}", burst_at) for n in range(6)))
            [summary] = await engine.check(NOW + timedelta(minutes=35))
            assert "Ждут ответа дольше 10 мин: 6 клиентов" in summary
            assert await worker.deliver_due() == 2
            summary_call = api.calls_of("sendMessage")[-1]
            [lists_button] = buttons(summary_call)
            api.press_button(STAFF, lists_button["callback_data"])
            lists = (await api.wait_for("sendMessage", count=7, timeout=30))[-1]
            assert lists.params["chat_id"] == STAFF and "Кому ответить и позвонить" in lists.params["text"]

            # Outside working hours nothing is said; whoever still waits is told when the day starts, once.
            await write(harness, message("tg_night", NOW.replace(hour=20, minute=55)))
            assert await engine.check(NOW.replace(hour=21, minute=10)) == []
            [morning] = await engine.check(NOW.replace(hour=9) + timedelta(days=1))
            assert "tg_night" in morning  # the burst's clients still wait, but were told already
        finally:
            await bot.session.close()


async def test_morning_report_carries_the_lists_line_and_a_button_to_them(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, staff=[STAFF]) as harness:
        api, db = harness.api, harness.db
        settings = harness.settings.model_copy(
            update={"email": EmailSettings(owners=["owner@salon.example"])}
        )
        await write(harness, *followup_events(datetime.now(MOSCOW)))
        yesterday = datetime.now(MOSCOW).date() - timedelta(days=1)
        report = await morning_report(db, settings, Period(yesterday, yesterday))
        assert report.text.endswith(
            "📋 <b>Кому ответить и позвонить сегодня</b>: без ответа: 1 · заявки без записи: 1 · неявки: 1 · "
            "пора позвать снова: 2 — /followup"
        )
        async with db.sessions() as session, session.begin():
            assert await queue_morning_report(session, settings, report) == 2  # the owner and the e-mail
        async with db.sessions() as session:
            [email] = [
                item for item in await due_deliveries(session, datetime.now(UTC)) if item.channel == "email"
            ]
        assert (
            "Кому ответить и позвонить сегодня" in build_email(settings.email, email).get_body().get_content()
        )

        bot = create_bot(settings)
        try:
            assert await DeliveryWorker(db, lambda: bot).deliver_due() == 1  # e-mail is not configured here
        finally:
            await bot.session.close()
        [text] = [call for call in api.calls_of("sendMessage") if call.params["chat_id"] == OWNER]
        assert [call.params["chat_id"] for call in api.calls_of("sendMediaGroup")] == [OWNER]  # the charts
        [open_lists] = buttons(text)
        api.press_button(OWNER, open_lists["callback_data"])
        lists = (await api.wait_for("sendMessage", count=2, timeout=30))[-1]
        assert "💬 Без ответа: 1" in lists.params["text"]
