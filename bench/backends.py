"""SQLite and PostgreSQL side by side: the ingest and owner's-view benchmarks on each backend, one run.

    .venv/bin/python -m bench.backends --postgres-url postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
        [--backends sqlite,postgresql] [--ingest-events 100000] [--report-events 200000] [--repeat 3]

For every backend, each part gets a fresh database (a temporary SQLite file, or a new PostgreSQL database
on the given server, dropped afterwards):
- ingest: ``bench.ingest``'s part (a), the real ``leadtrail run`` fed NDJSON batches over HTTP, next to
  the baseline of that backend's bare driver (``sqlite3`` / ``asyncpg`` ``executemany``) inserting the
  seed's fields into a naive table with three indexes, timed in the same run;
- owner's view: ``bench.report``'s figures (a plain ``count(*)`` as the baseline, the 30-day report,
  a client's timeline, all charts) on a store filled through the real EventWriter.
Targets are printed with PASS/MISS, never asserted; the exit code is 1 only when ingest lost events or
answered anything but 202.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from bench.common import MB, Figure, Target
from bench.ingest import (
    NAIVE_FIELDS,
    NAIVE_SCHEMA,
    PEAK_RSS_MB,
    http_ingest,
    naive_baseline,
    naive_rows,
)
from bench.report import run as report_figures

BACKENDS = ("sqlite", "postgresql")


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def fresh_database(
    backend: str, postgres_url: str | None, folder: Path, name: str
) -> AsyncIterator[str]:
    """A URL of a new empty database, removed afterwards (PostgreSQL: CREATE/DROP DATABASE on the server)."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'{name}.db'}"
        return
    assert postgres_url is not None
    database = f"leadtrail_bench_{name}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_asyncpg_dsn(postgres_url))
    try:
        await admin.execute(f'CREATE DATABASE "{database}"')
        try:
            yield make_url(postgres_url).set(database=database).render_as_string(hide_password=False)
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_naive_baseline(url: str, events: int, run_tag: str) -> float:
    """The naive-table baseline on PostgreSQL: asyncpg ``executemany``, 1,000 rows a transaction."""
    conn = await asyncpg.connect(_asyncpg_dsn(url))
    try:
        await conn.execute(NAIVE_SCHEMA)
        placeholders = ", ".join(f"${n}" for n in range(1, len(NAIVE_FIELDS) + 1))
        sql = f"INSERT INTO events ({', '.join(NAIVE_FIELDS)}) VALUES ({placeholders})"
        seconds = 0.0
        for rows in naive_rows(events, run_tag):
            started = time.perf_counter()
            async with conn.transaction():
                await conn.executemany(sql, rows)
            seconds += time.perf_counter() - started
        stored = await conn.fetchval("SELECT count(*) FROM events")
        if stored != events:
            raise RuntimeError(f"baseline stored {stored} rows, expected {events}")
        return seconds
    finally:
        await conn.close()


async def ingest_part(
    backend: str, args: argparse.Namespace, folder: Path, problems: list[str]
) -> list[Figure]:
    run_tag = f"bench-{secrets.token_hex(4)}"
    events = args.ingest_events
    workdir = folder / f"ingest-{backend}"
    workdir.mkdir()
    async with fresh_database(backend, args.postgres_url, folder, "ingest") as url:
        outcome = await http_ingest(url, events, args.batch, args.senders, workdir, run_tag)
    async with fresh_database(backend, args.postgres_url, folder, "naive") as url:
        if backend == "sqlite":
            naive_s = await asyncio.to_thread(
                naive_baseline, Path(str(make_url(url).database)), events, run_tag
            )
        else:
            naive_s = await postgres_naive_baseline(url, events, run_tag)
    all_202 = set(outcome.answers) == {"202"} and outcome.miscounted == 0
    if outcome.rows != events or not all_202:
        problems.append(f"{backend}: stored {outcome.rows} of {events}; {outcome.first_problem}")
    rate, naive_rate = events / outcome.seconds, events / naive_s
    return [
        Figure("ingest: HTTP, leadtrail run", rate, "events/s"),
        Figure("ingest baseline: driver executemany, naive table", naive_rate, "events/s"),
        Figure("ingest: HTTP / baseline", rate / naive_rate, decimals=2),
        Figure("ingest: server peak RSS", outcome.peak_rss / MB, "MB", 1, PEAK_RSS_MB),
        Figure("ingest: time to ready", outcome.ready_seconds, "s", 2, Target("<=", 3.0)),
    ]


