"""``leadtrail run`` as a real process: HTTP in, CLI out, the bot through the real aiogram stack."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.conftest import SEED_EVENT
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
OWNER, STRANGER = 1001, 2002


def config(tmp_path: Path, port: int, **telegram: Any) -> Path:
    sections: dict[str, Any] = {
        "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"},
        "ingest": {"port": port, "tokens": ["e2e-token"]},
    }
    if telegram:
        sections["telegram"] = telegram
    return write_config(tmp_path / "config.toml", sections)


async def post(url: str, body: Any) -> tuple[int, Any]:
    headers = {"Authorization": "Bearer e2e-token", "Content-Type": "application/json"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/events", data=orjson.dumps(body), headers=headers) as r,
    ):
        return r.status, await r.json()


async def test_seed_event_over_http_appears_in_client_timeline_by_user_and_crm_id(tmp_path: Path) -> None:
    port = free_port()
    config_path = config(tmp_path, port)
    async with running_service(config_path, port, tmp_path / "run.log") as service:
        assert await post(service.url, SEED_EVENT) == (202, {"accepted": 1, "duplicates": 0})
        assert await post(service.url, SEED_EVENT) == (202, {"accepted": 0, "duplicates": 1})
        for query in ("tg_12345", "BX_67890"):
            # --config after the other arguments, as design.md promises.
            result = await asyncio.to_thread(
                leadtrail, "client", query, "--json", "--config", str(config_path)
            )
            assert result.returncode == 0, result.stderr
            timeline = json.loads(result.stdout)
            assert timeline["client"]["user_ids"] == ["tg_12345"]
            assert timeline["client"]["crm_ids"] == ["BX_67890"]
            [event] = timeline["events"]
            assert event["timestamp"] == "2025-01-01T12:34:56.000+03:00"
            assert event["message"] == SEED_EVENT["message"]
            assert event["lead_id"] == "lead_2025_001"
        assert await service.stop() == 0
    assert "stopped" in service.log()


async def test_owner_gets_start_and_stranger_one_refusal(tmp_path: Path) -> None:
    port = free_port()
    async with FakeBotAPI() as api:
        config_path = config(tmp_path, port, token=BOT_TOKEN, api_server=api.base_url, owners=[OWNER])
        async with running_service(config_path, port, tmp_path / "run.log") as service:
            api.send_private_message(OWNER, "/start")
            [answer] = await api.wait_for("sendMessage", timeout=15)
            assert answer.params["chat_id"] == OWNER
            assert "LeadTrail" in answer.params["text"]
            assert answer.params["parse_mode"] == "HTML"

            api.send_private_message(STRANGER, "/start", first_name="Чужой")
            calls = await api.wait_for("sendMessage", count=2, timeout=15)
            refusal = calls[1]
            assert refusal.params["chat_id"] == STRANGER
            assert "только владельцам" in refusal.params["text"]
            assert "LeadTrail" not in refusal.params["text"]
            assert (await service.healthz())["telegram"] == "up"
            assert await service.stop() == 0


async def test_ingestion_goes_on_when_telegram_is_unreachable(tmp_path: Path) -> None:
    port, dead_port = free_port(), free_port()
    config_path = config(
        tmp_path, port, token=BOT_TOKEN, api_server=f"http://127.0.0.1:{dead_port}", owners=[OWNER]
    )
    async with running_service(config_path, port, tmp_path / "run.log") as service:
        assert await post(service.url, SEED_EVENT) == (202, {"accepted": 1, "duplicates": 0})
        for _ in range(50):
            if (await service.healthz())["telegram"] == "down":
                break
            await asyncio.sleep(0.1)
        assert await service.healthz() == {
            "status": "ok",
            "storage": "ok",
            "telegram": "down",
            "scheduler": "leader",
        }
        await asyncio.sleep(3.5)  # long enough for at least two retries
        assert await service.stop() == 0
    log = service.log()
    assert log.count("Bot API unreachable") == 1
    assert BOT_TOKEN not in log


async def test_sigterm_under_load_keeps_every_acknowledged_event(tmp_path: Path) -> None:
    port = free_port()
    config_path = config(tmp_path, port)
    acknowledged: set[str] = set()
    refusals: list[tuple[int, str | None]] = []
    stop_sending = asyncio.Event()
    enough_acknowledged = asyncio.Event()

    async def sender(url: str, number: int) -> None:
        headers = {"Authorization": "Bearer e2e-token", "Content-Type": "application/json"}
        async with aiohttp.ClientSession() as http:
            for batch in range(10_000):
                if stop_sending.is_set():
                    return
                ids = [f"s{number}-{batch}-{n}" for n in range(20)]
                body = orjson.dumps([{**SEED_EVENT, "event_id": event_id} for event_id in ids])
                try:
                    async with http.post(f"{url}/v1/events", data=body, headers=headers) as response:
                        if response.status == 202:
                            acknowledged.update(ids)
                            if len(acknowledged) >= 2000:
                                enough_acknowledged.set()
                        else:
                            refusals.append((response.status, response.headers.get("Retry-After")))
                except aiohttp.ClientError:
                    return

    async with running_service(config_path, port, tmp_path / "run.log") as service:
        senders = [asyncio.create_task(sender(service.url, n)) for n in range(8)]
        await asyncio.wait_for(enough_acknowledged.wait(), 60)
        assert await service.stop() == 0
        stop_sending.set()
        await asyncio.gather(*senders)
    result = await asyncio.to_thread(leadtrail, "client", "tg_12345", "--json", "--config", str(config_path))
    stored = {event["event_id"] for event in json.loads(result.stdout)["events"]}
    assert acknowledged <= stored
    assert len(acknowledged) >= 2000
    # While draining, newcomers are told to come back later, never given another error.
    assert all(status == 503 and retry_after for status, retry_after in refusals)
