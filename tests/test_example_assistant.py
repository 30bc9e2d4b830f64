"""The example salon assistant: its rules, and a dialog through it landing in LeadTrail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.demo.generator import (
    CONFIRM_MESSAGES,
    FOLLOW_UPS,
    OPENINGS,
    RESCHEDULE_TURN,
    RETURNING_OPENINGS,
    TELEGRAM_GIVE_UPS,
)
from bot.demo.salon_assistant.bot import create_router
from bot.demo.salon_assistant.dialog import EVENING_SLOTS_REASON, Outcome, answer, phone_in
from leadtrail_sdk import EventClient
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config
from tests.test_sdk_client import wait_until
from tests.test_sdk_middleware import salon_bot


@pytest.mark.parametrize(
    ("text", "intent", "outcome", "reason"),
    [
        ("Здравствуйте, хочу записаться на стрижку", "booking.request", Outcome.NONE, None),
        ("Есть время сегодня после 19?", "booking.evening", Outcome.NONE, None),
        ("Хочу записаться после работы, к 20:00", "booking.evening", Outcome.NONE, None),
        ("Сколько стоит стрижка с бородой?", "price.question", Outcome.NONE, None),
        ("Где вы находитесь?", "address.question", Outcome.NONE, None),
        ("Айдар, +7 917 123-45-67", "contact.provided", Outcome.LEAD, None),
        ("Да, давайте", "booking.confirm", Outcome.BOOKING, None),
        ("Дорого, не буду", "refusal", Outcome.REFUSAL, "дорого"),
        ("Мне только вечером удобно, тогда не надо", "refusal", Outcome.REFUSAL, EVENING_SLOTS_REASON),
        ("Передумал, не надо", "refusal", Outcome.REFUSAL, "передумал"),
        ("Привет", "smalltalk", Outcome.NONE, None),
    ],
)
def test_rules(text: str, intent: str, outcome: Outcome, reason: str | None) -> None:
    reply = answer(text)
    assert (reply.intent, reply.outcome, reply.reason) == (intent, outcome, reason)


def test_phone_is_taken_as_written() -> None:
    assert phone_in("Айдар, +7 917 123-45-67, жду") == "+7 917 123-45-67"
    assert phone_in("Хочу записаться на 12:00") is None


def test_the_demo_clients_words_lead_the_rules_to_the_story() -> None:
    """The demo's Telegram story holds only if these texts mean to the assistant what the month means."""
    talk = [
        *(text for messages, _ in OPENINGS.values() for text in messages),
        *RETURNING_OPENINGS[0],
        *RESCHEDULE_TURN[0],
        *(text for text, _, _ in FOLLOW_UPS),
    ]
    assert [text for text in talk if answer(text).outcome is not Outcome.NONE] == []
    assert {answer(text).outcome for text in CONFIRM_MESSAGES} == {Outcome.BOOKING}
    for reason, texts in TELEGRAM_GIVE_UPS.items():
        assert {(answer(text).outcome, answer(text).reason) for text in texts} == {(Outcome.REFUSAL, reason)}
    evening_openings = OPENINGS["booking.evening"][0]
    assert {answer(text).intent for text in evening_openings} == {"booking.evening"}


async def test_a_dialog_with_the_example_bot_lands_in_the_timeline(tmp_path: Path) -> None:
    port = free_port()
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'lt.db'}"},
            "ingest": {"port": port, "tokens": ["s"]},
        },
    )
    async with running_service(config, port, tmp_path / "run.log") as service, FakeBotAPI() as api:
        client = EventClient(service.url, "s", spool_dir=tmp_path / "spool", flush_interval=0.05)
        async with salon_bot(api, client, create_router()):
            api.send_private_message(777, "Хочу записаться на стрижку")
            await api.wait_for("sendMessage")
            api.send_private_message(777, "Анна, +7 917 123-45-67")
            await api.wait_for("sendMessage", count=2)
            api.send_private_message(777, "А вечером никак? Тогда не надо")
            await api.wait_for("sendMessage", count=3)
            # 3 messages, 3 answers, a model call before each answer, the lead and the refusal.
            await wait_until(lambda: client.stats.sent == 11)
        await client.aclose()
    result = await asyncio.to_thread(leadtrail, "client", "tg_777", "--json", "--config", str(config))
    events = json.loads(result.stdout)["events"]
    assert [event["event"] for event in events].count("assistant_response") == 3
    assert [event["event"] for event in events].count("llm_call") == 3
    assert {event.get("intent") for event in events} >= {"booking.request", "contact.provided", "refusal"}
    [lead] = [event for event in events if event["event"] == "lead_created"]
    [refusal] = [event for event in events if event["event"] == "refusal"]
    assert refusal["reason"] == "нет свободных вечерних слотов"
    assert refusal["lead_id"] == lead["lead_id"]