async def report_part(backend: str, args: argparse.Namespace, folder: Path) -> list[Figure]:
    async with fresh_database(backend, args.postgres_url, folder, "report") as url:
        figures = await report_figures(url, args.report_events, args.repeat)
    return [Figure(f"view: {figure.label}", figure.value, figure.unit, figure.decimals, figure.target)
            for figure in figures]  # fmt: skip


def print_side_by_side(title: str, columns: dict[str, list[Figure]]) -> None:
    """One row per figure, one column per backend; a target's PASS/MISS follows each value."""
    names = list(columns)
    first = columns[names[0]]
    rows = [("figure", *names, "target")]
    for index, figure in enumerate(first):
        cells = []
        for name in names:
            value = columns[name][index]
            verdict = "" if value.target is None else (" PASS" if value.target.met(value.value) else " MISS")
            cells.append(value.show(value.value) + verdict)
        target = ""
        if figure.target is not None:
            target = f"{'≥' if figure.target.op == '>=' else '≤'} {figure.show(figure.target.bound)}"
        rows.append((figure.label, *cells, target))
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    print(title)
    for row in rows:
        label, *rest = row
        print(
            f"  {label:<{widths[0]}}  "
            + "  ".join(f"{cell:>{w}}" for cell, w in zip(rest, widths[1:], strict=True))
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.backends", description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("LEADTRAIL_TEST_POSTGRES_URL"),
        help="a PostgreSQL server (postgresql+asyncpg://user@host:port/db) where fresh databases may be "
        "created (default: $LEADTRAIL_TEST_POSTGRES_URL)",
    )
    parser.add_argument("--ingest-events", type=int, default=100_000)
    parser.add_argument("--report-events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3, help="report timings are medians of this many runs")
    parser.add_argument("--batch", type=int, default=1000, help="events per HTTP request")
    parser.add_argument("--senders", type=int, default=4, help="concurrent HTTP senders")
    args = parser.parse_args(argv)
    args.backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in args.backends if name not in BACKENDS]
    if unknown or not args.backends:
        parser.error(
            f"--backends: unknown {', '.join(unknown) or '(none)'}; choose from {', '.join(BACKENDS)}"
        )
    if "postgresql" in args.backends and not args.postgres_url:
        parser.error("--postgres-url is needed for the postgresql backend")
    for name in ("ingest_events", "report_events", "repeat", "batch", "senders"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    return args


async def run(args: argparse.Namespace) -> int:
    load = os.getloadavg()[0]
    problems: list[str] = []
    columns: dict[str, list[Figure]] = {}
    with tempfile.TemporaryDirectory(prefix="leadtrail-backends-") as tmp:
        for backend in args.backends:
            print(f"{backend}: ingest of {args.ingest_events:,} events …", flush=True)
            figures = await ingest_part(backend, args, Path(tmp), problems)
            print(f"{backend}: owner's view on {args.report_events:,} events …", flush=True)
            figures += await report_part(backend, args, Path(tmp))
            columns[backend] = figures
    print_side_by_side(
        f"SQLite and PostgreSQL: ingest {args.ingest_events:,} events (batch {args.batch}, "
        f"{args.senders} senders), owner's view on {args.report_events:,} events (medians of {args.repeat})",
        columns,
    )
    print(f"context: load average at start {load:.2f}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
