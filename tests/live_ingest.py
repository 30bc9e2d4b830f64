"""The real ingest app on 127.0.0.1 in a thread of its own, for synchronous callers (hypothesis etc.).

Hypothesis and schemathesis drive tests synchronously, so the server gets its own event loop in a thread;
``run`` executes a coroutine there (e.g. a database check) and returns its result.
"""

from __future__ import annotations

import asyncio
import http.client
import threading
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy import func, select

from bot.ingestion.http_app import ServiceState
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from storage.database import Database, open_database
from storage.models import QuarantinedPayload, StoredEvent

T = TypeVar("T")
TOKEN = "fuzz-token-1"
MAX_BODY = 2 * 1024 * 1024


@dataclass
class LiveIngest:
    host: str
    port: int
    db: Database
    loop: asyncio.AbstractEventLoop

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def post(
        self, body: bytes, content_type: str = "application/json", token: str | None = TOKEN
    ) -> tuple[int, bytes, dict[str, str]]:
        """Raw bytes on the wire, so bodies no JSON library would produce can be sent."""
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        try:
            connection.request("POST", "/v1/events", body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            connection.close()

    async def _stored_ids(self, event_ids: list[str]) -> set[str]:
        async with self.db.sessions() as session:
            result = await session.execute(
                select(StoredEvent.event_id).where(StoredEvent.event_id.in_(event_ids))
            )
            return set(result.scalars())

    def stored_ids(self, event_ids: list[str]) -> set[str]:
        return self.run(self._stored_ids(event_ids)) if event_ids else set()

    async def _count(self, model: Any) -> int:
        async with self.db.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())

    def count(self, model: Any = StoredEvent) -> int:
        return self.run(self._count(model))

    def quarantined(self) -> int:
        return self.count(QuarantinedPayload)


@contextmanager
def live_ingest(tmp_path: Path, **ingest: Any) -> Iterator[LiveIngest]:
    settings = Settings(
        database={"url": f"sqlite+aiosqlite:///{tmp_path / 'live.db'}"},
        ingest={"tokens": [TOKEN], "max_body_bytes": MAX_BODY, **ingest},
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="live-ingest", daemon=True)
    thread.start()

    async def start() -> tuple[Database, Any, web.AppRunner, int]:
        db = await open_database(settings.database.url)
        writer = create_writer(settings, db)
        await writer.start()
        runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
        return db, writer, runner, port

    started: Future[tuple[Database, Any, web.AppRunner, int]] = asyncio.run_coroutine_threadsafe(
        start(), loop
    )
    db, writer, runner, port = started.result(timeout=60)
    try:
        yield LiveIngest(settings.ingest.host, port, db, loop)
    finally:

        async def stop() -> None:
            await runner.cleanup()
            await writer.close()
            await db.close()

        asyncio.run_coroutine_threadsafe(stop(), loop).result(timeout=60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
