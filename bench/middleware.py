"""What the LeadTrail tracker costs a salon bot per update, and how fast ``EventClient`` delivers.

``python -m bench.middleware [--updates 20000] [--events 50000]``

(1) Cost per update on the handler's path. One salon bot (a Dispatcher and a router whose handler calls
    ``annotate``, logs a lead and answers with ``message.answer``) is fed private-message ``Update``s through
    ``Dispatcher.feed_update``, with the tracker registered by ``LeadTrailTracker.setup`` (three events per
    update: message_received, lead_created, assistant_response) and with it unregistered again, in turns
    of 50 updates. The same bot instance serves both sides because two instances of the very same bot can
    differ by tens of µs, depending on where their objects landed in memory; short turns let the drifting
    load of a shared machine hit both sides alike. Its session answers API calls in memory with the JSON
    Telegram would send, parsed by aiogram's own ``check_response``: the answer goes through aiogram's whole
    request path, the tracker's request middleware included, while the network, which would only add noise
    to both sides, is left out. Time is wall-clock, as the salon's client waits it; the CPU time of the same
    updates (``time.thread_time``, blind to the scheduler) is shown too, since a busy machine stretches wall
    time. ``feed_update`` yields to the event loop, so a sender working meanwhile would bill its own work
    (and the collector's CPU, on a small machine) to whichever update happens to run: the tracker's client
    therefore holds each turn's events (``batch_size`` above one turn) and ``flush()``es them to the running
    collector (``leadtrail run`` in its own process) after every turn, outside the timed window.
(2) The sender's share: ``EventClient.log`` of ``--events`` seed-shaped events as fast as the loop allows,
    then ``flush()``, at the default and at a larger batch size: events per second until the collector
    acknowledged the last one, and this process's CPU per event (log, JSON encoding, HTTP), which a live
    bot pays between updates.

Targets are printed with PASS/MISS, never asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Message, Update

from bench.common import Figure, Target, print_table, running_server, seed_events
from bot.demo.assistant import OfflineSession
from leadtrail_sdk import EventClient, LeadTrailTracker
from tests.processes import free_port, write_config

BOT_TOKEN = "123456:BENCH-token_abcdefghijklmnop"
INGEST_TOKEN = "bench-middleware"
TURN = 50  # updates per turn: short, so both sides see the same machine
ADDED_MEDIAN_US = Target("<=", 50)


def salon_router() -> Router:
    router = Router()

    @router.message(F.text)
    async def booking_request(message: Message, tracker: LeadTrailTracker | None = None) -> None:
        """Answers like a rule-based assistant; annotates and logs only when the tracker is there."""
        if tracker is not None:
            tracker.annotate(intent="booking.request", confidence=0.92, scenario="v2")
            tracker.log_event("lead_created", lead_id="lead_2025_001")
        await message.answer("Когда вам удобно? Сегодня в 18:00 свободно.")

    return router


@dataclass
class Samples:
    wall: list[int] = field(default_factory=list)
    cpu: list[int] = field(default_factory=list)


@dataclass
class SalonBot:
    """The salon's bot, with a switch that registers or unregisters LeadTrail between turns."""

    dp: Dispatcher
    bot: Bot
    tracker: LeadTrailTracker
    updates: list[Update]

    def __post_init__(self) -> None:
        self.tracker.setup(self.dp, self.bot)
        # setup() appended one middleware to each chain: keep them to take out and put back.
        self._update_middleware = self.dp.update.outer_middleware[-1]
        self._answer_middleware = self.bot.session.middleware[-1]
        self.tracked = True

    def track(self, on: bool) -> None:
        if on == self.tracked:
            return
        if on:
            self.dp.update.outer_middleware.register(self._update_middleware)
            self.bot.session.middleware.register(self._answer_middleware)
            self.dp["tracker"] = self.tracker
        else:
            self.dp.update.outer_middleware.unregister(self._update_middleware)
            self.bot.session.middleware.unregister(self._answer_middleware)
            del self.dp["tracker"]
        self.tracked = on

    async def feed(self, into: Samples | None = None) -> None:
        for update in self.updates:
            started, cpu_started = time.perf_counter_ns(), time.thread_time_ns()
            await self.dp.feed_update(self.bot, update)
            if into is not None:
                into.cpu.append(time.thread_time_ns() - cpu_started)
                into.wall.append(time.perf_counter_ns() - started)


def salon_bot(tracker: LeadTrailTracker) -> SalonBot:
    bot = Bot(BOT_TOKEN, session=OfflineSession(time.time))
    dp = Dispatcher(tracker=tracker)
    dp.include_router(salon_router())
    return SalonBot(dp, bot, tracker, private_messages(bot, TURN))


def private_messages(bot: Bot, count: int) -> list[Update]:
    """Private messages from many clients, parsed once: polling parses them in both bots alike."""
    return [
        Update.model_validate(
            {
                "update_id": n + 1,
                "message": {
                    "message_id": n + 1,
                    "date": int(time.time()),
                    "chat": {"id": 10_000 + n % 300, "type": "private", "first_name": "Анна"},
                    "from": {
                        "id": 10_000 + n % 300,
                        "is_bot": False,
                        "first_name": "Анна",
                        "last_name": "И.",
                    },
                    "text": "Здравствуйте, хочу записаться на стрижку",
                },
            },
            context={"bot": bot},
        )
        for n in range(count)
    ]


