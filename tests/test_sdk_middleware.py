"""The tracker inside a real aiogram salon bot polling the fake Bot API, sending to ``leadtrail run``."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import Message

from leadtrail_sdk import EventClient, LeadTrailTracker
from leadtrail_sdk.middleware import EventSink
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config
from tests.test_sdk_client import wait_until

BOT_TOKEN = "123456:SALON-token_abcdefghijklmnop"
INGEST_TOKEN = "salon-bot"
CLIENT_ID = 5550001
ANNA = {"id": CLIENT_ID, "is_bot": False, "first_name": "Анна", "last_name": "Иванова", "language_code": "ru"}
ANNA_WRITES: dict[str, Any] = {"from": ANNA}  # the fake's helper sets only a first name
ANSWER = "Когда вам удобно? Сегодня в 18:00 свободно."


def salon_router() -> Router:
    """The salon's assistant, reduced to one rule: every text is a booking request."""
    router = Router()

    @router.message(F.text)
    async def booking_request(message: Message, tracker: LeadTrailTracker) -> None:
        """Answers a booking request and records the lead."""
        tracker.annotate(intent="booking.request", confidence=0.92, scenario="v2", action="lead_created")
        tracker.log_event("lead_created", lead_id="lead_2025_001", phone="+7 900 123-45-67")
        await message.answer(ANSWER)

    return router


@asynccontextmanager
async def salon_bot(api: FakeBotAPI, sink: EventSink, router: Router | None = None) -> AsyncIterator[Bot]:
    """The salon's bot polling the fake Bot API, with LeadTrail registered in the documented two lines."""
    bot = Bot(BOT_TOKEN, session=AiohttpSession(api=TelegramAPIServer.from_base(api.base_url)))
    tracker = LeadTrailTracker(sink)
    dp = Dispatcher(tracker=tracker)
    dp.include_router(router or salon_router())
    tracker.setup(dp, bot)
    polling = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        yield bot
    finally:
        await dp.stop_polling()
        await asyncio.wait_for(polling, 10)
        await bot.session.close()


