"""How fast ``leadtrail run`` ingests over HTTP, next to what bare ``sqlite3`` can do on the same rows.

``python -m bench.ingest [--quick | --events N] [--batch 1000] [--senders 4] [--database-url URL]``

(a) The real server in its own process (``leadtrail run``, a fresh SQLite file unless ``--database-url``),
    fed NDJSON batches of seed-shaped events by ``--senders`` concurrent aiohttp senders in this process.
(b) ``sqlite3.executemany`` of the same rows, in their stored form, into LeadTrail's real schema (made by
    its own migrations), 1,000 rows a transaction, with the server's pragmas and one client per user
    (pre-inserted), through the server's own INSERT, which looks up each answer's and booking's report
    columns as the row goes in (``storage.report_columns``): the floor of what the product's schema
    costs, so a/b shows what HTTP, validation, client linking and group commit add.
(c) The same into a naive table of the seed's fields with three indexes: what a hand-rolled logger
    would get, so a/c shows what LeadTrail costs over not using it.

Method. Only sending and storing is timed, never the bench's own generation and JSON encoding: bodies
are serialised per chunk of 100 batches (~50 MB at the default batch) with the clock stopped, then the
chunk is sent with the clock running, and so on. One chunk at a time keeps this process small at 1M
events (all bodies at once would be ~500 MB); the price is that the senders drain at each chunk's end,
which understates (a) by a percent or two: a conservative error. For (b) and (c) each transaction's
rows are built with the clock stopped and ``BEGIN … executemany … COMMIT`` is timed. The three parts run
one after the other, so they never compete for CPU or disk. Events are time-ordered (with jitter), as a
live assistant sends them. Targets are printed with PASS/MISS, never asserted; the exit code is 1 only
when events were lost or a response was not a 202 accepting the whole batch.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import math
import os
import resource
import secrets
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from bench.common import (
    MB,
    REPO_ROOT,
    SEED_CLIENTS,
    Figure,
    Target,
    batched,
    print_table,
    running_server,
    seed_events,
)
from bot.ingestion.validation import Event, to_row
from bot.settings import DatabaseSettings, IngestSettings
from storage.database import SQLITE_WRITER_CACHE_KIB, sqlite_pragmas
from storage.event_insert import SQLITE_INSERT, sqlite_values
from storage.models import RECEIVED_EVENT_COLUMNS
from storage.report_columns import insert_order
from tests.processes import clean_env, free_port, write_config

QUICK_EVENTS = 100_000
CHUNK_BATCHES = 100
ROWS_PER_TRANSACTION = 1_000
# A seed-shaped event is ~480 bytes of NDJSON; the ingest body limit is raised only for batches that
# could outgrow the default 1 MiB, so the default run uses the default config.
MAX_EVENT_BYTES = 1024
TOKEN = "bench"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/x-ndjson"}
EventSource = Callable[..., Iterator[dict[str, Any]]]  # (total, *, run_tag) → events, as seed_events

A_OVER_B = Target(">=", 0.5)
A_OVER_C = Target(">=", 0.8)
PEAK_RSS_MB = Target("<=", 300)
READY_SECONDS = Target("<=", 3.0)  # the brief names no figure: an operator's restart should feel instant

NAIVE_FIELDS = (
    "timestamp", "channel", "user_id", "crm_id", "event", "message", "assistant_response",
    "intent", "confidence", "action", "lead_id", "lat", "lon",
)  # fmt: skip
NAIVE_SCHEMA = """
CREATE TABLE events (
    timestamp TEXT, channel TEXT, user_id TEXT, crm_id TEXT, event TEXT, message TEXT,
    assistant_response TEXT, intent TEXT, confidence REAL, action TEXT, lead_id TEXT, lat REAL, lon REAL
);
CREATE INDEX ix_events_timestamp ON events (timestamp);
CREATE INDEX ix_events_user_timestamp ON events (user_id, timestamp);
CREATE INDEX ix_events_event_timestamp ON events (event, timestamp);
"""


@dataclass
class HttpOutcome:
    """What part (a) saw; ``answers`` counts HTTP statuses, or exception names for failed requests."""

    seconds: float = 0.0
    ready_seconds: float = 0.0
    peak_rss: int = 0
    exit_code: int | None = None
    rows: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    miscounted: int = 0
    first_problem: str | None = None

    def note(self, problem: str) -> None:
        if self.first_problem is None:
            self.first_problem = problem


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(event) + b"\n" for event in events)


async def count_events(url: str) -> int:
    """Rows in ``events``, read beside the server rather than through it (sqlite3 directly for SQLite)."""
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(str(make_url(url).database))) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM events"))).scalar_one())
    finally:
        await engine.dispose()


async def _send_chunk(
    session: aiohttp.ClientSession,
    url: str,
    batches: Iterator[list[dict[str, Any]]],
    senders: int,
    outcome: HttpOutcome,
) -> float:
    """Serialise the chunk with the clock stopped, then send it; returns the seconds the sending took.

    The bodies are local, so one chunk is freed before the next is built.
    """
    bodies = [(ndjson(part), len(part)) for part in batches]
    pending = iter(bodies)  # shared by the senders: each body goes out exactly once

    async def sender() -> None:
        for body, size in pending:
            try:
                async with session.post(url, data=body, headers=HEADERS) as response:
                    status, answer = response.status, await response.read()
            except aiohttp.ClientError as exc:
                outcome.answers[type(exc).__name__] += 1
                outcome.note(repr(exc))
                continue
            outcome.answers[str(status)] += 1
            if status != 202:
                outcome.note(f"{status}: {answer[:300].decode(errors='replace')}")
            elif orjson.loads(answer).get("accepted") != size:
                outcome.miscounted += 1
                outcome.note(f"202 for {size} events: {answer.decode(errors='replace')}")

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return time.perf_counter() - started


async def http_ingest(
    url: str,
    events: int,
    batch: int,
    senders: int,
    workdir: Path,
    run_tag: str,
    source: EventSource = seed_events,
) -> HttpOutcome:
    """Part (a): the timed window covers only the sending of pre-serialised chunks (module docstring).
    ``source`` makes the events (``bench.identities`` sends ids shared by everyone)."""
    port = free_port()
    ingest: dict[str, Any] = {"port": port, "tokens": [TOKEN]}
    if batch * MAX_EVENT_BYTES > IngestSettings().max_body_bytes:
        ingest["max_body_bytes"] = batch * MAX_EVENT_BYTES
    config = write_config(workdir / "leadtrail.toml", {"database": {"url": url}, "ingest": ingest})
    outcome = HttpOutcome()
    async with running_server(config, port, workdir / "server.log") as server:
        outcome.ready_seconds = server.ready_seconds
        before = await count_events(url)  # 0 for a fresh file; a reused PostgreSQL may hold older runs
        stream = batched(source(events, run_tag=run_tag), batch)
        events_url = f"{server.url}/v1/events"
        connector = aiohttp.TCPConnector(limit=senders)
        timeout = aiohttp.ClientTimeout(total=600)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            for _ in range(math.ceil(math.ceil(events / batch) / CHUNK_BATCHES)):
                chunk = itertools.islice(stream, CHUNK_BATCHES)
                outcome.seconds += await _send_chunk(session, events_url, chunk, senders, outcome)
        outcome.peak_rss = server.peak_rss_bytes()
        outcome.exit_code = await server.stop()
        if outcome.exit_code != 0:
            outcome.note(f"server exited with {outcome.exit_code}:\n{server.log_tail()}")
    outcome.rows = await count_events(url) - before
    return outcome


def open_sqlite(path: Path) -> sqlite3.Connection:
    """Autocommit mode (transactions are explicit) with exactly the pragmas ``leadtrail``'s writer sets."""
    conn = sqlite3.connect(path, isolation_level=None)
    sqlite_pragmas(DatabaseSettings().busy_timeout_ms, cache_kib=SQLITE_WRITER_CACHE_KIB)(conn, None)
    return conn


