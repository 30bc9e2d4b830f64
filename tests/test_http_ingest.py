"""``POST /v1/events`` and ``/healthz`` over real HTTP: every status code of the contract."""

from __future__ import annotations

import asyncio
import gzip
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from storage.database import Database, open_database
from storage.models import QuarantinedPayload, StoredEvent
from tests.conftest import SEED_EVENT

TOKEN = "test-token-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MAX_BODY = 1024 * 1024


@dataclass
class Server:
    url: str
    db: Database
    http: aiohttp.ClientSession

    async def post(
        self, body: Any, *, content_type: str = "application/json", headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else orjson.dumps(body)
        async with self.http.post(
            f"{self.url}/v1/events",
            data=data,
            headers={"Content-Type": content_type, **(AUTH if headers is None else headers)},
        ) as response:
            return response.status, await response.json()

    async def stored(self, model: Any = StoredEvent) -> int:
        async with self.db.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'ingest.db'}"},
        ingest={"tokens": [SecretStr(TOKEN), SecretStr("other-token")], "max_body_bytes": MAX_BODY},
    )
    db = await open_database(settings.database.url)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    async with aiohttp.ClientSession() as http:
        yield Server(f"http://127.0.0.1:{port}", db, http)
    await runner.cleanup()
    await writer.close()
    await db.close()


def seed_variant(n: int, **fields: Any) -> dict[str, Any]:
    return {**SEED_EVENT, "event_id": f"ev-{n}", "user_id": f"tg_{n % 97}", **fields}


async def test_one_event_is_accepted_then_reported_as_duplicate(server: Server) -> None:
    assert await server.post(SEED_EVENT) == (202, {"accepted": 1, "duplicates": 0})
    assert await server.post(SEED_EVENT) == (202, {"accepted": 0, "duplicates": 1})
    assert await server.stored() == 1


async def test_array_and_ndjson_bodies(server: Server) -> None:
    assert await server.post([seed_variant(1), seed_variant(2)]) == (202, {"accepted": 2, "duplicates": 0})
    ndjson = b"\n".join(orjson.dumps(seed_variant(n)) for n in (2, 3, 4)) + b"\n\n"
    status, body = await server.post(ndjson, content_type="application/x-ndjson")
    assert (status, body) == (202, {"accepted": 2, "duplicates": 1})


async def test_mixed_batch_stores_good_and_quarantines_bad(server: Server) -> None:
    batch = [seed_variant(1), {**seed_variant(2), "timestamp": "не время"}, seed_variant(3), "oops"]
    status, body = await server.post(batch)
    assert status == 207
    assert (body["accepted"], body["duplicates"]) == (2, 0)
    assert {(error["index"], error["field"]) for error in body["errors"]} == {(1, "timestamp"), (3, None)}
    assert all(error["message"] for error in body["errors"])
    assert await server.stored() == 2
    assert await server.stored(QuarantinedPayload) == 2


async def test_ndjson_with_a_broken_line_names_its_index(server: Server) -> None:
    body = orjson.dumps(seed_variant(1)) + b"\n{not json\n" + orjson.dumps(seed_variant(2))
    status, answer = await server.post(body, content_type="application/x-ndjson")
    assert status == 207
    assert answer["accepted"] == 2
    assert [(error["index"], error["field"]) for error in answer["errors"]] == [(1, None)]
    assert "line 2" in answer["errors"][0]["message"]


async def test_all_invalid_is_422_with_the_reasons(server: Server) -> None:
    status, body = await server.post([{"event": "x"}])
    assert status == 422
    assert body["accepted"] == 0
    assert {error["field"] for error in body["errors"]} == {"timestamp", "user_id"}


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": TOKEN}, {"Authorization": "Basic x"}]
)
async def test_missing_or_unknown_token_is_401(server: Server, headers: dict[str, str]) -> None:
    status, body = await server.post(SEED_EVENT, headers=headers)
    assert status == 401
    assert "token" in body["error"]
    assert await server.stored() == 0


