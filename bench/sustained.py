"""Sustained load: many single-event senders plus a few batch senders against ``leadtrail run`` for a minute.

``python -m bench.sustained [--seconds 60] [--senders 200] [--rate 1000] [--batch-senders 4]
[--batch-size 100] [--batch-rate 1] [--client auto|wrk|python] [--replay]``

The real server runs in its own process on loopback with a fresh SQLite file. ``--senders`` senders
each post one event at a time on a fixed schedule, together ``--rate`` events/s (spread out, so they do
not march in step); ``--batch-senders`` more post ``--batch-size`` events ``--batch-rate`` times a second
each. A single event's acknowledgement latency is the time from sending the request to reading the 202.
A sender that falls behind its schedule sends at once without sleeping, so a slow server shows as lower
throughput and higher latency, not hidden. Every event is stamped with the moment it is sent, as a live
assistant's are. ``--replay`` sends the seed's own historic timestamps instead, over and over: then
nearly every message arrives late for a client with many stored events (a backlog replayed, not live
traffic), and the writer works out that client's later answers and bookings again each time.

The senders are wrk's connections when wrk is installed (``bench.wrk_load``: a compiled client that
leaves the second core to the machine), else Python coroutines on aiohttp; ``--client`` picks. The
Python client needs about a core of its own at this rate, and its own queueing adds to every figure.

Baseline, measured in the same run just before the load with the same client: single events sent one
at a time to the idle server, what one event costs with nothing else going on. Printed: error responses
(must be 0), p50/p99 latency under load next to the idle baseline, throughput, the server's RSS at the
start and the end of the load (plus its peak), and the CPU the server and the load generator used. Every
acknowledged event is then counted in the file. The exit code is 1 on any error response or an event
acknowledged but not stored.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import os
import random
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import aiohttp
import orjson

from bench.common import (
    MB,
    Figure,
    Target,
    cpu_seconds,
    print_table,
    running_server,
    seed_events,
    server_memory_bytes,
)
from bench.wrk_load import WrkResult, run_wrk, write_load_files, wrk_path
from tests.processes import free_port, process_tree, write_config

TOKEN = "sustained-bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
P99_TARGET_MS = Target("<=", 50)
ERRORS_TARGET = Target("<=", 0)
BASELINE_REQUESTS = 200
BASELINE_RATE = 100  # requests/s: one at a time, with the server idle in between
Client = Literal["wrk", "python"]


def own_and_children_cpu_seconds() -> float:
    """This process and its finished children (wrk): the load generator's CPU."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN))
    )


def percentile(values: list[float], share: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), in the values' unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class Stream:
    """One kind of sender's acknowledged requests and their latency."""

    requests: int = 0
    p50_ms: float = float("nan")
    p99_ms: float = float("nan")

    @classmethod
    def of(cls, latencies: list[float]) -> Stream:
        return cls(len(latencies), percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000)

    @classmethod
    def of_wrk(cls, result: WrkResult) -> Stream:
        return cls(result.requests - result.errors.get("refused", 0), result.p50_ms, result.p99_ms)


@dataclass
class SustainedOutcome:
    client: Client = "python"
    seconds: float = 0.0
    single: Stream = field(default_factory=Stream)
    batch: Stream = field(default_factory=Stream)
    baseline: Stream = field(default_factory=Stream)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    acknowledged: int = 0  # events answered 202, the baseline's included
    acknowledged_before_load: int = 0  # of which by the baseline
    in_flight_at_end: int = 0  # at most this many events may be stored without the answer being read
    stored: int = 0
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    server_cpu_seconds: list[float] = field(default_factory=list)  # the server's, then its writer process's
    client_cpu_seconds: float = 0.0
    exit_code: int | None = None

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self.first_error is None:
            self.first_error = detail

    def add_wrk_errors(self, result: WrkResult) -> None:
        for kind, count in result.errors.items():
            self.errors[kind] += count
            if self.first_error is None:
                self.first_error = f"wrk counted {count} {kind}"

    @property
    def lost(self) -> int:
        """Acknowledged but not in the file: must be 0."""
        return max(0, self.acknowledged - self.stored)


