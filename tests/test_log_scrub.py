"""No personal data or secrets in the log: a full scenario through a real ``leadtrail run`` at INFO.

Ingest with texts, phones and names, bad events into quarantine, a request aiohttp cannot parse, owner
commands and a stranger through the fake Bot API; then every line the process wrote is searched.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, running_service, write_config

BOT_TOKEN = "123456:SCRUB-secret_abcdefghijklmnopq"
INGEST_TOKEN = "ingest-secret-token-7f3a9c"
SOURCE_TOKEN = "source-secret-token-1b2c3d"
OWNER, STRANGER = 1001, 2002
NAME, MESSAGE, PHONE = "Гузель Шайхутдинова", "хочу записаться на шугаринг в пятницу", "+7 (917) 555-12-34"
STRANGER_NAME = "Незнакомец Подозрительный"


def events() -> list[dict[str, Any]]:
    base = {"timestamp": "2025-03-01T10:00:00+03:00", "channel": "telegram", "user_id": "tg_secret_77"}
    return [
        {**base, "event": "message_received", "name": NAME, "phone": PHONE, "message": MESSAGE},
        {
            **base,
            "event": "assistant_response",
            "assistant_response": f"{NAME}, запишу вас",
            "intent": "book",
        },
    ]


async def post(url: str, token: str, body: bytes, content_type: str = "application/json") -> int:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/events", data=body, headers=headers) as r,
    ):
        return r.status


async def unparsable(port: int) -> int:
    """A header with a NUL after the token: aiohttp's parser error quotes the whole header line."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
        + INGEST_TOKEN.encode()
        + b"\x00\r\nContent-Length: 2\r\n\r\n{}"
    )
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


def forbidden(log: str) -> list[str]:
    """Every secret or personal value found in the log, in any of the forms it could take."""
    digits = re.sub(r"\D", "", PHONE)
    needles = {
        "bot token": BOT_TOKEN,
        "bot token secret": BOT_TOKEN.split(":", 1)[1],
        "ingest token": INGEST_TOKEN,
        "source token": SOURCE_TOKEN,
        "message text": MESSAGE,
        "message word": "шугаринг",
        "phone": PHONE,
        "phone digits": digits,
        "phone local": digits[1:],
        "name": NAME,
        "surname": "Шайхутдинова",
        "stranger name": "Подозрительный",
        "user id": "tg_secret_77",
    }
    return [what for what, needle in needles.items() if needle.lower() in log.lower()]


@pytest.mark.slow
async def test_a_full_scenario_leaves_no_secret_or_personal_data_in_the_log(tmp_path: Path) -> None:
    port = free_port()
    async with FakeBotAPI() as api:
        config = write_config(
            tmp_path / "config.toml",
            {
                "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'scrub.db'}"},
                "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
                "telegram": {"token": BOT_TOKEN, "api_server": api.base_url, "owners": [OWNER]},
            },
        )
        config.write_text(
            config.read_text(encoding="utf-8")
            + f'\n[[ingest.sources]]\nname = "crm"\ntoken = "{SOURCE_TOKEN}"\nchannels = ["crm"]\n'
            "rate_per_second = 1\n",
            encoding="utf-8",
        )
        async with running_service(config, port, tmp_path / "run.log") as service:
            url = service.url
            assert await post(url, INGEST_TOKEN, orjson.dumps(events())) == 202
            bad = [{**events()[0], "timestamp": f"не время {PHONE}", "event_id": "x"}, events()[0]]
            assert await post(url, INGEST_TOKEN, orjson.dumps(bad)) == 207
            assert await post(url, INGEST_TOKEN, f"{{{MESSAGE} {PHONE}".encode()) == 400
            ndjson = orjson.dumps(events()[0]) + f"\n{NAME}\n".encode()
            assert await post(url, INGEST_TOKEN, ndjson, "application/x-ndjson") == 207
            assert await post(url, SOURCE_TOKEN, orjson.dumps(events())) == 422  # outside its channels
            assert await post(url, SOURCE_TOKEN, orjson.dumps(events())) == 429
            assert await post(url, f"{INGEST_TOKEN}x", orjson.dumps(events())) == 401
            assert await unparsable(port) == 400

            for command in (
                "/start",
                f"/client {PHONE}",
                "/client tg_secret_77",
                "/search шугаринг",
                "/report",
            ):
                api.send_private_message(OWNER, command)
            api.send_private_message(OWNER, f"/client {NAME}")
            api.send_private_message(STRANGER, f"привет, я {STRANGER_NAME}", first_name=STRANGER_NAME)
            api.press_button(STRANGER, "cl1:d:1:0")
            api.press_button(OWNER, "cl1:j:1:0")
            await api.wait_for("sendPhoto", timeout=60)
            await api.wait_for("sendMediaGroup", timeout=60)
            sent = await api.wait_for("sendMessage", count=7, timeout=60)
            assert any(MESSAGE in call.params["text"] for call in sent)  # the data did flow through the bot
            assert await service.stop() == 0
    log = service.log()
    assert "LeadTrail is ready" in log and "rejected" in log and "rate limit" in log  # INFO and WARNING lines
    assert forbidden(log) == [], log[-3000:]
