"""No event lost: ``EventClient`` against the real ``leadtrail run`` process, killed with SIGKILL or absent.

Each phase waits on the client's counters (events delivered, events spooled), never on the clock, so the
kills land mid-stream and the spool is really used however fast or slow the machine is.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from leadtrail_sdk import EventClient
from tests.processes import free_port, running_service, write_config
from tests.test_sdk_client import wait_until

pytestmark = pytest.mark.slow

TOKEN = "no-loss"
TOTAL = 10_000
CHUNK = 50
EVENT_IDS = [f"nl-{n:05d}" for n in range(TOTAL)]


def collector_config(tmp_path: Path, port: int) -> Path:
    return write_config(
        tmp_path / "config.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'leadtrail.db'}"},
            "ingest": {"port": port, "tokens": [TOKEN]},
        },
    )


def event(event_id: str, n: int) -> dict[str, Any]:
    return {
        "event": "message_received",
        "user_id": f"tg_{n % 300}",
        "channel": "telegram",
        "message": "Здравствуйте, хочу записаться на стрижку",
        "event_id": event_id,
    }


def stored(tmp_path: Path) -> tuple[int, set[str]]:
    """Rows and distinct event ids in the collector's SQLite file."""
    with closing(sqlite3.connect(tmp_path / "leadtrail.db")) as db:
        [(rows,)] = db.execute("SELECT count(*) FROM events")
        ids = {event_id for (event_id,) in db.execute("SELECT event_id FROM events")}
    return rows, ids


async def test_collector_killed_twice_while_the_client_sends(tmp_path: Path) -> None:
    port = free_port()
    config = collector_config(tmp_path, port)
    client = EventClient(f"http://127.0.0.1:{port}", TOKEN, spool_dir=tmp_path / "spool", max_retry_delay=0.5)
    kills = {3_000: asyncio.Event(), 7_000: asyncio.Event()}

    async def produce() -> None:
        for start in range(0, TOTAL, CHUNK):
            if start in kills:
                await kills[start].wait()  # each kill lands mid-stream, and the stream goes on through it
            for n in range(start, start + CHUNK):
                client.log(event(EVENT_IDS[n], n))
            await asyncio.sleep(0.005)

    async def kill_collector_once_it_has(delivered: int, checkpoint: int) -> None:
        """Run the collector until it took ``delivered`` events, SIGKILL it, and let the stream go on."""
        async with running_service(config, port, tmp_path / f"run-{checkpoint}.log") as service:
            await wait_until(lambda: client.stats.sent >= delivered)
            service.process.kill()
            await service.process.wait()
        spooled = client.stats.spooled
        kills[checkpoint].set()
        await wait_until(lambda: client.stats.spooled > spooled)  # the outage outlasted a retry cycle

    producer = asyncio.create_task(produce())
    await kill_collector_once_it_has(2_000, 3_000)
    await kill_collector_once_it_has(5_000, 7_000)
    async with running_service(config, port, tmp_path / "run-last.log"):
        await producer
        assert await client.flush(timeout=60)
        await client.aclose()

    rows, ids = stored(tmp_path)
    assert rows == TOTAL
    assert ids == set(EVENT_IDS)
    assert client.stats.replayed > 0
    assert (client.stats.rejected, client.stats.dropped, client.pending) == (0, 0, 0)


async def test_collector_down_for_the_whole_run_gets_everything_from_the_spool(tmp_path: Path) -> None:
    port = free_port()
    spool_dir = tmp_path / "spool"
    offline = EventClient(f"http://127.0.0.1:{port}", TOKEN, spool_dir=spool_dir, max_retry_delay=0.5)
    for start in range(0, TOTAL, CHUNK):
        for n in range(start, start + CHUNK):
            offline.log(event(EVENT_IDS[n], n))
        await asyncio.sleep(0)
    await offline.aclose(timeout=1)
    assert (offline.stats.sent, offline.stats.spooled, offline.stats.dropped) == (0, TOTAL, 0)

    async with running_service(collector_config(tmp_path, port), port, tmp_path / "run.log"):
        online = EventClient(f"http://127.0.0.1:{port}", TOKEN, spool_dir=spool_dir)
        await online.start()
        assert online.pending == TOTAL
        assert await online.flush(timeout=60)
        await online.aclose()

    rows, ids = stored(tmp_path)
    assert rows == TOTAL
    assert ids == set(EVENT_IDS)
    assert (online.stats.replayed, online.stats.sent, online.stats.dropped) == (TOTAL, TOTAL, 0)
