"""Crash safety: the collector SIGKILLed at random moments under load loses nothing it acknowledged.

``python -m bench.crash [--kills 5] [--senders 32] [--seed N]``

Concurrent raw-HTTP senders (aiohttp; single events and small batches, every event with its own
``event_id``) keep posting to the real ``leadtrail run`` while it is killed with SIGKILL, ``--kills``
times, each kill at a random moment after the restarted process took some load; after each kill it is
started again on the same file. A sender records an event as acknowledged only on a 202 (or, for a 207,
the items the answer does not list as errors) and retries the same body on a connection error or a 503,
as a source does. At the end every acknowledged ``event_id`` is looked up in the SQLite file with
``sqlite3``: each must be there exactly once. It prints ``acknowledged N, found N, lost 0``; not a speed
figure, so no baseline. The exit code is 1 when anything was lost or stored twice.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench.common import running_server
from tests.processes import free_port, write_config

TOKEN = "crash-bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
MESSAGE = "Здравствуйте, хочу записаться на стрижку в субботу"


@dataclass
class CrashOutcome:
    kills: int = 0
    acknowledged: set[str] = field(default_factory=set)
    copies: Counter[str] = field(default_factory=Counter)  # event_id -> rows in the database
    answers: Counter[str] = field(default_factory=Counter)  # HTTP status or exception name -> count
    unexpected: list[str] = field(default_factory=list)  # answers a source must never get

    @property
    def found(self) -> int:
        return sum(1 for event_id in self.acknowledged if self.copies[event_id] >= 1)

    @property
    def lost(self) -> int:
        return len(self.acknowledged) - self.found

    @property
    def duplicated(self) -> int:
        return sum(1 for count in self.copies.values() if count > 1)

    def line(self) -> str:
        return f"acknowledged {len(self.acknowledged)}, found {self.found}, lost {self.lost}"


def _event(event_id: str, n: int) -> dict[str, Any]:
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "event": "message_received",
        "user_id": f"tg_{n % 500}",
        "channel": "telegram",
        "message": MESSAGE,
        "event_id": event_id,
    }


async def _sender(
    number: int, url: str, outcome: CrashOutcome, stop: asyncio.Event, rng: random.Random
) -> None:
    """Post until told to stop; a body is retried until it is answered, as a source retries."""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        sequence = 0
        while not stop.is_set():
            size = 1 if rng.random() < 0.6 else rng.randint(2, 5)
            ids = [f"c{number}-{sequence}-{n}" for n in range(size)]
            sequence += 1
            events = [_event(event_id, number * 7 + n) for n, event_id in enumerate(ids)]
            body = orjson.dumps(events[0] if size == 1 else events)
            while True:
                try:
                    async with http.post(f"{url}/v1/events", data=body, headers=HEADERS) as response:
                        status, answer = response.status, await response.read()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    outcome.answers[type(exc).__name__] += 1
                    if stop.is_set():
                        return  # unanswered, hence not acknowledged: nothing is owed for it
                    await asyncio.sleep(0.1)  # the collector is down: leave the CPU to its restart
                    continue
                outcome.answers[str(status)] += 1
                if status == 503:
                    if "Retry-After" not in response.headers:
                        outcome.unexpected.append("503 without Retry-After")
                    await asyncio.sleep(0.05)
                    continue
                if status == 202:
                    outcome.acknowledged.update(ids)
                elif status == 207:
                    rejected = {error["index"] for error in orjson.loads(answer)["errors"]}
                    outcome.acknowledged.update(i for n, i in enumerate(ids) if n not in rejected)
                    outcome.unexpected.append(f"207: {answer[:200].decode(errors='replace')}")
                else:
                    outcome.unexpected.append(f"{status}: {answer[:200].decode(errors='replace')}")
                break


def stored_copies(db_path: Path) -> Counter[str]:
    with closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT event_id, count(*) FROM events GROUP BY event_id")
        return Counter({event_id: count for event_id, count in rows})


async def run_crash(
    workdir: Path,
    *,
    kills: int = 5,
    senders: int = 8,
    load_before_kill: int = 50,
    max_extra_seconds: float = 0.5,
    seed: int | None = None,
) -> CrashOutcome:
    """Kill the collector ``kills`` times under load, restart it, and count the acknowledged events.

    Each kill waits until the running process acknowledged ``load_before_kill`` events (so it is under
    load, whatever the machine's speed) and then a random 0..``max_extra_seconds`` more.
    """
    rng = random.Random(seed)
    port = free_port()
    db_path = workdir / "crash.db"
    config = write_config(
        workdir / "crash.toml",
        {"database": {"url": f"sqlite+aiosqlite:///{db_path}"}, "ingest": {"port": port, "tokens": [TOKEN]}},
    )
    outcome = CrashOutcome()
    stop = asyncio.Event()
    url = f"http://127.0.0.1:{port}"
    tasks = [
        asyncio.create_task(_sender(n, url, outcome, stop, random.Random(rng.random())))
        for n in range(senders)
    ]
    try:
        for attempt in range(kills + 1):
            async with running_server(config, port, workdir / f"run-{attempt}.log") as server:
                before = len(outcome.acknowledged)
                deadline = time.monotonic() + 60
                while len(outcome.acknowledged) < before + load_before_kill:
                    if time.monotonic() > deadline or outcome.unexpected:
                        raise RuntimeError(
                            f"no load reached the collector ({outcome.unexpected[:1]}):\n{server.log_tail()}"
                        )
                    await asyncio.sleep(0.01)
                await asyncio.sleep(rng.uniform(0, max_extra_seconds))
                if attempt == kills:
                    stop.set()
                    await asyncio.gather(*tasks)
                    if await server.stop() != 0:
                        raise RuntimeError(f"the last collector did not stop cleanly:\n{server.log_tail()}")
                else:
                    server.process.kill()
                    await server.process.wait()
                    outcome.kills += 1
    finally:
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    outcome.copies = stored_copies(db_path)
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.crash", description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=5, help="SIGKILLs under load (default 5)")
    parser.add_argument("--senders", type=int, default=32, help="concurrent HTTP senders (default 32)")
    parser.add_argument("--load", type=int, default=2000, help="events acknowledged before each kill")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the kill moments")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leadtrail-crash-") as tmp:
        started = time.perf_counter()
        outcome = asyncio.run(
            run_crash(
                Path(tmp),
                kills=args.kills,
                senders=args.senders,
                load_before_kill=args.load,
                max_extra_seconds=2.0,
                seed=args.seed,
            )
        )
    answers = ", ".join(f"{count:,} × {answer}" for answer, count in sorted(outcome.answers.items()))
    seconds = time.perf_counter() - started
    print(f"crash safety: {outcome.kills} SIGKILLs, {args.senders} senders, {seconds:.0f} s")
    print(f"answers: {answers}")
    print(f"event ids stored more than once: {outcome.duplicated}")
    if outcome.unexpected:
        print(f"unexpected answers: {len(outcome.unexpected)}, first: {outcome.unexpected[0]}")
    print(outcome.line())
    return 0 if outcome.lost == 0 and outcome.duplicated == 0 and not outcome.unexpected else 1


if __name__ == "__main__":
    sys.exit(main())
