"""``GET /metrics`` over real HTTP from the ingest app, parsed the way Prometheus parses it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import orjson
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.ingestion.http_app import ServiceState
from bot.ingestion.metrics import OWNER_OUTBOX, OutboxDepth
from bot.ingestion.validation import validate_items
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from storage import outbox
from storage.database import Database, open_database
from storage.models import StoredEvent
from storage.writer import CommittedBatch, EventWriter
from tests.conftest import SEED_EVENT
from tests.processes import free_port

TOKEN = "ingest-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class Service:
    def __init__(self, url: str, db: Database, http: aiohttp.ClientSession) -> None:
        self.url, self.db, self.http = url, db, http
        self.posts = 0

    async def post(self, body: Any, token: str = TOKEN) -> int:
        self.posts += 1
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        async with self.http.post(
            f"{self.url}/v1/events", data=orjson.dumps(body), headers=headers
        ) as answer:
            return answer.status

    async def scrape(self, headers: dict[str, str] | None = None) -> tuple[int, str]:
        async with self.http.get(f"{self.url}/metrics", headers=headers) as answer:
            return answer.status, await answer.text()


def samples(exposition: str) -> Samples:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }


@asynccontextmanager
async def start(tmp_path: Path, **ingest: Any) -> AsyncIterator[Service]:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"},
        ingest={"tokens": [SecretStr(TOKEN)], **ingest},
    )
    db = await open_database(settings.database.url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    try:
        async with aiohttp.ClientSession() as http:
            yield Service(f"http://127.0.0.1:{port}", db, http)
    finally:
        await runner.cleanup()
        await writer.close()
        await db.close()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    async with start(tmp_path) as running:
        yield running


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Service]:
    async with start(tmp_path, metrics_token=SecretStr("scrape-secret")) as running:
        yield running


def variant(n: int, channel: str, at: str, **fields: Any) -> dict[str, Any]:
    return {**SEED_EVENT, "event_id": f"ev-{n}", "channel": channel, "timestamp": at, **fields}


async def test_metrics_count_events_latency_batches_outbox_and_last_event(service: Service) -> None:
    assert (
        await service.post(
            [
                variant(1, "telegram", "2025-01-01T10:00:00+03:00"),
                variant(2, "telegram", "2025-01-01T12:30:00+03:00"),
            ]
        )
        == 202
    )
    assert await service.post(variant(3, "whatsapp", "2025-01-02T09:00:00+03:00")) == 202
    assert await service.post(variant(1, "telegram", "2025-01-01T10:00:00+03:00")) == 202  # duplicate
    mixed = [
        variant(4, "site", "2025-01-03T08:00:00+03:00"),
        variant(5, "site", "вчера"),
        {"event": "message_received", "user_id": "x"},  # no channel, no timestamp
        variant(4, "site", "2025-01-03T08:00:00+03:00"),  # the same event twice in one request
    ]
    assert await service.post(mixed) == 207
    assert await service.post(SEED_EVENT, token="wrong") == 401
    async with service.db.sessions() as session, session.begin():
        for n in range(3):
            await outbox.enqueue(session, kind="alert", channel="telegram", recipient="1", text=f"a{n}")
        await outbox.mark_sent(session, 1)
        await outbox.mark_failed(session, 2, "blocked")

    status, text = await service.scrape()
    assert status == 200
    found = samples(text)

    def events(channel: str, outcome: str) -> float:
        return found[("leadtrail_events_total", (("channel", channel), ("outcome", outcome)))]

    assert (events("telegram", "accepted"), events("telegram", "duplicate")) == (2, 1)
    assert events("whatsapp", "accepted") == 1
    assert (events("site", "accepted"), events("site", "duplicate"), events("site", "rejected")) == (1, 1, 1)
    assert events("unknown", "rejected") == 1
    assert ("leadtrail_events_total", (("channel", "whatsapp"), ("outcome", "duplicate"))) not in found
    assert found[("leadtrail_ingest_request_duration_seconds_count", ())] == service.posts == 5
    # Every valid row offered reaches a committed transaction once: 2 + 1 + 1 + 2.
    assert found[("leadtrail_writer_batch_events_sum", ())] == 6
    assert found[("leadtrail_writer_batch_events_count", ())] == 4  # one transaction per request here
    assert found[("leadtrail_outbox_pending", (("outbox", OWNER_OUTBOX),))] == 1
    assert found[("leadtrail_storage_up", ())] == 1
    last = found[("leadtrail_last_event_timestamp_seconds", (("channel", "telegram"),))]
    assert last == datetime.fromisoformat("2025-01-01T12:30:00+03:00").timestamp()


async def test_metrics_token_when_configured(guarded: Service) -> None:
    assert (await guarded.scrape())[0] == 401
    assert (await guarded.scrape({"Authorization": "Bearer nope"}))[0] == 401
    status, text = await guarded.scrape({"Authorization": "Bearer scrape-secret"})
    assert status == 200
    assert ("leadtrail_storage_up", ()) in samples(text)


async def test_two_apps_in_one_process_count_apart(tmp_path: Path) -> None:
    async with start(tmp_path / "one") as first, start(tmp_path / "two") as second:
        assert await first.post(variant(1, "telegram", "2025-01-01T10:00:00+03:00")) == 202
        key = ("leadtrail_events_total", (("channel", "telegram"), ("outcome", "accepted")))
        assert samples((await first.scrape())[1])[key] == 1
        assert key not in samples((await second.scrape())[1])


async def test_outbox_depth_is_cached_for_a_moment(db: Database) -> None:
    depth = OutboxDepth(db, cache_seconds=3600)
    depth.add("owner", outbox.pending_count)
    await depth.refresh()
    async with db.sessions() as session, session.begin():
        await outbox.enqueue(session, kind="alert", channel="telegram", recipient="1", text="a")
    await depth.refresh()
    assert (
        samples(generate_latest(_registry(depth)).decode())[
            ("leadtrail_outbox_pending", (("outbox", "owner"),))
        ]
        == 0
    )
    fresh = OutboxDepth(db, cache_seconds=0)
    fresh.add("owner", outbox.pending_count)
    fresh.add("crm", outbox.pending_count)
    await fresh.refresh()
    found = samples(generate_latest(_registry(fresh)).decode())
    assert found[("leadtrail_outbox_pending", (("outbox", "owner"),))] == 1
    assert found[("leadtrail_outbox_pending", (("outbox", "crm"),))] == 1


async def test_outbox_depth_fails_soft_when_the_database_is_down() -> None:
    db = await open_database(
        f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/none", apply_migrations=False
    )
    try:
        depth = OutboxDepth(db, cache_seconds=0)
        depth.add("owner", outbox.pending_count)
        await depth.refresh()
        found = samples(generate_latest(_registry(depth)).decode())
    finally:
        await db.close()
    assert found[("leadtrail_storage_up", ())] == 0
    assert not any(name == "leadtrail_outbox_pending" for name, _ in found)


def _registry(collector: OutboxDepth) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(collector)
    return registry


async def test_a_failing_observer_does_not_fail_the_write(writer: EventWriter, db: Database) -> None:
    seen: list[CommittedBatch] = []

    def broken(batch: CommittedBatch) -> None:
        seen.append(batch)
        raise RuntimeError("observer bug")

    writer.observe(broken)
    rows = validate_items([SEED_EVENT, SEED_EVENT], ZoneInfo("Europe/Moscow")).rows
    result = await writer.write(rows)
    assert (result.accepted, result.duplicates) == (1, 1)
    assert [(len(batch.rows), len(batch.new_rows)) for batch in seen] == [(2, 1)]
    async with db.sessions() as session:
        assert await session.scalar(select(func.count()).select_from(StoredEvent)) == 1
