"""Operator's views benchmark (issue 6): what /metrics costs ingestion, and what the BI views cost to read.

Two fresh SQLite files are filled with the same ``--events`` seed-shaped events through LeadTrail's own
EventWriter, in alternating slices: one writer has the /metrics observer, the other (the baseline) has
none. Then, on the filled file, medians of ``--repeat`` runs: ``SELECT count(*) FROM events`` (the
baseline), the whole ``daily_metrics`` view, its last 30 days, and ``events_flat`` for one day. The
observer's own CPU time per batch is measured apart too: slice timings on a shared machine are noisy.

    .venv/bin/python -m bench.ops_views [--events 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import cast
from zoneinfo import ZoneInfo

from sqlalchemy import text

from bench.common import Figure, Target, batched, print_table, seed_events
from bench.report import median_seconds
from bot.ingestion.metrics import IngestMetrics
from bot.ingestion.validation import validate_items
from storage.bi_views import set_bi_zone
from storage.database import Database, open_database
from storage.event_row import EventRow
from storage.writer import CommittedBatch, EventWriter

MOSCOW = ZoneInfo("Europe/Moscow")
SLICES = 8
BATCH = 1000  # events per write: the size a busy sender posts


async def write_slice(writer: EventWriter, batches: list[list[EventRow]]) -> float:
    started = time.perf_counter()
    for rows in batches:
        await writer.write(rows)
    return time.perf_counter() - started


async def fill(plain: Database, observed: Database, events: int) -> tuple[float, float, IngestMetrics]:
    """Seconds spent writing by each writer; the slices alternate which goes first."""
    metrics = IngestMetrics(observed)
    writers = (EventWriter(plain), EventWriter(observed))
    writers[1].observe(metrics.on_commit)
    for writer in writers:
        await writer.start()
    spent = [0.0, 0.0]
    try:
        stream = seed_events(events, run_tag="ops-bench")
        for number, chunk in enumerate(batched(stream, max(events // SLICES, 1))):
            batches = [validate_items(rows, MOSCOW).rows for rows in batched(iter(chunk), BATCH)]
            order = (0, 1) if number % 2 == 0 else (1, 0)
            for which in order:
                spent[which] += await write_slice(writers[which], batches)
    finally:
        for writer in writers:
            await writer.close()
    return spent[0], spent[1], metrics


def observer_seconds_per_batch(repeat: int) -> float:
    """The observer's own work for one batch of BATCH new events (pure CPU, best of many runs)."""
    rows = validate_items(list(seed_events(BATCH, run_tag="ops-observer")), MOSCOW).rows
    batch = CommittedBatch(rows=rows, new_rows=rows, rejected=[])
    metrics = IngestMetrics(cast(Database, None))
    best = float("inf")
    for _ in range(repeat * 20):
        started = time.perf_counter()
        metrics.on_commit(batch)
        best = min(best, time.perf_counter() - started)
    return best


async def query(db: Database, sql: str) -> None:
    async with db.engine.connect() as conn:
        (await conn.execute(text(sql))).fetchall()


async def run(folder: Path, events: int, repeat: int) -> None:
    plain = await open_database(f"sqlite+aiosqlite:///{folder / 'plain.db'}")
    observed = await open_database(f"sqlite+aiosqlite:///{folder / 'observed.db'}")
    try:
        plain_s, observed_s, metrics = await fill(plain, observed, events)
        accepted = sum(
            sample.value
            for family in metrics.registry.collect()
            for sample in family.samples
            if sample.name == "leadtrail_events_total"
        )
        assert accepted == events, f"/metrics counted {accepted} of {events} events"
        async with observed.engine.begin() as conn:
            await set_bi_zone(conn, MOSCOW)
        observer_ms = observer_seconds_per_batch(repeat) * 1000
        write_ms = plain_s / events * BATCH * 1000
        timings = {
            name: await median_seconds(lambda sql=sql: query(observed, sql), repeat)
            for name, sql in (
                ("count", "SELECT count(*) FROM events"),
                ("daily", "SELECT * FROM daily_metrics"),
                ("daily30", "SELECT * FROM daily_metrics WHERE day >= '2025-03-02'"),
                ("flat_day", "SELECT * FROM events_flat WHERE local_day = '2025-02-01'"),
            )
        }
    finally:
        await plain.close()
        await observed.close()
    print_table(
        f"Operator's views — {events:,} events, SQLite, batches of {BATCH}",
        [
            Figure("(a) writer with the /metrics observer", events / observed_s, "events/s"),
            Figure("(b) writer without it (baseline)", events / plain_s, "events/s"),
            Figure("a / b (noisy on a shared machine)", plain_s / observed_s, decimals=3),
            Figure(f"observer's own work per {BATCH} events", observer_ms, "ms", 3),
            Figure(f"a write of {BATCH} events, baseline writer", write_ms, "ms", 1),
            Figure("observer / write", observer_ms / write_ms * 100, "%", 3, Target("<=", 1.0)),
            Figure("SELECT count(*) FROM events (baseline)", timings["count"] * 1000, "ms", 1),
            Figure("daily_metrics, whole history", timings["daily"] * 1000, "ms", 1),
            Figure("daily_metrics, last 30 days", timings["daily30"] * 1000, "ms", 1),
            Figure("events_flat, one local day", timings["flat_day"] * 1000, "ms", 1),
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadtrail-ops-bench-") as folder:
        asyncio.run(run(Path(folder), args.events, args.repeat))


if __name__ == "__main__":
    main()
