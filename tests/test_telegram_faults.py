"""Telegram trouble under the real ``leadtrail run`` (issue 7.3), against the fake Bot API.

Telegram is down when the process starts, then the morning report meets a hung request (longer than the
client's timeout), a 429 with retry_after, a 500, and an owner who blocked the bot. The process stays up
and answers owners meanwhile, every other owner gets the report exactly once as soon as it can be sent,
and the owner who blocked the bot is tried once, not forever.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.fake_bot_api import FakeBotAPI
from tests.processes import free_port, running_service, write_config

pytestmark = pytest.mark.slow

BOT_TOKEN = "123456:TEST-token_abcdefghijklmnopqrstu"
# One owner's album hangs, one gets 429, one 500, and one has blocked the bot.
HUNG, THROTTLED, ERRORED, BLOCKED = 1001, 1002, 1003, 1004
REQUEST_TIMEOUT = 3


def zone_with_report_just_due() -> tuple[str, str]:
    """A time zone and a ``daily_at`` two minutes ago there, the same local day: the start-up catch-up
    sends the morning report at once."""
    for name in ("Europe/Moscow", "UTC", "America/New_York", "Asia/Tokyo"):
        local = datetime.now(UTC).astimezone(ZoneInfo(name))
        due = local - timedelta(minutes=2)
        if due.date() == local.date() and local.hour < 23:
            return name, f"{due:%H:%M}"
    raise AssertionError("no zone found")  # pragma: no cover - four zones cannot all be near midnight


def albums_to(api: FakeBotAPI, *, ok: bool) -> Counter[int]:
    return Counter(int(call.params["chat_id"]) for call in api.calls_of("sendMediaGroup") if call.ok == ok)


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:  # noqa: ASYNC109
    try:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {timeout} s: {what}") from None


async def test_report_reaches_every_owner_through_hang_429_500_and_a_block(tmp_path: Path) -> None:
    port, db_path = free_port(), tmp_path / "run.db"
    timezone, daily_at = zone_with_report_just_due()
    async with FakeBotAPI() as api:
        api.fail_next("getMe", 502)  # Telegram is down when LeadTrail starts
        api.hang_next("sendMediaGroup", REQUEST_TIMEOUT * 2, chat_id=HUNG)
        api.fail_next("sendMediaGroup", 429, retry_after=1, chat_id=THROTTLED)
        api.fail_next("sendMediaGroup", 500, chat_id=ERRORED)
        api.block_chat(BLOCKED)
        config = write_config(
            tmp_path / "config.toml",
            {
                "timezone": timezone,
                "database": {"url": f"sqlite+aiosqlite:///{db_path}"},
                "ingest": {"port": port, "tokens": ["t"]},
                "telegram": {
                    "token": BOT_TOKEN,
                    "api_server": api.base_url,
                    "owners": [HUNG, THROTTLED, ERRORED, BLOCKED],
                    "request_timeout_seconds": REQUEST_TIMEOUT,
                },
                "reports": {"daily_at": daily_at},
            },
        )
        async with running_service(config, port, tmp_path / "run.log") as service:
            await wait_until(lambda: len(api.calls_of("sendMediaGroup")) >= 1, "the report is being sent")
            # While the delivery waits on the hung request, the bot still answers an owner.
            api.send_private_message(ERRORED, "/start")
            await wait_until(
                lambda: any(
                    call.ok and call.params["chat_id"] == ERRORED for call in api.calls_of("sendMessage")
                ),
                "the owner's /start is answered",
            )
            await wait_until(
                lambda: albums_to(api, ok=True) == {HUNG: 1, THROTTLED: 1, ERRORED: 1},
                "every owner but the one who blocked the bot got the report",
            )
            await asyncio.sleep(2)  # nothing more is sent: each got it once
            assert albums_to(api, ok=True) == {HUNG: 1, THROTTLED: 1, ERRORED: 1}
            assert albums_to(api, ok=False) == {HUNG: 1, THROTTLED: 1, ERRORED: 1, BLOCKED: 1}
            assert [len(call.params["media"]) for call in api.calls_of("sendMediaGroup") if call.ok] == [
                4
            ] * 3
            assert service.process.returncode is None
            assert (await service.healthz())["telegram"] == "up"
            assert await service.stop() == 0
    with closing(sqlite3.connect(db_path)) as conn:
        outbox = dict(
            conn.execute("SELECT recipient, sent_at IS NOT NULL FROM outbox WHERE kind = 'daily_report'")
        )
        [failed] = conn.execute(
            "SELECT recipient, last_error FROM outbox WHERE failed_at IS NOT NULL"
        ).fetchall()
    assert outbox == {str(HUNG): 1, str(THROTTLED): 1, str(ERRORED): 1, str(BLOCKED): 0}
    assert failed[0] == str(BLOCKED) and "blocked" in failed[1]
    log = service.log()
    assert log.count("Bot API unreachable") == 1  # the outage at start; one owner's failed send is no outage
    assert BOT_TOKEN not in log
