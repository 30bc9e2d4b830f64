"""``EventClient`` against the real ingest app (in-process) and, for timing rules, a scripted collector."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import select

from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from leadtrail_sdk import EventClient
from leadtrail_sdk.spool import Spool
from storage.database import Database, open_database
from storage.models import StoredEvent
from tests.local_server import serving
from tests.processes import free_port

TOKEN = "sdk-token"


@dataclass
class Collector:
    url: str
    db: Database

    async def event_ids(self) -> list[str]:
        """Stored event ids in the order they were committed."""
        async with self.db.sessions() as session:
            result = await session.execute(select(StoredEvent.event_id).order_by(StoredEvent.id))
            return list(result.scalars())


async def serve_collector(
    tmp_path: Path, max_body_bytes: int = 1024 * 1024, ai: dict[str, Any] | None = None
) -> AsyncIterator[Collector]:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'collector.db'}"},
        ingest={"tokens": [SecretStr(TOKEN)], "max_body_bytes": max_body_bytes},
        ai=ai or {},
    )
    db = await open_database(settings.database.url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    yield Collector(f"http://127.0.0.1:{port}", db)
    await runner.cleanup()
    await writer.close()
    await db.close()


@pytest.fixture
async def collector(tmp_path: Path) -> AsyncIterator[Collector]:
    """The real ingest app and store, in this process."""
    async for running in serve_collector(tmp_path):
        yield running


@dataclass
class Request:
    at: float
    events: list[dict[str, Any]]


@dataclass
class ScriptedCollector:
    """Speaks the ingest protocol but answers from a script (then 202), to check the client's timing rules."""

    script: list[tuple[int, dict[str, str]]]
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, request: web.Request) -> web.Response:
        lines = (await request.read()).splitlines()
        self.requests.append(Request(time.monotonic(), [json.loads(line) for line in lines]))
        self._arrived.set()
        if self.script:
            status, headers = self.script.pop(0)
            return web.json_response({"error": "scripted"}, status=status, headers=headers)
        return web.json_response({"accepted": len(lines), "duplicates": 0}, status=202)

    async def wait_requests(self, count: int) -> list[Request]:
        async with asyncio.timeout(30):
            while len(self.requests) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.requests


@pytest.fixture
async def scripted() -> AsyncIterator[ScriptedCollector]:
    collector = ScriptedCollector(script=[])
    app = web.Application()
    app.router.add_post("/v1/events", collector.handle)
    async with serving(app) as port:
        collector.url = f"http://127.0.0.1:{port}"
        yield collector


async def wait_until(condition: Callable[[], bool]) -> None:
    """Poll a counter of another component (the client, a fake) that offers no event to await."""
    async with asyncio.timeout(30):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def event(n: int, **fields: Any) -> dict[str, Any]:
    return {"event": "message_received", "user_id": f"tg_{n % 7}", "channel": "telegram", "n": n, **fields}


def log_all(client: EventClient, count: int) -> list[str]:
    """Log ``count`` events with known ids; returns the ids in logging order."""
    ids = [f"ev-{n:05d}" for n in range(count)]
    for n, event_id in enumerate(ids):
        client.log(event(n, event_id=event_id))
    return ids


