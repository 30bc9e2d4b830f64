"""Export benchmark (issue 6): ``leadtrail export`` of a big period in each format, time and peak memory.

Fills a fresh SQLite file with ``--events`` seed-shaped events over 90 days (bench.report's fill),
then runs the real ``leadtrail export`` in its own process, the way an operator does, for the whole 90
days in CSV, XLSX and Parquet, and for one day in CSV. Baseline in the same run: stdlib ``sqlite3``
reading the same rows with ``fetchall()`` and writing them with the ``csv`` module (no validation of
types, no time zones, no neutralising) — the fastest naive export and the memory a non-streamed one
needs. Peak RSS comes from ``wait4`` of each process.

    .venv/bin/python -m bench.export [--events 300000] [--formats csv,xlsx,parquet]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import MB, SEED_START, Figure, Target, print_table
from bench.report import SEED_DAYS, fill
from storage.database import open_database
from tests.processes import clean_env, write_config

NAIVE_EXPORT = """
import csv, sqlite3, sys
rows = sqlite3.connect(sys.argv[1]).execute("SELECT * FROM events ORDER BY ts, id").fetchall()
with open(sys.argv[2], "w", encoding="utf-8-sig", newline="") as out:
    csv.writer(out, delimiter=";").writerows(rows)
print(len(rows))
"""


# wait4's peak RSS survives exec, so a child forked from this (big) process would report our size:
# a small wrapper process starts each measured command and reports its peak.
MEASURE = """
import os, subprocess, sys, time
started = time.perf_counter()
process = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(process.pid, 0)
seconds = time.perf_counter() - started
print(os.waitstatus_to_exitcode(status), seconds, usage.ru_maxrss * 1024, file=sys.stderr)
"""


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss: int
    output: str


def measured(command: list[str]) -> Run:
    """Run a process to its end; its wall time and its own peak resident set (not ours)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, *command],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=False,
    )
    code, seconds, peak = done.stderr.strip().splitlines()[-1].split()
    if int(code) != 0:
        raise RuntimeError(f"{command[:4]} exited with {code}: {done.stderr}")
    return Run(float(seconds), int(peak), done.stdout)


def export_run(config: Path, fmt: str, first: str, last: str, out: Path) -> Run:
    return measured(
        [sys.executable, "-m", "bot", "export", "--format", fmt, "--from", first, "--to", last,
         "--out", str(out), "--config", str(config)]
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--formats", default="csv,xlsx,parquet", help="comma-separated, default all three")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadtrail-export-bench-") as name:
        folder = Path(name)
        db_path = folder / "bench.db"
        url = f"sqlite+aiosqlite:///{db_path}"

        async def load() -> float:
            db = await open_database(url)
            try:
                return await fill(db, args.events)
            finally:
                await db.close()

        print(f"filling {args.events:,} events … ", end="", flush=True)
        print(f"{asyncio.run(load()):.0f} s")
        config = write_config(folder / "c.toml", {"timezone": "Europe/Moscow", "database": {"url": url}})
        # A margin of a day each side: the seed's jitter moves the first and last events by up to 30 min.
        first = (SEED_START - timedelta(days=1)).date().isoformat()
        last = (SEED_START + timedelta(days=SEED_DAYS + 1)).date().isoformat()
        day = (SEED_START + timedelta(days=45)).date().isoformat()

        naive = measured([sys.executable, "-c", NAIVE_EXPORT, str(db_path), str(folder / "naive.csv")])
        assert int(naive.output) == args.events
        figures = [
            Figure("naive sqlite3 fetchall + csv (baseline), time", naive.seconds, "s", 1),
            Figure("naive baseline, peak RSS", naive.peak_rss / MB, "MB", 0),
        ]
        for fmt in args.formats.split(","):
            # One day costs the start-up (imports, opening the store): the rest of the period is the export.
            day_run = export_run(config, fmt, day, day, folder / f"day.{fmt}")
            run = export_run(config, fmt, first, last, folder / f"all.{fmt}")
            assert run.output.startswith(f"exported {args.events} events"), run.output
            work = run.seconds - day_run.seconds
            figures += [
                Figure(f"{fmt}: whole period, time", run.seconds, "s", 1),
                Figure(f"{fmt}: events/s beyond one day's run", args.events / work, "", 0),
                Figure(f"{fmt}: file size", (folder / f"all.{fmt}").stat().st_size / MB, "MB", 1),
                Figure(f"{fmt}: one day, peak RSS", day_run.peak_rss / MB, "MB", 0),
                # Streaming: the whole period must need about what one day needs.
                Figure(
                    f"{fmt}: whole period, peak RSS growth",
                    (run.peak_rss - day_run.peak_rss) / MB,
                    "MB",
                    0,
                    Target("<=", 100),
                ),
            ]
            if fmt == "csv":
                figures.append(Figure("csv time / naive baseline time", run.seconds / naive.seconds, "", 1))
        print_table(f"export of {args.events:,} events over {SEED_DAYS} days (sqlite)", figures)


if __name__ == "__main__":
    main()