@dataclass(frozen=True)
class Load:
    seconds: float
    senders: int
    rate: float
    batch_senders: int
    batch_size: int
    batch_rate: float
    replay: bool = False  # the seed's historic timestamps instead of the moment of sending


class Poster:
    """Posts bodies and keeps the books: latency of each 202, errors of anything else."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, outcome: SustainedOutcome, run_tag: str, replay: bool
    ) -> None:
        self._http, self._url, self._outcome = http, f"{url}/v1/events", outcome
        self._events = seed_events(10**9, run_tag=run_tag)
        self._replay = replay

    def body(self, size: int) -> tuple[bytes, int]:
        """Stamped with the moment they are sent, as a live assistant's events are (unless a replay)."""
        events = list(itertools.islice(self._events, size))
        if not self._replay:
            stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
            events = [{**event, "timestamp": stamp} for event in events]
        return orjson.dumps(events[0] if size == 1 else events), size

    async def post(self, body: bytes, size: int, latencies: list[float]) -> None:
        started = time.perf_counter()
        try:
            async with self._http.post(self._url, data=body, headers=HEADERS) as response:
                answer = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._outcome.error(type(exc).__name__, repr(exc))
            return
        elapsed = time.perf_counter() - started
        if status != 202:
            self._outcome.error(str(status), f"{status}: {answer[:300].decode(errors='replace')}")
            return
        latencies.append(elapsed)
        self._outcome.acknowledged += orjson.loads(answer)["accepted"]


async def _paced(poster: Poster, size: int, interval: float, until: float, latencies: list[float]) -> None:
    """Post on a fixed schedule (a random phase first); behind schedule, post at once; stop at ``until``
    either way, so a server slower than the rate shows as lower throughput, not as a longer run."""
    moment = time.perf_counter() + random.uniform(0, interval)
    while moment < until and time.perf_counter() < until:
        delay = moment - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body, count = poster.body(size)
        await poster.post(body, count, latencies)
        moment += interval


async def _python_load(
    url: str, load: Load, outcome: SustainedOutcome, run_tag: str
) -> Callable[[], Awaitable[None]]:
    """Runs the baseline now; returns the load, to be started once the start figures are taken."""
    connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per sender
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30))
    poster = Poster(http, url, outcome, run_tag, load.replay)
    baseline: list[float] = []
    for _ in range(BASELINE_REQUESTS):
        body, count = poster.body(1)
        await poster.post(body, count, baseline)
        await asyncio.sleep(1 / BASELINE_RATE)
    outcome.baseline = Stream.of(baseline)

    async def run_load() -> None:
        single: list[float] = []
        batch: list[float] = []
        until = time.perf_counter() + load.seconds
        try:
            await asyncio.gather(
                *(_paced(poster, 1, load.senders / load.rate, until, single) for _ in range(load.senders)),
                *(
                    _paced(poster, load.batch_size, 1 / load.batch_rate, until, batch)
                    for _ in range(load.batch_senders)
                ),
            )
        finally:
            await http.close()
        outcome.single, outcome.batch = Stream.of(single), Stream.of(batch)

    return run_load


