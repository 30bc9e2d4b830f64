"""YCLIENTS webhooks under load: ``python -m bench.yclients [--webhooks 1000] [--senders 20]``.

A salon's day arrives as YCLIENTS sends it — one webhook per request: a record created, then a visit or
a no-show, then a payment — from ``--senders`` concurrent senders, every webhook delivered twice (YCLIENTS
repeats them), into ``leadtrail run`` on a fresh SQLite file. Printed: the webhook rate, next to the
baseline of the same number of single events POSTed to ``/v1/events`` by as many senders in the same run
(the endpoint every source uses); and the check that each webhook's events were stored exactly once.
The exit code is 1 when an event is missing or stored twice, or an answer was not 200/202.
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import Figure, print_table, running_server
from tests.fake_yclients import FakeYclients
from tests.processes import free_port, write_config

RECORD, FINANCES = "record", "finances_operation"


def salon_day(webhooks: int) -> tuple[list[dict[str, Any]], int]:
    """``webhooks`` objects (records made, visited or missed, paid) and how many events they mean."""
    fake = FakeYclients()
    start = datetime(2026, 11, 20, 7, tzinfo=UTC)
    hooks: list[dict[str, Any]] = []
    events = 0
    n = 0
    while len(hooks) < webhooks:
        n += 1
        created = start + timedelta(seconds=30 * n)
        record = fake.book(
            client_id=80_000 + n,
            phone=f"+7917{n:07d}",
            name=f"Клиент {n}",
            at=created + timedelta(hours=3),
            created=created,
        )
        hooks.append(fake.webhook(RECORD, "create", record))
        events += 1
        if n % 5 == 0:
            hooks.append(
                fake.webhook(
                    RECORD, "update", fake.change(record["id"], created + timedelta(hours=3), attendance=-1)
                )
            )
            events += 1
            continue
        hooks.append(
            fake.webhook(
                RECORD, "update", fake.change(record["id"], created + timedelta(hours=3), attendance=1)
            )
        )
        hooks.append(
            fake.webhook(
                FINANCES, "create", fake.payment(record["id"], 1500, created + timedelta(hours=4), n)
            )
        )
        events += 2
    return hooks[:webhooks], events - max(0, len(hooks) - webhooks)


async def _send(url: str, bodies: list[bytes], senders: int, headers: dict[str, str]) -> tuple[float, int]:
    """Seconds to send every body (``senders`` at a time) and how many answers were not 200/202."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    bad = 0

    async def sender(http: aiohttp.ClientSession) -> None:
        nonlocal bad
        while not queue.empty():
            body = queue.get_nowait()
            async with http.post(url, data=body, headers=headers) as response:
                await response.read()
                bad += response.status not in (200, 202)

    async with aiohttp.ClientSession() as http:
        started = time.perf_counter()
        await asyncio.gather(*(sender(http) for _ in range(senders)))
        return time.perf_counter() - started, bad


async def run(webhooks: int, senders: int) -> int:
    hooks, expected = salon_day(webhooks)
    # Twice each, the second delivery right after the first (as YCLIENTS repeats), in the day's order.
    bodies = [orjson.dumps(hook) for hook in hooks for _ in range(2)]
    singles = [
        orjson.dumps(
            {
                "timestamp": f"2026-11-20T10:{n % 60:02d}:00+03:00",
                "event": "visit",
                "user_id": f"tg_{n}",
                "event_id": f"b{n}",
            }
        )
        for n in range(len(bodies))
    ]
    token, webhook_token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    with tempfile.TemporaryDirectory(prefix="leadtrail-bench-") as folder:
        database = Path(folder) / "bench.db"
        port = free_port()
        config = write_config(
            Path(folder) / "config.toml",
            {
                "database": {"url": f"sqlite+aiosqlite:///{database}"},
                "ingest": {"port": port, "tokens": [token]},
                "yclients": {"webhook_token": webhook_token},
            },
        )
        async with running_server(config, port, Path(folder) / "run.log") as server:
            json_headers = {"Content-Type": "application/json"}
            hook_seconds, hook_bad = await _send(
                f"{server.url}/v1/yclients/{webhook_token}", bodies, senders, json_headers
            )
            auth = {**json_headers, "Authorization": f"Bearer {token}"}
            event_seconds, event_bad = await _send(f"{server.url}/v1/events", singles, senders, auth)
            await server.stop()
        with sqlite3.connect(database) as conn:
            stored = conn.execute("SELECT count(*) FROM events WHERE channel = 'yclients'").fetchone()[0]
            twice = conn.execute(
                "SELECT count(*) FROM (SELECT event, appointment_id FROM events WHERE channel = 'yclients'"
                " GROUP BY event, appointment_id HAVING count(*) > 1)"
            ).fetchone()[0]
    print_table(
        f"YCLIENTS webhooks: {len(hooks):,} webhooks × 2 deliveries, {senders} senders, sqlite",
        [
            Figure("webhooks, one per request", len(bodies) / hook_seconds, "requests/s"),
            Figure("baseline: single events to /v1/events", len(singles) / event_seconds, "requests/s"),
            Figure(
                "webhooks / baseline", (len(bodies) / hook_seconds) / (len(singles) / event_seconds), "", 2
            ),
        ],
    )
    bad = hook_bad + event_bad
    print(f"checks: {stored:,} of {expected:,} events stored · {twice} stored twice · {bad} bad answers")
    return 0 if stored == expected and twice == 0 and bad == 0 else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--webhooks", type=int, default=1000)
    parser.add_argument("--senders", type=int, default=20)
    args = parser.parse_args()
    sys.exit(asyncio.run(run(args.webhooks, args.senders)))


if __name__ == "__main__":
    main()
