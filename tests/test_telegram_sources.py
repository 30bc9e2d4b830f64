"""Events that arrive through Telegram: channel posts, source bots in private, attached files."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import orjson

from tests.conftest import SEED_EVENT
from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, leadtrail, running_service, write_config

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
OWNER, SOURCE_BOT, SOURCE_PERSON, STRANGER = 1001, 777, 555, 2002
CHANNEL = -1001234567890


async def stored_event_ids(config_path: Path, user_id: str) -> set[str]:
    result = await asyncio.to_thread(leadtrail, "client", user_id, "--json", "--config", str(config_path))
    if result.returncode != 0:
        return set()
    return {event["event_id"] for event in json.loads(result.stdout)["events"]}


async def wait_stored(config_path: Path, user_id: str, count: int) -> set[str]:
    for _ in range(100):
        ids = await stored_event_ids(config_path, user_id)
        if len(ids) >= count:
            return ids
        await asyncio.sleep(0.2)
    raise AssertionError(f"expected {count} events of {user_id}, found {len(ids)}")


def event(n: int, user: str = "tg_500") -> dict[str, object]:
    return {**SEED_EVENT, "user_id": user, "event_id": f"tg-src-{n}"}


async def test_channel_private_and_file_sources_store_events_and_bad_input_is_noticed_once(
    tmp_path: Path,
) -> None:
    port = free_port()
    async with FakeBotAPI() as api:
        config_path = write_config(
            tmp_path / "config.toml",
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'tg.db'}"},
                "ingest": {"port": port, "tokens": ["t"]},
                "telegram": {
                    "token": BOT_TOKEN,
                    "api_server": api.base_url,
                    "owners": [OWNER],
                    "event_channel_id": CHANNEL,
                    "source_bots": [SOURCE_BOT],
                    "source_users": [SOURCE_PERSON],
                },
            },
        )
        async with running_service(config_path, port, tmp_path / "run.log") as service:
            api.post_in_channel(CHANNEL, orjson.dumps(event(1)).decode())
            api.post_in_channel(CHANNEL, orjson.dumps([event(2), event(3)]).decode())
            bot_sender = {
                "id": SOURCE_BOT,
                "is_bot": True,
                "first_name": "Салон-бот",
                "username": "salon_bot",
            }
            api.send_private_message(SOURCE_BOT, orjson.dumps(event(4)).decode(), **{"from": bot_sender})
            ndjson = b"\n".join(orjson.dumps(event(n)) for n in (5, 6, 7))
            document = api.add_file(ndjson, "events.ndjson")
            api.send_private_message(SOURCE_PERSON, "", document={**document, "file_name": "events.ndjson"})
            assert await wait_stored(config_path, "tg_500", 7) == {f"tg-src-{n}" for n in range(1, 8)}

            # Two bad posts: both quarantined, the owners get one notice, the good event beside them is kept.
            api.post_in_channel(CHANNEL, "это не JSON")
            api.post_in_channel(CHANNEL, orjson.dumps([event(8), {"event": "x"}]).decode())
            await wait_stored(config_path, "tg_500", 8)
            notices = await api.wait_for("sendMessage", timeout=15)
            await asyncio.sleep(1)

            # A stranger's JSON is not taken as events.
            api.send_private_message(STRANGER, orjson.dumps(event(9)).decode())
            calls = await api.wait_for("sendMessage", count=2, timeout=15)
            assert await service.stop() == 0

        owner_notices = [call for call in api.calls_of("sendMessage") if call.params["chat_id"] == OWNER]
        assert len(owner_notices) == 1
        assert "отклонено: 1" in notices[0].params["text"]
        assert calls[1].params["chat_id"] == STRANGER
        assert "tg-src-9" not in await stored_event_ids(config_path, "tg_500")
        quarantine = await asyncio.to_thread(leadtrail, "quarantine", "--json", "--config", str(config_path))
        items = json.loads(quarantine.stdout)["items"]
        assert {item["source"] for item in items} == {"telegram:channel"}
        assert any(item["payload"] == "это не JSON" for item in items)
        assert len(items) == 2