async def _wrk_load(
    url: str, load: Load, outcome: SustainedOutcome, run_tag: str, folder: Path
) -> Callable[[], Awaitable[None]]:
    """Runs the baseline now; returns the load, to be started once the start figures are taken."""
    files = write_load_files(folder, run_tag, load.replay)
    send = functools.partial(run_wrk, url, files, token=TOKEN, threads=2)
    baseline = await send(
        tag=f"{run_tag}-idle", connections=1, per_request=1,
        seconds=BASELINE_REQUESTS / BASELINE_RATE, requests_per_second=BASELINE_RATE,
    )  # fmt: skip
    outcome.baseline = Stream.of_wrk(baseline)
    outcome.acknowledged += baseline.acknowledged_events
    outcome.add_wrk_errors(baseline)
    outcome.in_flight_at_end = 1  # wrk stops at its deadline without reading the answers on their way

    async def run_load() -> None:
        single, batch = await asyncio.gather(
            send(
                tag=f"{run_tag}-single", connections=load.senders, per_request=1,
                seconds=load.seconds, requests_per_second=load.rate,
            ),
            send(
                tag=f"{run_tag}-batch", connections=load.batch_senders,
                per_request=load.batch_size, seconds=load.seconds,
                requests_per_second=load.batch_senders * load.batch_rate,
            ),
        )  # fmt: skip
        for result in (single, batch):
            outcome.acknowledged += result.acknowledged_events
            outcome.add_wrk_errors(result)
        outcome.single, outcome.batch = Stream.of_wrk(single), Stream.of_wrk(batch)
        outcome.in_flight_at_end += load.senders + load.batch_senders * load.batch_size

    return run_load


async def run_sustained(
    workdir: Path,
    *,
    seconds: float = 60,
    senders: int = 200,
    rate: float = 1000,
    batch_senders: int = 4,
    batch_size: int = 100,
    batch_rate: float = 1,
    client: Client = "python",
    replay: bool = False,
) -> SustainedOutcome:
    port = free_port()
    db_path = workdir / "sustained.db"
    config = write_config(
        workdir / "sustained.toml",
        {"database": {"url": f"sqlite+aiosqlite:///{db_path}"}, "ingest": {"port": port, "tokens": [TOKEN]}},
    )
    load = Load(seconds, senders, rate, batch_senders, batch_size, batch_rate, replay)
    outcome = SustainedOutcome(client=client)
    run_tag = f"sustained-{os.getpid()}-{int(time.time())}"
    async with running_server(config, port, workdir / "server.log") as server:
        if client == "wrk":
            run_load = await _wrk_load(server.url, load, outcome, run_tag, workdir)
        else:
            run_load = await _python_load(server.url, load, outcome, run_tag)
        outcome.acknowledged_before_load = outcome.acknowledged
        pid, server_pids = server.process.pid, process_tree(server.process.pid)
        outcome.rss_start = server_memory_bytes(pid, "VmRSS")
        cpu_before, client_cpu_before = [cpu_seconds(p) for p in server_pids], own_and_children_cpu_seconds()
        started = time.perf_counter()
        await run_load()
        outcome.seconds = time.perf_counter() - started
        outcome.rss_end = server_memory_bytes(pid, "VmRSS")
        outcome.server_cpu_seconds = [
            cpu_seconds(p) - b for p, b in zip(server_pids, cpu_before, strict=True)
        ]
        outcome.client_cpu_seconds = own_and_children_cpu_seconds() - client_cpu_before
        outcome.rss_peak = server_memory_bytes(pid, "VmHWM")
        outcome.exit_code = await server.stop()
    with closing(sqlite3.connect(db_path)) as conn:
        outcome.stored = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    return outcome


