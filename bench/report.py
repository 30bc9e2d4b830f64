"""Owner's view benchmark (issue 4): a 30-day report and one client's timeline on a big store.

Fills a fresh SQLite file (or ``--database-url``) with ``--events`` seed-shaped events over 90 days
for 20,000 clients through LeadTrail's own EventWriter, then times, in the same run, with medians of
``--repeat`` runs: one plain ``SELECT count(*) FROM events`` (the baseline), the report's numbers for
the last 30 days (with the previous 30, as /report computes them), one client's whole timeline, and
the whole report as the owner receives it: numbers, text and all charts (queries plus rendering); the
four follow-up lists at the end of the data (issue 19), in the process and as the whole
``leadtrail followup --json`` command beside the same command on an empty database (its start-up).

    .venv/bin/python -m bench.report [--events 1000000] [--repeat 5] [--database-url URL]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import text

from bench.common import REPO_ROOT, SEED_START, Figure, Target, batched, print_table, seed_events
from bot.ingestion.validation import validate_items
from reports.followup import FollowupSettings
from reports.followup_check import followup_at
from reports.owner_report import ReportScope, build_report
from reports.periods import Period
from storage.database import Database, open_database
from storage.timeline import find_client_ids, load_events
from storage.writer import EventWriter
from tests.processes import clean_env

MOSCOW = ZoneInfo("Europe/Moscow")
SEED_DAYS = 90  # seed_events spreads the events over this many days from SEED_START


async def fill(db: Database, events: int) -> float:
    writer = EventWriter(db, max_batch_events=10_000)
    await writer.start()
    started = time.perf_counter()
    try:
        for batch in batched(seed_events(events, run_tag="report-bench"), 5000):
            validated = validate_items(batch, MOSCOW)
            await writer.write(validated.rows)
    finally:
        await writer.close()
    return time.perf_counter() - started


async def median_seconds(action: Callable[[], Awaitable[object]], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def command_seconds(url: str, now: str, repeat: int) -> float:
    """The median wall time of ``leadtrail followup --now NOW --json`` on ``url``, start-up included."""
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bot", "followup", "--now", now, "--json"],
            env={**clean_env(), "LEADTRAIL_DATABASE__URL": url},
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
        )
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


async def run(url: str, events: int, repeat: int, empty_url: str) -> list[Figure]:
    db = await open_database(url)
    try:
        print(f"filling {events:,} events … ", end="", flush=True)
        print(f"{await fill(db, events):.0f} s")
        if not db.is_sqlite:
            # What autovacuum does soon after a bulk load: without the visibility map, the report's
            # index-only scans visit every table row (measured: 1.2 s instead of 0.5 s on 1M events).
            async with db.engine.connect() as conn:
                autocommit = await conn.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("VACUUM ANALYZE events"))
        end = (SEED_START + timedelta(days=SEED_DAYS - 1)).astimezone(MOSCOW).date()
        scope = ReportScope(Period(end - timedelta(days=29), end), MOSCOW, 3.0)

        async def count() -> object:
            async with db.sessions() as session:
                return (await session.execute(text("SELECT count(*) FROM events"))).scalar_one()

        async def report() -> object:
            return await build_report(db.sessions, scope)

        async def timeline() -> object:
            async with db.sessions() as session:
                [client_id] = (await find_client_ids(session, "tg_4242"))[:1]
                return await load_events(session, client_id)

        async def charts() -> object:
            return await build_report(db.sessions, scope, with_charts=True)

        data_end = SEED_START + timedelta(days=SEED_DAYS)

        async def followup() -> object:
            return await followup_at(db.sessions, data_end, FollowupSettings())

        await charts()  # the first render also imports matplotlib; that is start-up, not a report
        baseline = await median_seconds(count, repeat)
        report_s = await median_seconds(report, repeat)
        timeline_ms = await median_seconds(timeline, repeat) * 1000
        charts_s = await median_seconds(charts, repeat)
        followup_s = await median_seconds(followup, repeat)
        sizes = {
            kind.value: len(items)
            for kind, items in await followup_at(db.sessions, data_end, FollowupSettings())
        }
        print(f"follow-up lists at the end of the data: {sizes}")
        now = data_end.isoformat()
        command_s = command_seconds(url, now, repeat)
        start_up_s = command_seconds(empty_url, now, repeat)
        figures = [
            Figure("SELECT count(*) (baseline)", baseline * 1000, "ms", 1),
            Figure("report, 30 days (numbers)", report_s, "s", 2, Target("<=", 1.0)),
            Figure("client timeline", timeline_ms, "ms", 1, Target("<=", 50)),
            Figure("report with all charts", charts_s, "s", 2, Target("<=", 1.5)),
            Figure("follow-up lists (4 lists)", followup_s, "s", 2, Target("<=", 1.0)),
            Figure("leadtrail followup --json, empty db (start-up)", start_up_s, "s", 2),
            Figure("leadtrail followup --json", command_s, "s", 2),
        ]
        title = f"owner's view on {events:,} events ({db.engine.dialect.name}), medians of {repeat}"
        print_table(title, figures)
        return figures  # bench.backends prints them beside another backend's
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--database-url", help="default: a fresh SQLite file in a temporary folder")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadtrail-report-bench-") as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        asyncio.run(run(url, args.events, args.repeat, f"sqlite+aiosqlite:///{Path(folder) / 'empty.db'}"))


if __name__ == "__main__":
    main()
