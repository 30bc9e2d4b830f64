"""The Bitrix24 link inside a real ``leadtrail run``: a lead over HTTP reaches the fake portal once with
its dialog, a deal won in the CRM comes back onto the client's timeline, and /crm tells the owner."""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from storage.crm_jobs import enqueue, mark_failed
from storage.database import open_database
from storage.timeline import find_client_ids, load_events
from tests.bot_harness import OWNER, STRANGER, bot_harness
from tests.fake_bitrix24 import FakeBitrix24
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
APP_TOKEN = "outbound-app-token-e2e"


async def eventually(check: Any, what: str, patience: float = 30) -> Any:
    deadline = time.monotonic() + patience
    while True:
        result = check()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


def client_json(query: str, config_path: Path) -> dict[str, Any] | None:
    result = leadtrail("client", query, "--json", "--config", str(config_path))
    return json.loads(result.stdout) if result.returncode == 0 else None


async def test_lead_round_trip_through_leadtrail_run(tmp_path: Path) -> None:
    port = free_port()
    async with FakeBitrix24() as portal, FakeBotAPI() as api:
        config_path = write_config(
            tmp_path / "config.toml",
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"},
                "ingest": {"port": port, "tokens": ["e2e-token"]},
                "telegram": {"token": BOT_TOKEN, "api_server": api.base_url, "owners": [OWNER]},
                "bitrix24": {
                    "webhook_url": portal.webhook_url,
                    "application_token": APP_TOKEN,
                    "poll_seconds": 0.2,
                },
            },
        )
        async with running_service(config_path, port, tmp_path / "run.log") as service:
            lead = {
                "timestamp": "2026-11-24T12:00:00+03:00",
                "channel": "telegram",
                "user_id": "tg_e2e",
                "event": "lead_created",
                "message": "Запишите на маникюр",
                "name": "Гульнара",
                "phone": "+7 917 000-11-22",
                "lead_id": "lead_e2e",
            }
            headers = {"Authorization": "Bearer e2e-token", "Content-Type": "application/json"}
            async with aiohttp.ClientSession() as http:
                async with http.post(
                    f"{service.url}/v1/events", data=orjson.dumps(lead), headers=headers
                ) as r:
                    assert r.status == 202

                await eventually(lambda: portal.comments, "the dialog comment in Bitrix24")
                [lead_id] = portal.leads
                assert portal.leads[lead_id]["NAME"] == "Гульнара"
                timeline = await asyncio.to_thread(client_json, f"BX_{lead_id}", config_path)
                assert timeline is not None and timeline["client"]["user_ids"] == ["tg_e2e"]

                deal_id = portal.add_deal(
                    LEAD_ID=str(lead_id),
                    STAGE_ID="WON",
                    STAGE_SEMANTIC_ID="S",
                    OPPORTUNITY="3200",
                    CURRENCY_ID="RUB",
                )
                form = {
                    "event": "ONCRMDEALUPDATE",
                    "data[FIELDS][ID]": str(deal_id),
                    "auth[application_token]": APP_TOKEN,
                }
                async with http.post(f"{service.url}/v1/bitrix24/events", data=form) as r:
                    assert r.status == 200

            db = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'run.db'}", apply_migrations=False)
            try:

                async def paid() -> bool:
                    async with db.sessions() as session:
                        [client_id] = await find_client_ids(session, "tg_e2e")
                        events = await load_events(session, client_id)
                    return any(item.event == "payment_status" and item.amount == 3200 for item in events)

                await eventually(paid, "the payment on the timeline")
            finally:
                await db.close()
            assert len(portal.leads) == 1

            # The job is marked done just after its event is stored: ask again until it is.
            for attempt in range(1, 20):
                api.send_private_message(OWNER, "/crm")
                text = (await api.wait_for("sendMessage", count=attempt, timeout=15))[-1].params["text"]
                if "В очереди: 0" in text:
                    break
                await asyncio.sleep(0.2)
            assert "Связь включена" in text and "Последний успешный обмен: ещё не было" not in text
            assert "принимаются на <code>POST /v1/bitrix24/events</code>" in text
            assert "В очереди: 0" in text and "Не удалось: 0" in text
            assert await service.stop() == 0
    log = service.log()
    assert "fake-webhook-secret" not in log and APP_TOKEN not in log and "Гульнара" not in log


async def test_crm_command_lists_failures_and_refuses_strangers(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        async with harness.db.sessions() as session, session.begin():
            await enqueue(session, "lead", {"event_row": 1, "origin_id": "client-1"}, "lead:1")
        async with harness.db.sessions() as session, session.begin():
            await mark_failed(session, 1, "INVALID_CREDENTIALS: <wrong webhook>")
            await enqueue(session, "fetch", {"event": "ONCRMLEADADD", "entity": "lead", "id": 5})
        harness.api.send_private_message(OWNER, "/crm")
        harness.api.send_private_message(STRANGER, "/crm")
        answers = await harness.api.wait_for("sendMessage", count=2, timeout=30)
    [owner_answer] = [call for call in answers if call.params["chat_id"] == OWNER]
    [stranger_answer] = [call for call in answers if call.params["chat_id"] == STRANGER]
    text = owner_answer.params["text"]
    assert owner_answer.params["chat_id"] == OWNER
    assert "Связь выключена" in text and "В очереди: 1" in text and "Не удалось: 1" in text
    assert "лид: <code>INVALID_CREDENTIALS: &lt;wrong webhook&gt;</code>" in text
    assert (
        stranger_answer.params["chat_id"] == STRANGER
        and "только владельцам" in stranger_answer.params["text"]
    )
