"""Storage trouble under the real ``leadtrail run`` (issue 7.2): the SQLite file locked by another process
for longer than the busy timeout, then a full disk (a file-size limit put on the running process).

Both times: 503 with Retry-After and never a 202 for what was not committed, recovery by itself when the
storage is back, and exactly one "failing" and one "recovered" message to each owner, sent through the bot
while the database (and with it the outbox) cannot be written.
"""

from __future__ import annotations

import asyncio
import resource
import signal
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from reports.texts import faults as fault_texts
from tests.fake_bot_api import FakeBotAPI
from tests.processes import (
    RunningService,
    free_port,
    process_tree,
    running_service,
    sqlite_write_lock,
    write_config,
)

pytestmark = pytest.mark.slow

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
TOKEN = "storage-faults"
OWNERS = (1001, 1002)
RETRY_AFTER = "3"


def ignore_sigxfsz() -> None:
    """In the child: a write over the file-size limit fails with EFBIG instead of killing the process."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def event(event_id: str, message: str = "Здравствуйте, хочу записаться") -> dict[str, Any]:
    return {
        "timestamp": "2026-11-25T10:00:00+03:00",
        "event": "message_received",
        "user_id": "tg_777",
        "message": message,
        "event_id": event_id,
    }


def stored(db_path: Path) -> Counter[str]:
    with closing(sqlite3.connect(db_path, timeout=10)) as conn:
        return Counter(event_id for (event_id,) in conn.execute("SELECT event_id FROM events"))


def notices(api: FakeBotAPI, text: str) -> Counter[int]:
    """How many times each chat got ``text`` (successful calls only)."""
    return Counter(
        int(call.params["chat_id"])
        for call in api.calls_of("sendMessage")
        if call.ok and call.params.get("text") == text
    )


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


class Sender:
    def __init__(self, http: aiohttp.ClientSession, url: str) -> None:
        self._http, self._url = http, url
        self.acknowledged: set[str] = set()

    async def post(self, body: dict[str, Any]) -> tuple[int, str | None]:
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        async with self._http.post(f"{self._url}/v1/events", data=orjson.dumps(body), headers=headers) as r:
            await r.read()
            if r.status == 202:
                self.acknowledged.add(body["event_id"])
            return r.status, r.headers.get("Retry-After")

    async def post_until_accepted(self, body: dict[str, Any]) -> None:
        """What a source does after a 503: come back later until the event is taken."""
        async with asyncio.timeout(20):
            while (await self.post(body))[0] != 202:  # noqa: ASYNC110
                await asyncio.sleep(0.2)


async def test_locked_then_full_storage_answers_503_recovers_and_tells_owners_once(tmp_path: Path) -> None:
    port, db_path = free_port(), tmp_path / "faults.db"
    async with FakeBotAPI() as api:
        config = write_config(
            tmp_path / "config.toml",
            {
                "database": {"url": f"sqlite+aiosqlite:///{db_path}", "busy_timeout_ms": 300},
                "ingest": {
                    "port": port,
                    "tokens": [TOKEN],
                    "retry_after_seconds": int(RETRY_AFTER),
                    "storage_alarm_after_seconds": 0,
                },
                "telegram": {
                    "token": BOT_TOKEN,
                    "api_server": api.base_url,
                    "owners": list(OWNERS),
                    "notice_interval_minutes": 0,  # a second outage is told too
                },
                "reports": {"daily_grace_hours": 0},  # no morning report in the way
            },
        )
        log = tmp_path / "run.log"
        async with (
            running_service(config, port, log, preexec_fn=ignore_sigxfsz) as service,
            aiohttp.ClientSession() as http,
        ):
            sender = Sender(http, service.url)
            await wait_until(lambda: api.calls_of("getUpdates") != [], "the bot polls Telegram")
            assert await sender.post(event("before")) == (202, None)

            await locked_by_another_process(service, sender, api, db_path)
            await disk_full(service, sender, api, db_path)

            await asyncio.sleep(2)  # a few more alarm checks: nothing more is owed to anyone
            assert notices(api, fault_texts.STORAGE_FAILING) == {owner: 2 for owner in OWNERS}
            assert notices(api, fault_texts.STORAGE_RECOVERED) == {owner: 2 for owner in OWNERS}
            assert (await service.healthz())["storage"] == "ok"
            assert await service.stop() == 0
    copies = stored(db_path)
    assert set(copies) == sender.acknowledged
    assert set(copies.values()) == {1}
    # The failures are logged by their cause, without the clients' messages the failed statements held.
    assert "disk I/O error" in service.log() and "database is locked" in service.log()
    assert "Здравствуйте" not in service.log() and "длинное" not in service.log()


async def locked_by_another_process(
    service: RunningService, sender: Sender, api: FakeBotAPI, db_path: Path
) -> None:
    async with sqlite_write_lock(db_path):
        refused = [event(f"locked-{n}") for n in range(3)]
        for body in refused:
            assert await sender.post(body) == (503, RETRY_AFTER)
        await wait_until(
            lambda: notices(api, fault_texts.STORAGE_FAILING) == {owner: 1 for owner in OWNERS},
            "each owner told once that events cannot be stored",
        )
        assert not set(stored(db_path)) & {body["event_id"] for body in refused}
    for body in refused:
        await sender.post_until_accepted(body)
    await wait_until(
        lambda: notices(api, fault_texts.STORAGE_RECOVERED) == {owner: 1 for owner in OWNERS},
        "each owner told once that storing works again",
    )
    assert service.process.returncode is None


async def disk_full(service: RunningService, sender: Sender, api: FakeBotAPI, db_path: Path) -> None:
    """The files may grow 64 KiB more; then every write past that fails with EFBIG, as on a full disk."""
    pids = process_tree(service.process.pid)
    assert len(pids) == 2  # leadtrail run and its writer process: a full disk is full for both
    files = [db_path, db_path.with_name(db_path.name + "-wal")]
    limit = max(path.stat().st_size for path in files if path.exists()) + 64 * 1024
    for pid in pids:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    big = "Очень длинное сообщение клиента. " * 120  # ~8 KB a row
    answers: list[tuple[str, int, str | None]] = []
    try:
        for n in range(200):
            body = event(f"full-{n}", big)
            status, retry_after = await sender.post(body)
            answers.append((body["event_id"], status, retry_after))
            if status == 503:
                break
        for n in range(200, 203):  # while the disk stays full, every event is refused
            body = event(f"full-{n}", big)
            status, retry_after = await sender.post(body)
            answers.append((body["event_id"], status, retry_after))
        first_refusal = next(n for n, (_, status, _) in enumerate(answers) if status == 503)
        assert first_refusal > 0  # the limit let some events in first: it hit mid-stream
        assert {(status, retry) for _, status, retry in answers[first_refusal:]} == {(503, RETRY_AFTER)}
        await wait_until(
            lambda: notices(api, fault_texts.STORAGE_FAILING) == {owner: 2 for owner in OWNERS},
            "each owner told once about the full disk",
        )
        refused = {event_id for event_id, _, _ in answers[first_refusal:]}
        assert not set(stored(db_path)) & refused  # a 503 is never a half-written event
    finally:
        for pid in pids:
            resource.prlimit(pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    for event_id in sorted(refused):
        await sender.post_until_accepted(event(event_id, big))
    await wait_until(
        lambda: notices(api, fault_texts.STORAGE_RECOVERED) == {owner: 2 for owner in OWNERS},
        "each owner told once that storing works again after the full disk",
    )
    assert service.process.returncode is None
