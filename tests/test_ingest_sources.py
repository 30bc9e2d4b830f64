"""Per-source ingest tokens over real HTTP: channel scope per event, 429 over the rate, plain tokens too."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from sqlalchemy import select

from bot.ingestion.auth import TokenBucket
from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import ConfigError, Settings, load_settings
from storage.database import open_database
from storage.models import StoredEvent

SOURCES = [
    {"name": "salon_bot", "token": "salon-token", "channels": ["telegram"], "rate_per_second": 1000},
    {"name": "slow_crm", "token": "crm-token", "rate_per_second": 2},
]


def event(n: int, channel: str) -> dict[str, Any]:
    return {
        "timestamp": "2025-03-01T10:00:00+03:00",
        "event": "message_received",
        "user_id": f"u{n}",
        "channel": channel,
        "event_id": f"src-{n}",
    }


@pytest.fixture
async def post(tmp_path: Path) -> AsyncIterator[Any]:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'src.db'}"},
        ingest={"tokens": ["plain-token"], "sources": SOURCES},
    )
    db = await open_database(settings.database.url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)

    async def send(token: str, body: Any) -> tuple[int, Any, dict[str, str], set[str]]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"http://127.0.0.1:{port}/v1/events", data=orjson.dumps(body), headers=headers) as r,
        ):
            answer = await r.json()
        async with db.sessions() as session:
            stored = set((await session.execute(select(StoredEvent.event_id))).scalars())
        return r.status, answer, dict(r.headers), stored

    try:
        yield send
    finally:
        await runner.cleanup()
        await writer.close()
        await db.close()


async def test_a_scoped_token_is_refused_other_channels_per_event(post: Any) -> None:
    status, answer, _, stored = await post("salon-token", [event(1, "telegram"), event(2, "whatsapp")])
    assert status == 207
    [error] = answer["errors"]
    assert (error["index"], error["field"]) == (1, "channel")
    assert "'whatsapp'" in error["message"] and "telegram" in error["message"]
    assert stored == {"src-1"}

    status, answer, _, _ = await post("salon-token", [event(3, "avito")])
    assert status == 422 and answer["errors"][0]["field"] == "channel"


async def test_plain_and_unscoped_tokens_send_any_channel(post: Any) -> None:
    assert (await post("plain-token", [event(1, "avito"), event(2, "telegram")]))[0] == 202
    status, _, _, stored = await post("crm-token", [event(3, "bitrix")])
    assert status == 202 and stored == {"src-1", "src-2", "src-3"}
    assert (await post("nope", [event(4, "telegram")]))[0] == 401


async def test_over_the_rate_is_429_with_retry_after_and_other_sources_unaffected(post: Any) -> None:
    statuses = [(await post("crm-token", [event(n, "crm")]))[0] for n in range(4)]
    assert statuses[:2] == [202, 202]  # a burst of one second's worth
    assert 429 in statuses[2:]
    status, answer, headers, stored = await post("crm-token", [event(9, "crm")])
    assert status == 429
    assert int(headers["Retry-After"]) >= 1
    assert "slow_crm" in answer["error"]
    assert "src-9" not in stored
    assert (await post("plain-token", [event(10, "crm")]))[0] == 202
    assert (await post("salon-token", [event(11, "telegram")]))[0] == 202


def test_token_bucket_refills_at_its_rate() -> None:
    now = [0.0]
    bucket = TokenBucket(2.0, clock=lambda: now[0])
    assert [bucket.take(), bucket.take()] == [0, 0]
    assert bucket.take() == 1
    now[0] += 0.5
    assert bucket.take() == 0
    assert bucket.take() == 1
    slow = TokenBucket(0.1, clock=lambda: now[0])
    assert slow.take() == 0
    assert slow.take() == 10  # Retry-After says how long, not just "later"


def test_sources_are_read_from_the_config_file_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[ingest]\ntokens = ["a-token"]\n\n[[ingest.sources]]\nname = "salon_bot"\ntoken = "t1"\n'
        'channels = ["telegram"]\nrate_per_second = 50\n',
        encoding="utf-8",
    )
    [source] = load_settings(config).ingest.sources
    assert (source.name, source.channels, source.rate_per_second) == ("salon_bot", ["telegram"], 50)
    assert "t1" not in repr(source)
    config.write_text('[[ingest.sources]]\nname = "x"\ntoken = "t"\nrate_per_second = 0\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"ingest\.sources\.0\.rate_per_second"):
        load_settings(config)