def insert_sql(columns: tuple[str, ...]) -> str:
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


# The stored columns alone, idempotent, without the server's look-ups (the derived columns stay NULL):
# what the schema's tables and indexes cost by themselves (bench.identities, bench.schema_floor).
PLAIN_SCHEMA_INSERT = insert_sql(RECEIVED_EVENT_COLUMNS).replace("INSERT", "INSERT OR IGNORE", 1)


def timed_inserts(conn: sqlite3.Connection, sql: str, transactions: Iterator[list[tuple[Any, ...]]]) -> float:
    """Seconds spent in ``BEGIN … executemany … COMMIT``; the rows are built between the timings."""
    seconds = 0.0
    for rows in transactions:
        started = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany(sql, rows)
        conn.execute("COMMIT")
        seconds += time.perf_counter() - started
    return seconds


def _check_count(conn: sqlite3.Connection, expected: int) -> None:
    stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    if stored != expected:
        raise RuntimeError(f"baseline stored {stored} rows, expected {expected}")


def create_leadtrail_schema(path: Path) -> None:
    """An empty database with the real schema, made by the real migrations: ``leadtrail client x`` opens
    (so migrates) the database before it finds no client, so its exit code 1 is expected."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "client", "x"],
        env={**clean_env(), "LEADTRAIL_DATABASE__URL": f"sqlite+aiosqlite:///{path}"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    with closing(sqlite3.connect(path)) as conn:
        found = conn.execute("SELECT count(*) FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    if not found:
        raise RuntimeError(f"migrations did not create events (exit {result.returncode}): {result.stderr}")


def stored_rows(events: int, run_tag: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows exactly as the server stores them: its own validation, normalisation and value form.

    Each user_id gets its own client id, as the server's linking gives it: with one client for all,
    ``ix_events_client_user`` would be filled in order and flatter the baseline.
    """
    received_at = datetime.now(UTC)
    client_ids: dict[str, int] = {}
    for part in batched(seed_events(events, run_tag=run_tag), ROWS_PER_TRANSACTION):
        rows = []
        for item in part:
            row = to_row(Event.model_validate(item), UTC)
            row["client_id"] = client_ids.setdefault(row["user_id"], len(client_ids) + 1)
            row["received_at"] = received_at
            rows.append(row)
        yield [sqlite_values(row) for row in sorted(rows, key=insert_order)]