async def per_update_cost(url: str, spool_dir: Path, total: int) -> tuple[Samples, Samples, EventClient]:
    client = EventClient(url, INGEST_TOKEN, spool_dir=spool_dir, batch_size=3 * TURN + 1, flush_interval=3600)
    await client.start()
    salon = salon_bot(LeadTrailTracker(client))
    without, with_tracker = Samples(), Samples()
    for _ in range(10):  # warm-up, both ways
        for on in (True, False):
            salon.track(on)
            await salon.feed()
    await client.flush(timeout=60)
    gc.collect()
    for turn in range(max(1, total // TURN)):
        for on in (False, True) if turn % 2 == 0 else (True, False):
            salon.track(on)
            await salon.feed(with_tracker if on else without)
            if on:
                await client.flush(timeout=60)
    await client.aclose(timeout=30)
    return without, with_tracker, client


@dataclass
class Throughput:
    batch_size: int
    events_per_second: float
    cpu_us_per_event: float
    client: EventClient


async def throughput(url: str, spool_dir: Path, events: int, batch_size: int) -> Throughput:
    prepared = list(seed_events(events, run_tag=f"bench-{batch_size}-{os.getpid()}"))
    client = EventClient(url, INGEST_TOKEN, spool_dir=spool_dir, batch_size=batch_size, max_queue=events)
    await client.start()
    started, cpu_started = time.perf_counter(), time.process_time()
    for event in prepared:
        client.log(event)
    await client.flush(timeout=600)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    await client.aclose()
    return Throughput(batch_size, events / seconds, cpu_seconds / events * 1e6, client)


def micros(samples: list[int], quantile: float) -> float:
    return statistics.quantiles(samples, n=100, method="inclusive")[round(quantile * 100) - 1] / 1000


def report(plain: Samples, tracked: Samples, runs: list[Throughput]) -> None:
    def figures(clock: str, base: list[int], with_tracker: list[int], target: Target | None) -> list[Figure]:
        base_median, tracked_median = statistics.median(base) / 1000, statistics.median(with_tracker) / 1000
        base_p95, tracked_p95 = micros(base, 0.95), micros(with_tracker, 0.95)
        return [
            Figure(f"{clock}: without the tracker, median", base_median, "µs", 1),
            Figure(f"{clock}: with the tracker, median", tracked_median, "µs", 1),
            Figure(f"{clock}: added per update, median", tracked_median - base_median, "µs", 1, target),
            Figure(f"{clock}: without the tracker, p95", base_p95, "µs", 1),
            Figure(f"{clock}: with the tracker, p95", tracked_p95, "µs", 1),
            Figure(f"{clock}: added per update, p95", tracked_p95 - base_p95, "µs", 1),
            Figure(
                f"{clock}: added per update, median, of the update",
                100 * (tracked_median / base_median - 1),
                "%",
                1,
            ),
        ]

    print_table(
        f"LeadTrail tracker: {len(plain.wall):,} updates each way through Dispatcher.feed_update "
        f"(in-memory Bot API session); EventClient → leadtrail run",
        [
            *figures("wall", plain.wall, tracked.wall, ADDED_MEDIAN_US),
            *figures("CPU", plain.cpu, tracked.cpu, None),
            *(
                figure
                for run in runs
                for figure in (
                    Figure(
                        f"client throughput, batch_size={run.batch_size}", run.events_per_second, "events/s"
                    ),
                    Figure(
                        f"client CPU per event, batch_size={run.batch_size}", run.cpu_us_per_event, "µs", 1
                    ),
                )
            ),
        ],
    )


async def run(args: argparse.Namespace, workdir: Path) -> bool:
    port = free_port()
    config = write_config(
        workdir / "leadtrail.toml",
        {
            "database": {"url": f"sqlite+aiosqlite:///{workdir / 'leadtrail.db'}"},
            "ingest": {"port": port, "tokens": [INGEST_TOKEN]},
        },
    )
    async with running_server(config, port, workdir / "server.log") as server:
        print(f"(1) {args.updates:,} updates each way through Dispatcher.feed_update …", flush=True)
        plain, tracked, tracked_client = await per_update_cost(
            server.url, workdir / "spool-tracker", args.updates
        )
        print(f"(2) {args.events:,} events through EventClient …", flush=True)
        runs = [
            await throughput(server.url, workdir / f"spool-{batch_size}", args.events, batch_size)
            for batch_size in (200, 1000)
        ]
        await server.stop()
    report(plain, tracked, runs)
    clients = [tracked_client, *(run.client for run in runs)]
    spooled = sum(client.stats.spooled for client in clients)
    lost = sum(client.stats.rejected + client.stats.dropped + client.pending for client in clients)
    expected = 3 * (len(tracked.wall) + 10 * TURN)
    print(
        f"checks: {tracked_client.stats.sent:,} of {expected:,} tracker events delivered (3 per update) · "
        f"{spooled} spooled · {lost} rejected, dropped or undelivered"
    )
    print(f"context: load average at start {args.load:.2f} · {os.cpu_count()} CPUs")
    return lost == 0 and tracked_client.stats.sent == expected


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.middleware", description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=20_000, help="timed updates per bot (default 20,000)")
    parser.add_argument(
        "--events", type=int, default=50_000, help="events for the throughput run (default 50,000)"
    )
    args = parser.parse_args(argv)
    for name in ("updates", "events"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    args.load = os.getloadavg()[0]  # other work on the machine skews every figure; the reader should know
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="leadtrail-bench-") as tmp:
        ok = asyncio.run(run(args, Path(tmp)))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