async def test_second_configured_token_works(server: Server) -> None:
    status, _ = await server.post(SEED_EVENT, headers={"Authorization": "Bearer other-token"})
    assert status == 202


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
async def test_other_content_types_are_415(server: Server, content_type: str) -> None:
    status, body = await server.post(SEED_EVENT, content_type=content_type)
    assert status == 415
    assert "application/json" in body["error"]


async def test_body_over_the_limit_is_413_and_at_the_limit_is_read(server: Server) -> None:
    event = orjson.dumps(seed_variant(1))
    at_limit = event + b" " * (MAX_BODY - len(event))
    assert len(at_limit) == MAX_BODY
    assert (await server.post(at_limit))[0] == 202
    status, body = await server.post(at_limit + b" ")
    assert status == 413
    assert "max_body_bytes" in body["error"]


async def test_chunked_body_over_the_limit_is_413(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY // 65536 + 2):
            yield b" " * 65536

    async with server.http.post(
        f"{server.url}/v1/events", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    ) as response:
        assert response.status == 413


@pytest.mark.parametrize(
    "body",
    [b"\xff\xfe\xfd", b"{not json", b"[" * 3000 + b"]" * 3000, b"", b'{"a": "\xed\xa0\x80"}'],
    ids=["binary", "broken", "deep", "empty", "invalid-utf8"],
)
async def test_bodies_that_are_not_json_are_400(server: Server, body: bytes) -> None:
    status, answer = await server.post(body)
    assert status == 400
    assert "JSON" in answer["error"]
    assert await server.stored() == 0


async def test_a_gzip_body_is_read_and_one_that_is_not_gzip_is_400(server: Server) -> None:
    gzipped = {**AUTH, "Content-Encoding": "gzip"}
    status, _ = await server.post(gzip.compress(orjson.dumps(seed_variant(1))), headers=gzipped)
    assert status == 202
    status, answer = await server.post(orjson.dumps(seed_variant(2)), headers=gzipped)
    assert status == 400
    assert answer["error"].startswith("the body cannot be read")
    assert await server.stored() == 1


async def test_ten_thousand_event_array(server: Server) -> None:
    # Small events, so 10,000 of them fit under the 1 MiB body limit.
    batch = [
        {"timestamp": "2025-01-01T12:00:00", "event": "no_show", "user_id": f"u{n}"} for n in range(10_000)
    ]
    assert len(orjson.dumps(batch)) < MAX_BODY
    status, body = await server.post(batch)
    assert (status, body) == (202, {"accepted": 10_000, "duplicates": 0})
    assert await server.stored() == 10_000


async def test_same_batch_twice_concurrently_over_http_is_stored_once(server: Server) -> None:
    batch = [seed_variant(n) for n in range(500)]
    answers = await asyncio.gather(server.post(batch), server.post(batch))
    assert sorted((answer["accepted"], answer["duplicates"]) for _, answer in answers) == [(0, 500), (500, 0)]
    assert await server.stored() == 500


async def test_healthz(server: Server) -> None:
    async with server.http.get(f"{server.url}/healthz") as response:
        assert response.status == 200
        assert await response.json() == {
            "status": "ok",
            "storage": "ok",
            "telegram": "disabled",
            "scheduler": "off",
        }


async def test_locked_storage_answers_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'locked.db'}", "busy_timeout_ms": 200},
        ingest={"tokens": [SecretStr(TOKEN)], "retry_after_seconds": 7},
    )
    db = await open_database(settings.database.url, settings.database.busy_timeout_ms)
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    try:
        async with aiohttp.ClientSession() as http:
            server = Server(f"http://127.0.0.1:{port}", db, http)
            blocker.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
            async with http.post(
                f"{server.url}/v1/events",
                data=orjson.dumps(SEED_EVENT),
                headers={**AUTH, "Content-Type": "application/json"},
            ) as response:
                assert response.status == 503
                assert response.headers["Retry-After"] == "7"
            blocker.execute("ROLLBACK")
            assert await server.post(SEED_EVENT) == (202, {"accepted": 1, "duplicates": 0})
            assert await server.stored() == 1
    finally:
        blocker.close()
        await runner.cleanup()
        await writer.close()
        await db.close()
