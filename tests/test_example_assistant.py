"""The example salon assistant: its rules, and a dialog through it landing in LeadTrail."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from bot.sdk import EventClient
from examples.salon_assistant.bot import create_router
from examples.salon_assistant.dialog import Outcome, answer
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config
from tests.test_sdk_client import wait_until
from tests.test_sdk_middleware import salon_bot


@pytest.mark.parametrize(
    ("text", "intent", "outcome"),
    [
        ("Здравствуйте, хочу записаться на стрижку", "booking.request", Outcome.LEAD),
        ("Есть время сегодня после 19?", "booking.evening", Outcome.REFUSAL),
        ("Сколько стоит стрижка с бородой?", "price.question", Outcome.NONE),
        ("Где вы находитесь?", "address.question", Outcome.NONE),
        ("Да, давайте", "booking.confirm", Outcome.BOOKING),
        ("Дорого, не буду", "refusal.other", Outcome.REFUSAL),
        ("Привет", "smalltalk", Outcome.NONE),
    ],
)
def test_rules(text: str, intent: str, outcome: Outcome) -> None:
    reply = answer(text)
    assert (reply.intent, reply.outcome) == (intent, outcome)


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
            api.send_private_message(777, "А есть вечером, после 19?")
            await api.wait_for("sendMessage", count=2)
            await wait_until(lambda: client.stats.sent == 6)
        await client.aclose()
    result = await asyncio.to_thread(leadtrail, "client", "tg_777", "--json", "--config", str(config))
    events = json.loads(result.stdout)["events"]
    assert [event["event"] for event in events].count("assistant_response") == 2
    assert {event.get("intent") for event in events} >= {"booking.request", "booking.evening"}
    [refusal] = [event for event in events if event["event"] == "refusal"]
    assert refusal["reason"] == "нет свободных вечерних слотов"
    assert any(event["event"] == "lead_created" for event in events)
