"""Graceful shutdown under load (issue 7.5): SIGTERM commits every acknowledged event and refuses
newcomers with 503 + Retry-After while draining.

The drain is made long enough to watch by another process holding SQLite's write lock at the moment of
SIGTERM: the writer cannot commit what it holds until the lock goes, and the senders keep posting all along.
"""

from __future__ import annotations

import asyncio
import signal
import sqlite3
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.processes import free_port, running_service, sqlite_write_lock, write_config

pytestmark = pytest.mark.slow

TOKEN = "drain"
SENDERS = 6


@dataclass
class Traffic:
    terminated: bool = False
    acknowledged: set[str] = field(default_factory=set)
    after_sigterm: Counter[str] = field(default_factory=Counter)  # answers given after SIGTERM
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    def answered(self, answer: str) -> None:
        if self.terminated:
            self.after_sigterm[answer] += 1


async def sender(url: str, number: int, traffic: Traffic) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for batch in range(1_000_000):
            if traffic.stop.is_set():
                return
            ids = [f"d{number}-{batch}-{n}" for n in range(1 + batch % 3)]
            body = [
                {
                    "timestamp": "2026-11-25T10:00:00Z",
                    "event": "message_received",
                    "user_id": "tg_1",
                    "event_id": i,
                }
                for i in ids
            ]
            try:
                async with http.post(
                    f"{url}/v1/events", data=orjson.dumps(body), headers=headers
                ) as response:
                    await response.read()
                    if response.status == 202:
                        traffic.acknowledged.update(ids)
                    retry_after = response.headers.get("Retry-After")
                    traffic.answered(f"{response.status} Retry-After {retry_after}")
            except aiohttp.ClientError:
                traffic.answered("connection error")
                await asyncio.sleep(0.05)
            if traffic.terminated:
                await asyncio.sleep(0.02)


async def test_sigterm_drains_with_503_and_commits_what_it_acknowledged(tmp_path: Path) -> None:
    port, db_path = free_port(), tmp_path / "drain.db"
    config = write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{db_path}", "busy_timeout_ms": 60_000},
            "ingest": {"port": port, "tokens": [TOKEN], "retry_after_seconds": 2},
            # The OTLP sweep every half second: at SIGTERM it waits for the lock too, and the drain
            # must not wait for it.
            "ai": {"trace_wait_seconds": 2},
        },
    )
    traffic = Traffic()
    async with running_service(config, port, tmp_path / "run.log") as service:
        senders = [asyncio.create_task(sender(service.url, n, traffic)) for n in range(SENDERS)]
        async with asyncio.timeout(60):
            while len(traffic.acknowledged) < 300:  # noqa: ASYNC110
                await asyncio.sleep(0.02)
        async with sqlite_write_lock(db_path):
            await asyncio.sleep(0.6)  # the senders' next requests (and a sweep) wait for the lock
            held = len(traffic.acknowledged)
            service.process.send_signal(signal.SIGTERM)
            traffic.terminated = True
            # Those senders wait for their answers; newcomers arrive while the drain goes on.
            senders += [
                asyncio.create_task(sender(service.url, n, traffic)) for n in range(SENDERS, 2 * SENDERS)
            ]
            async with asyncio.timeout(30):
                while traffic.after_sigterm["503 Retry-After 2"] < 10:  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert len(traffic.acknowledged) == held  # nothing is acknowledged before it is committed
            assert service.process.returncode is None  # still draining: the lock holds the last commit
        assert await asyncio.wait_for(service.process.wait(), 30) == 0
        traffic.stop.set()
        await asyncio.gather(*senders)
    # What waited for the lock when SIGTERM came was committed, then acknowledged during the drain.
    assert traffic.after_sigterm["202 Retry-After None"] >= 1
    assert len(traffic.acknowledged) > held
    # Newcomers were told to come back later; nothing else but a closed port was ever answered.
    assert set(traffic.after_sigterm) <= {"202 Retry-After None", "503 Retry-After 2", "connection error"}
    with closing(sqlite3.connect(db_path)) as conn:
        copies = Counter(event_id for (event_id,) in conn.execute("SELECT event_id FROM events"))
    assert traffic.acknowledged <= set(copies)
    assert set(copies.values()) == {1}
    assert "stopped" in service.log()
