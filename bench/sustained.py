"""Sustained load: many single-event senders plus a few batch senders against ``leadtrail run`` for a minute.

``python -m bench.sustained [--seconds 60] [--senders 200] [--rate 1000] [--batch-senders 4]
[--batch-size 100] [--batch-rate 1]``

The real server runs in its own process on loopback with a fresh SQLite file. ``--senders`` coroutines
each post one event at a time on a fixed schedule, together ``--rate`` events/s (each sender's first
request at a random offset, so they do not march in step); ``--batch-senders`` more post
``--batch-size`` events ``--batch-rate`` times a second each. A single event's acknowledgement latency is
the time from sending the request to reading the 202. A sender that falls behind its schedule sends at
once without sleeping, so a slow server shows as lower throughput and higher latency, not hidden.

Baseline, measured in the same run just before the load: the latency of 200 single events sent one after
another to the idle server: what one event costs with nothing else going on. Printed: error responses
(must be 0), p50/p99 latency under load next to the idle baseline, throughput, and the server's RSS at the
start and the end of the load (plus its peak). Every acknowledged event is then counted in the file.
The exit code is 1 on any error response or a stored count that differs from the acknowledged one.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import orjson

from bench.common import MB, Figure, Target, print_table, running_server, seed_events
from tests.processes import free_port, write_config

TOKEN = "sustained-bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
P99_TARGET_MS = Target("<=", 50)
ERRORS_TARGET = Target("<=", 0)
BASELINE_REQUESTS = 200


def rss_bytes(pid: int, field_name: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field_name}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field_name} in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
class SustainedOutcome:
    seconds: float = 0.0
    single_latencies: list[float] = field(default_factory=list)  # seconds
    batch_latencies: list[float] = field(default_factory=list)
    baseline_latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    first_error: str | None = None
    acknowledged: int = 0  # events answered 202
    acknowledged_before_load: int = 0  # of which by the baseline
    stored: int = 0
    rss_start: int = 0
    rss_end: int = 0
    rss_peak: int = 0
    server_cpu_seconds: float = 0.0  # during the load: near ``seconds`` means the server had a whole core
    exit_code: int | None = None

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if self.first_error is None:
            self.first_error = detail


class Poster:
    """Posts bodies and keeps the books: latency of each 202, errors of anything else."""

    def __init__(
        self, http: aiohttp.ClientSession, url: str, outcome: SustainedOutcome, run_tag: str
    ) -> None:
        self._http, self._url, self._outcome = http, f"{url}/v1/events", outcome
        self._events = seed_events(10**9, run_tag=run_tag)

    def body(self, size: int) -> tuple[bytes, int]:
        events = list(itertools.islice(self._events, size))
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


async def run_sustained(
    workdir: Path,
    *,
    seconds: float = 60,
    senders: int = 200,
    rate: float = 1000,
    batch_senders: int = 4,
    batch_size: int = 100,
    batch_rate: float = 1,
) -> SustainedOutcome:
    port = free_port()
    db_path = workdir / "sustained.db"
    config = write_config(
        workdir / "sustained.toml",
        {"database": {"url": f"sqlite+aiosqlite:///{db_path}"}, "ingest": {"port": port, "tokens": [TOKEN]}},
    )
    outcome = SustainedOutcome()
    run_tag = f"sustained-{os.getpid()}-{int(time.time())}"
    async with running_server(config, port, workdir / "server.log") as server:
        connector = aiohttp.TCPConnector(limit=0)  # one keep-alive connection per sender
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            poster = Poster(http, server.url, outcome, run_tag)
            for _ in range(BASELINE_REQUESTS):
                body, count = poster.body(1)
                await poster.post(body, count, outcome.baseline_latencies)
            outcome.acknowledged_before_load = outcome.acknowledged
            outcome.rss_start = rss_bytes(server.process.pid)
            cpu_before = cpu_seconds(server.process.pid)
            started = time.perf_counter()
            until = started + seconds
            tasks = [
                _paced(poster, 1, senders / rate, until, outcome.single_latencies) for _ in range(senders)
            ] + [
                _paced(poster, batch_size, 1 / batch_rate, until, outcome.batch_latencies)
                for _ in range(batch_senders)
            ]
            await asyncio.gather(*tasks)
            outcome.seconds = time.perf_counter() - started
            outcome.rss_end = rss_bytes(server.process.pid)
            outcome.server_cpu_seconds = cpu_seconds(server.process.pid) - cpu_before
            outcome.rss_peak = rss_bytes(server.process.pid, "VmHWM")
        outcome.exit_code = await server.stop()
    with closing(sqlite3.connect(db_path)) as conn:
        outcome.stored = int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    return outcome


def report(args: argparse.Namespace, outcome: SustainedOutcome, load: float) -> bool:
    def ms(latencies: list[float], share: float) -> float:
        return percentile(latencies, share) * 1000

    single_rate = len(outcome.single_latencies) / outcome.seconds
    total_rate = (outcome.acknowledged - outcome.acknowledged_before_load) / outcome.seconds
    errors = sum(outcome.errors.values())
    idle, loaded = outcome.baseline_latencies, outcome.single_latencies
    print_table(
        f"LeadTrail sustained load: {args.seconds:.0f} s, {args.senders} single-event senders at"
        f" {args.rate:,.0f} events/s, {args.batch_senders} batch senders × {args.batch_size} events"
        f" × {args.batch_rate}/s, SQLite",
        [
            Figure("error responses", errors, target=ERRORS_TARGET),
            Figure("single event p50 latency, idle server (baseline)", ms(idle, 0.5), "ms", 1),
            Figure("single event p99 latency, idle server (baseline)", ms(idle, 0.99), "ms", 1),
            Figure("single event p50 latency under load", ms(loaded, 0.5), "ms", 1),
            Figure("single event p99 latency under load", ms(loaded, 0.99), "ms", 1, P99_TARGET_MS),
            Figure(
                f"batch of {args.batch_size} p50 latency under load",
                ms(outcome.batch_latencies, 0.5),
                "ms",
                1,
            ),
            Figure("single events acknowledged", single_rate, "events/s", 0, Target(">=", 0.95 * args.rate)),
            Figure("all events acknowledged (single + batch)", total_rate, "events/s"),
            Figure("server RSS at start of load", outcome.rss_start / MB, "MB", 1),
            Figure("server RSS at end of load", outcome.rss_end / MB, "MB", 1),
            Figure("server peak RSS (VmHWM)", outcome.rss_peak / MB, "MB", 1),
        ],
    )
    mean = statistics.fmean(loaded) * 1000 if loaded else float("nan")
    print(
        f"checks: {outcome.stored:,} events stored, {outcome.acknowledged:,} acknowledged"
        f" · mean single latency {mean:.1f} ms · server exit code {outcome.exit_code}"
        f" · load average at start {load:.2f}"
    )
    print(
        f"server CPU during the load: {outcome.server_cpu_seconds / outcome.seconds:.0%} of one core"
        f" (well under 100% with high latency: the machine, not the server, was the limit)"
    )
    if outcome.errors:
        print(f"errors: {dict(outcome.errors)}; first: {outcome.first_error}")
    return errors == 0 and outcome.stored == outcome.acknowledged and outcome.exit_code == 0


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
    args = parser.parse_args(argv)
    for name in ("seconds", "senders", "rate", "batch_size", "batch_rate"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
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
            )
        )
    return 0 if report(args, outcome, load) else 1


if __name__ == "__main__":
    sys.exit(main())