def schema_baseline(
    path: Path, events: int, run_tag: str, ddl: Sequence[str] = (), insert: str | None = None
) -> float:
    """Part (b): seconds to insert the events into LeadTrail's own schema with plain sqlite3. ``ddl``
    changes the schema first and ``insert`` replaces the server's INSERT (``bench.schema_floor``)."""
    create_leadtrail_schema(path)
    with closing(open_sqlite(path)) as conn:
        for statement in ddl:
            conn.execute(statement)
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        conn.execute("BEGIN")  # the clients the rows' foreign key points at, untimed
        conn.executemany(
            "INSERT INTO clients (id, created_at) VALUES (?, ?)",
            ((client_id, now) for client_id in range(1, SEED_CLIENTS + 1)),
        )
        conn.execute("COMMIT")
        seconds = timed_inserts(conn, insert or SQLITE_INSERT, stored_rows(events, run_tag))
        _check_count(conn, events)
    return seconds


def naive_rows(
    events: int, run_tag: str, source: EventSource = seed_events
) -> Iterator[list[tuple[Any, ...]]]:
    for part in batched(source(events, run_tag=run_tag), ROWS_PER_TRANSACTION):
        yield [
            (*(item.get(name) for name in NAIVE_FIELDS[:-2]), float(item["lat"]), float(item["lon"]))
            for item in part
        ]