def report(args: argparse.Namespace, outcome: SustainedOutcome, load: float) -> bool:
    single_rate = outcome.single.requests / outcome.seconds
    total_rate = (outcome.acknowledged - outcome.acknowledged_before_load) / outcome.seconds
    errors = sum(outcome.errors.values())
    client = "wrk" if outcome.client == "wrk" else "Python (aiohttp) senders"
    print_table(
        f"LeadTrail sustained load: {args.seconds:.0f} s, {args.senders} single-event senders at"
        f" {args.rate:,.0f} events/s, {args.batch_senders} batch senders × {args.batch_size} events"
        f" × {args.batch_rate}/s, SQLite; load from {client}",
        [
            Figure("error responses", errors, target=ERRORS_TARGET),
            Figure("single event p50 latency, idle server (baseline)", outcome.baseline.p50_ms, "ms", 1),
            Figure("single event p99 latency, idle server (baseline)", outcome.baseline.p99_ms, "ms", 1),
            Figure("single event p50 latency under load", outcome.single.p50_ms, "ms", 1),
            Figure("single event p99 latency under load", outcome.single.p99_ms, "ms", 1, P99_TARGET_MS),
            Figure(f"batch of {args.batch_size} p50 latency under load", outcome.batch.p50_ms, "ms", 1),
            Figure("single events acknowledged", single_rate, "events/s", 0, Target(">=", 0.95 * args.rate)),
            Figure("all events acknowledged (single + batch)", total_rate, "events/s"),
            Figure("server RSS at start of load (with its writer process)", outcome.rss_start / MB, "MB", 1),
            Figure("server RSS at end of load (with its writer process)", outcome.rss_end / MB, "MB", 1),
            Figure("server peak RSS (VmHWM, both processes)", outcome.rss_peak / MB, "MB", 1),
        ],
    )
    in_flight = (
        f" (≤ {outcome.in_flight_at_end:,} more may be stored: sent as the load stopped, answers unread)"
        if outcome.in_flight_at_end
        else ""
    )
    print(
        f"checks: {outcome.acknowledged:,} events acknowledged, {outcome.stored:,} stored{in_flight},"
        f" {outcome.lost:,} lost · server exit code {outcome.exit_code} · load average at start {load:.2f}"
    )
    server_cpu = " + writer process ".join(
        f"{used / outcome.seconds:.0%}" for used in outcome.server_cpu_seconds
    )
    print(
        f"CPU during the load, share of one core: server {server_cpu},"
        f" load generator {outcome.client_cpu_seconds / outcome.seconds:.0%}"
        f" ({os.cpu_count()} cores in all here)"
    )
    if outcome.errors:
        print(f"errors: {dict(outcome.errors)}; first: {outcome.first_error}")
    stored_as_acknowledged = 0 <= outcome.stored - outcome.acknowledged <= outcome.in_flight_at_end
    return errors == 0 and stored_as_acknowledged and outcome.exit_code == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.sustained", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="length of the load (default 60)")
    parser.add_argument("--senders", type=int, default=200, help="single-event senders (default 200)")
    parser.add_argument(
        "--rate", type=float, default=1000, help="single events/s, all senders (default 1000)"
    )
    parser.add_argument("--batch-senders", type=int, default=4, help="batch senders (default 4)")
    parser.add_argument("--batch-size", type=int, default=100, help="events per batch (default 100)")
    parser.add_argument("--batch-rate", type=float, default=1, help="batches/s per batch sender (default 1)")
    parser.add_argument(
        "--client",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="who sends: wrk when installed (auto), or Python coroutines",
    )
    parser.add_argument(
        "--replay",
        action="store_true",
        help="send the seed's historic timestamps (a backlog replayed: most messages arrive late)",
    )
    args = parser.parse_args(argv)
    for name in ("seconds", "senders", "rate", "batch_size", "batch_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    client: Client = (
        "python" if args.client == "python" or (args.client == "auto" and not wrk_path()) else "wrk"
    )
    load = os.getloadavg()[0]  # other work on the machine skews every figure; the reader should know
    with tempfile.TemporaryDirectory(prefix="leadtrail-sustained-") as tmp:
        outcome = asyncio.run(
            run_sustained(
                Path(tmp),
                seconds=args.seconds,
                senders=args.senders,
                rate=args.rate,
                batch_senders=args.batch_senders,
                batch_size=args.batch_size,
                batch_rate=args.batch_rate,
                client=client,
                replay=args.replay,
            )
        )
    return 0 if report(args, outcome, load) else 1


if __name__ == "__main__":
    sys.exit(main())