def by_event(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in events:
        grouped.setdefault(event["event"], []).append(event)
    return grouped


@pytest.mark.slow
async def test_a_dialog_lands_in_the_timeline_with_response_time_and_intent(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"},
            "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
        },
    )
    async with running_service(config, port, tmp_path / "run.log") as service, FakeBotAPI() as api:
        client = EventClient(service.url, INGEST_TOKEN, spool_dir=tmp_path / "spool", flush_interval=0.05)
        async with salon_bot(api, client) as bot:
            api.send_private_message(CLIENT_ID, "Хочу записаться на стрижку", **ANNA_WRITES)
            [answer] = await api.wait_for("sendMessage")
            assert answer.params["text"] == ANSWER
            await wait_until(lambda: client.stats.sent == 3)
            await bot.send_message(CLIENT_ID, "Напоминаем: завтра в 18:00")  # a reminder, outside any update
            await wait_until(lambda: client.stats.sent == 4)
        await client.aclose()
        assert (client.stats.spooled, client.stats.rejected) == (0, 0)

    result = await asyncio.to_thread(
        leadtrail, "client", f"tg_{CLIENT_ID}", "--json", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    timeline = json.loads(result.stdout)
    assert timeline["client"]["name"] == "Анна Иванова"
    assert timeline["client"]["phones"] == ["+79001234567"]
    events = by_event(timeline["events"])
    assert set(events) == {"message_received", "assistant_response", "lead_created"}

    [received] = events["message_received"]
    assert received["message"] == "Хочу записаться на стрижку"
    assert (received["channel"], received["name"]) == ("telegram", "Анна Иванова")
    assert isinstance(received["message_id"], int)

    answered, reminder = events["assistant_response"]
    assert answered["assistant_response"] == ANSWER
    assert 0 <= answered["response_time_ms"] < 5000
    assert (answered["intent"], answered["confidence"], answered["scenario"]) == (
        "booking.request",
        0.92,
        "v2",
    )
    assert answered["message_id"] != received["message_id"]
    assert reminder["assistant_response"] == "Напоминаем: завтра в 18:00"
    assert "response_time_ms" not in reminder
    assert "intent" not in reminder

    [lead] = events["lead_created"]
    assert (lead["lead_id"], lead["user_id"], lead["channel"]) == (
        "lead_2025_001",
        f"tg_{CLIENT_ID}",
        "telegram",
    )


def modelled_router() -> Router:
    """An assistant that classifies the intent with a cheap model, then answers with a bigger one."""
    router = Router()

    @router.message(F.text)
    async def answer_with_a_model(message: Message, tracker: LeadTrailTracker) -> None:
        """Logs the classification as an llm_call and the answer's own call on the answer."""
        tracker.log_event(
            "llm_call", model="yandexgpt-lite", input_tokens=300, output_tokens=5, scenario="v2"
        )
        tracker.annotate(intent="price.question", model="yandexgpt-pro", input_tokens=1800, output_tokens=200)
        await message.answer(ANSWER)

    return router


@pytest.mark.slow
async def test_the_answer_and_the_step_before_it_carry_their_model_calls(tmp_path: Path) -> None:
    port = free_port()
    prices = [
        {"model": "yandexgpt-lite", "input_per_million": 200, "output_per_million": 200},
        {"model": "yandexgpt-pro", "input_per_million": 1200, "output_per_million": 1200},
    ]
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"},
            "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
            "ai": {"prices": prices},
        },
    )
    async with running_service(config, port, tmp_path / "run.log") as service, FakeBotAPI() as api:
        client = EventClient(service.url, INGEST_TOKEN, spool_dir=tmp_path / "spool", flush_interval=0.05)
        async with salon_bot(api, client, modelled_router()):
            api.send_private_message(CLIENT_ID, "Сколько стоит стрижка?", **ANNA_WRITES)
            await api.wait_for("sendMessage")
            await wait_until(lambda: client.stats.sent == 3)
        await client.aclose()
    result = await asyncio.to_thread(
        leadtrail, "client", f"tg_{CLIENT_ID}", "--json", "--config", str(config)
    )
    timeline = json.loads(result.stdout)
    events = by_event(timeline["events"])
    [step] = events["llm_call"]
    assert (step["model"], step["input_tokens"], step["output_tokens"], step["cost"]) == (
        "yandexgpt-lite",
        300,
        5,
        0.061,
    )
    [answered] = events["assistant_response"]
    assert (answered["model"], answered["intent"], answered["cost"]) == (
        "yandexgpt-pro",
        "price.question",
        2.4,
    )
    assert timeline["client"]["ai_cost"]["total"] == 2.461


class BrokenSink:
    """A client that fails on every event, the way a bug or a full disk would."""

    def __init__(self) -> None:
        self.calls = 0

    def log(self, event: dict[str, Any]) -> None:
        self.calls += 1
        raise RuntimeError(f"cannot log {event!r}")


async def test_the_bot_keeps_answering_when_the_client_fails(caplog: pytest.LogCaptureFixture) -> None:
    sink = BrokenSink()
    async with FakeBotAPI() as api, salon_bot(api, sink):
        for n in range(2):
            api.send_private_message(CLIENT_ID, f"Хочу записаться, звоните +7 900 000-00-0{n}")
        calls = await api.wait_for("sendMessage", count=2)
        assert [call.params["text"] for call in calls] == [ANSWER, ANSWER]
        await api.wait_confirmed()
        await wait_until(lambda: sink.calls == 6)  # message_received, lead_created, assistant_response, twice
    failures = [record for record in caplog.records if "LeadTrail tracker" in record.getMessage()]
    assert len(failures) == 6
    assert {record.getMessage().split(" failed")[0] for record in failures} == {
        "LeadTrail tracker: message_received",
        "LeadTrail tracker: log_event",
        "LeadTrail tracker: assistant_response",
    }
    assert "+7 900" not in caplog.text
    assert "Хочу" not in caplog.text