def naive_baseline(path: Path, events: int, run_tag: str, source: EventSource = seed_events) -> float:
    """Part (c): seconds to insert the seed's fields into a hand-made table with three indexes."""
    with closing(open_sqlite(path)) as conn:
        conn.executescript(NAIVE_SCHEMA)
        seconds = timed_inserts(conn, insert_sql(NAIVE_FIELDS), naive_rows(events, run_tag, source))
        _check_count(conn, events)
    return seconds


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--events", type=int, default=1_000_000, help="events to send (default 1,000,000)")
    size.add_argument("--quick", action="store_true", help=f"a fast check with {QUICK_EVENTS:,} events")
    parser.add_argument("--batch", type=int, default=1000, help="events per HTTP request (default 1000)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent HTTP senders (default 4)")
    parser.add_argument(
        "--database-url", help="server database (default: a fresh SQLite file; postgresql+asyncpg://… works)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.events = QUICK_EVENTS
    for name in ("events", "batch", "senders"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    return args


def report(
    args: argparse.Namespace, backend: str, http: HttpOutcome, schema_s: float, naive_s: float, load: float
) -> bool:
    """Print the table and the checks; True when every event was stored and every answer was right."""
    rate_a, rate_b, rate_c = (args.events / seconds for seconds in (http.seconds, schema_s, naive_s))
    print_table(
        f"LeadTrail ingest: {args.events:,} events, batch {args.batch}, {args.senders} senders, {backend}",
        [
            Figure(f"(a) HTTP ingest, leadtrail run → {backend}", rate_a, "events/s"),
            Figure("(b) sqlite3 executemany, LeadTrail schema", rate_b, "events/s"),
            Figure("(c) sqlite3 executemany, naive table", rate_c, "events/s"),
            Figure("a/b", rate_a / rate_b, decimals=2, target=A_OVER_B),
            Figure("a/c", rate_a / rate_c, decimals=2, target=A_OVER_C),
            Figure("server peak RSS (VmHWM, both processes)", http.peak_rss / MB, "MB", 1, PEAK_RSS_MB),
            Figure("time to ready (spawn → /healthz 200)", http.ready_seconds, "s", 2, READY_SECONDS),
        ],
    )
    answers = ", ".join(f"{count:,} × {answer}" for answer, count in sorted(http.answers.items()))
    bench_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB
    print(
        f"checks: {http.rows:,} of {args.events:,} events stored · answers {answers}"
        f" ({http.miscounted} miscounted) · server exit code {http.exit_code}"
    )
    print(f"context: bench process peak RSS {bench_rss:.0f} MB · load average at start {load:.2f}")
    if http.first_problem:
        print(f"first problem: {http.first_problem}")
    all_202 = set(http.answers) == {"202"} and http.miscounted == 0
    return http.rows == args.events and all_202


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run_tag = f"bench-{secrets.token_hex(4)}"
    load = os.getloadavg()[0]  # other work on the machine skews every figure; the reader should know
    with tempfile.TemporaryDirectory(prefix="leadtrail-bench-") as tmp:
        workdir = Path(tmp)
        url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'leadtrail.db'}"
        backend = make_url(url).get_backend_name()
        print(f"(a) HTTP ingest into {backend} …", flush=True)
        http = asyncio.run(http_ingest(url, args.events, args.batch, args.senders, workdir, run_tag))
        print("(b) sqlite3 into LeadTrail's schema …", flush=True)
        schema_s = schema_baseline(workdir / "schema.db", args.events, run_tag)
        print("(c) sqlite3 into a naive table …", flush=True)
        naive_s = naive_baseline(workdir / "naive.db", args.events, run_tag)
    return 0 if report(args, backend, http, schema_s, naive_s, load) else 1


if __name__ == "__main__":
    sys.exit(main())