@pytest.mark.slow
def test_importing_the_sdk_loads_nothing_the_salon_bot_does_not_have() -> None:
    probe = (
        "import json, sys\n"
        "import leadtrail_sdk\n"
        "plain = sorted(sys.modules)\n"
        "from leadtrail_sdk import LeadTrailTracker\n"
        "print(json.dumps([plain, sorted(sys.modules)]))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    plain, with_tracker = (set(modules) for modules in json.loads(result.stdout))
    assert not any(name.split(".")[0] == "aiogram" for name in plain), (
        "the client alone must not load aiogram"
    )
    assert "aiogram" in with_tracker
    forbidden = {
        "sqlalchemy",
        "matplotlib",
        "pydantic_settings",
        "bot",
        "storage",
        "reports",
        "orjson",
        "alembic",
    }
    assert not {name.split(".")[0] for name in with_tracker} & forbidden


async def test_batches_by_size_then_by_time(scripted: ScriptedCollector, tmp_path: Path) -> None:
    client = EventClient(scripted.url, TOKEN, spool_dir=tmp_path, batch_size=10, flush_interval=0.2)
    for n in range(25):
        client.log(event(n))
    requests = await scripted.wait_requests(3)  # the last 5 go when they are old enough, not at close
    assert [len(request.events) for request in requests] == [10, 10, 5]
    sent = [item for request in requests for item in request.events]
    assert [item["n"] for item in sent] == list(range(25))
    assert len({item["event_id"] for item in sent}) == 25
    assert all(item["timestamp"].endswith("+00:00") for item in sent)
    await client.aclose()
    assert (client.stats.sent, client.stats.spooled, client.pending) == (25, 0, 0)


async def test_retry_after_is_honoured(scripted: ScriptedCollector, tmp_path: Path) -> None:
    scripted.script.append((503, {"Retry-After": "1"}))
    client = EventClient(scripted.url, TOKEN, spool_dir=tmp_path, flush_interval=0.01)
    client.log(event(1))
    first, second = await scripted.wait_requests(2)
    assert second.at - first.at >= 1.0
    assert second.events == first.events
    await client.aclose()
    assert (client.stats.sent, client.stats.spooled) == (1, 0)


async def test_rejected_event_goes_to_dead_letter_and_the_rest_are_stored(
    collector: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = EventClient(collector.url, TOKEN, spool_dir=tmp_path / "spool")
    client.log(event(1, event_id="good-1", message="Хочу записаться"))
    client.log(event(2, event_id="bad", timestamp="не время", message="Секретный текст"))
    client.log(event(3, event_id="good-2"))
    await client.aclose()
    assert await collector.event_ids() == ["good-1", "good-2"]
    [line] = (tmp_path / "spool" / "dead-letter.ndjson").read_text(encoding="utf-8").splitlines()
    dead = json.loads(line)
    assert dead["event"]["event_id"] == "bad"
    assert dead["event"]["timestamp"] == "не время"
    assert [error["field"] for error in dead["errors"]] == ["timestamp"]
    assert dead["at"].endswith("+00:00")
    assert (client.stats.sent, client.stats.rejected, client.stats.dropped) == (2, 1, 0)
    assert "timestamp" in caplog.text
    assert "Секретный" not in caplog.text


async def test_an_event_json_cannot_express_is_dead_lettered_not_sent(
    scripted: ScriptedCollector, tmp_path: Path
) -> None:
    cyclic: dict[str, Any] = {}
    cyclic["self"] = cyclic
    client = EventClient(scripted.url, TOKEN, spool_dir=tmp_path)
    client.log(event(1, details=cyclic))
    client.log(event(2))
    assert await client.flush()
    await client.aclose()
    [request] = scripted.requests
    assert [item["n"] for item in request.events] == [2]
    [line] = (tmp_path / "dead-letter.ndjson").read_text(encoding="utf-8").splitlines()
    dead = json.loads(line)
    assert dead["event"].startswith("{'event': 'message_received'")
    assert "not JSON-serialisable" in dead["errors"][0]["message"]
    assert (client.stats.sent, client.stats.rejected) == (1, 1)


async def test_oversized_batches_are_split_and_an_oversized_event_is_dead_lettered(tmp_path: Path) -> None:
    async for small in serve_collector(tmp_path, max_body_bytes=1024):
        client = EventClient(small.url, TOKEN, spool_dir=tmp_path / "spool", batch_size=10)
        ids = [f"ev-{n}" for n in range(10)]
        for n, event_id in enumerate(ids[:5]):
            client.log(event(n, event_id=event_id, message="м" * 60))
        client.log(event(99, event_id="huge", message="ж" * 1000))
        for n, event_id in enumerate(ids[5:], start=5):
            client.log(event(n, event_id=event_id, message="м" * 60))
        await client.aclose()
        assert await small.event_ids() == ids
        [line] = (tmp_path / "spool" / "dead-letter.ndjson").read_text(encoding="utf-8").splitlines()
        assert json.loads(line)["event"]["event_id"] == "huge"
        assert "413" in json.loads(line)["errors"][0]["message"]
        assert (client.stats.sent, client.stats.rejected) == (10, 1)


async def test_spool_survives_a_restart_and_replays_in_order(collector: Collector, tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    nobody = f"http://127.0.0.1:{free_port()}"
    offline = EventClient(nobody, TOKEN, spool_dir=spool_dir, batch_size=7, flush_interval=0.01)
    ids = log_all(offline, 30)
    assert not await offline.flush(timeout=0.3)
    await offline.aclose(timeout=0.5)
    assert (offline.stats.sent, offline.stats.spooled, offline.stats.dropped) == (0, 30, 0)
    assert list(spool_dir.glob("spool.*.ndjson"))

    online = EventClient(collector.url, TOKEN, spool_dir=spool_dir, batch_size=7)
    await online.start()
    assert online.pending == 30
    assert await online.flush(timeout=30)
    await online.aclose()
    assert await collector.event_ids() == ids
    assert (online.stats.replayed, online.stats.sent) == (30, 30)
    assert not list(spool_dir.glob("spool.*.ndjson"))


async def test_queue_overflow_goes_through_the_spool_without_reordering(
    collector: Collector, tmp_path: Path
) -> None:
    client = EventClient(collector.url, TOKEN, spool_dir=tmp_path / "spool", batch_size=20, max_queue=50)
    ids = log_all(client, 500)  # no await in between: the queue overflows nine times
    assert await client.flush(timeout=30)
    await client.aclose()
    assert await collector.event_ids() == ids
    assert client.stats.spooled >= 450
    assert client.stats.replayed == client.stats.spooled
    assert (client.stats.sent, client.stats.dropped) == (500, 0)


async def test_a_refused_token_keeps_events_in_the_spool_and_says_so_once(
    collector: Collector, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    spool_dir = tmp_path / "spool"
    refused = EventClient(collector.url, "wrong-token", spool_dir=spool_dir, flush_interval=0.01)
    ids = log_all(refused, 5)
    await wait_until(lambda: refused.stats.spooled == 5)
    ids += [f"ev-late-{n}" for n in range(3)]
    for n, event_id in enumerate(ids[5:]):
        refused.log(event(n, event_id=event_id))
    await refused.aclose(timeout=2)
    assert (refused.stats.sent, refused.stats.spooled, refused.stats.dropped) == (0, 8, 0)
    refusals = [record for record in caplog.records if "HTTP 401" in record.getMessage()]
    assert len(refusals) == 1
    assert refusals[0].levelno == logging.ERROR
    assert "wrong-token" not in caplog.text

    fixed = EventClient(collector.url, TOKEN, spool_dir=spool_dir)
    await fixed.start()
    await fixed.aclose()
    assert await collector.event_ids() == ids


async def test_flush_sends_at_once_and_waits_for_the_acknowledgement(
    collector: Collector, tmp_path: Path
) -> None:
    client = EventClient(collector.url, TOKEN, spool_dir=tmp_path / "spool", flush_interval=3600)
    ids = log_all(client, 3)
    assert await client.flush()
    assert await collector.event_ids() == ids
    assert (client.stats.sent, client.pending) == (3, 0)
    assert await client.flush()  # nothing queued: returns at once
    await client.aclose()


async def test_aclose_delivers_what_is_queued(collector: Collector, tmp_path: Path) -> None:
    client = EventClient(
        collector.url, TOKEN, spool_dir=tmp_path / "spool", batch_size=1000, flush_interval=3600
    )
    ids = log_all(client, 300)
    assert client.stats.sent == 0
    await client.aclose()
    assert await collector.event_ids() == ids
    assert (client.stats.sent, client.stats.spooled, client.pending) == (300, 0, 0)
    with pytest.raises(RuntimeError):
        client.log(event(1))


def test_spool_rotates_resumes_from_its_cursor_and_cuts_a_torn_line(tmp_path: Path) -> None:
    lines = [json.dumps({"n": n}).encode() for n in range(40)]
    spool = Spool(tmp_path, segment_bytes=100)
    spool.append(lines[:20])
    spool.append(lines[20:])
    assert len(list(tmp_path.glob("spool.*.ndjson"))) == 2
    first = spool.peek(15, 10_000)
    spool.consume(first)
    assert spool.pending == 25

    with open(tmp_path / "spool.000002.ndjson", "ab") as segment:
        segment.write(b'{"n": 40, "half')  # a crash in the middle of an append
    reopened = Spool(tmp_path, segment_bytes=100)
    assert reopened.torn_tail == b'{"n": 40, "half'
    assert reopened.pending == 25
    replayed: list[bytes] = []
    while batch := reopened.peek(7, 10_000):
        reopened.consume(batch)
        replayed.extend(batch)
    assert replayed == lines[15:]
    assert reopened.pending == 0
    assert not list(tmp_path.glob("spool.*.ndjson"))
    reopened.append(lines[:1])
    assert Spool(tmp_path).peek(5, 10_000) == lines[:1]


async def test_log_model_call_sends_a_priced_call_of_the_client(tmp_path: Path) -> None:
    prices = [{"model": "yandexgpt-lite", "input_per_million": 200, "output_per_million": 200}]
    async for collector in serve_collector(tmp_path, ai={"prices": prices}):
        client = EventClient(collector.url, TOKEN, spool_dir=tmp_path / "spool", flush_interval=0.05)
        client.log_model_call(
            "tg_1", model="yandexgpt-lite", input_tokens=1500, output_tokens=500, channel="telegram"
        )
        client.log_model_call(
            "tg_1",
            model="gpt-4o-mini",
            input_tokens=10,
            output_tokens=2,
            cost=0.003,
            currency="USD",
            provider="openai",
            event="assistant_response",
            intent="price.question",
        )
        assert await client.flush()
        await client.aclose()
        async with collector.db.sessions() as session:
            rows = (await session.execute(select(StoredEvent).order_by(StoredEvent.id))).scalars().all()
        assert [(row.event, row.user_id, row.model, row.cost, row.currency) for row in rows] == [
            ("llm_call", "tg_1", "yandexgpt-lite", 0.4, "RUB"),
            ("assistant_response", "tg_1", "gpt-4o-mini", 0.003, "USD"),
        ]
        assert (rows[0].input_tokens, rows[0].output_tokens, rows[0].channel) == (1500, 500, "telegram")
        assert (rows[1].provider, rows[1].intent, rows[1].cached_tokens) == ("openai", "price.question", None)
