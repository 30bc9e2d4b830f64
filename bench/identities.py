"""Ingest cost against the shape of identities and histories, each beside its baseline from the same run.

``python -m bench.identities [--quick] [--http-events N]``

(1) ``leadtrail ingest`` (the real command, a fresh SQLite file) of 60,000 seed-shaped events of 6,000
    user ids, each with its own crm_id, lead_id and phone, next to the same events where every user id
    carries the seed's crm_id and lead_id and the phone +7 900 000-00-00 (an integration sending its
    test values for everyone: on the code before, a RecursionError, and all events on one client).
    Target: shared ≥ 0.8 × distinct. Checked: nothing rejected, ``leadtrail client tg_7`` shows at most
    ``identity.max_users_per_value`` user ids.
(2) The same command with 200,000 events of one user id (a test bot chatting with itself) next to
    200,000 events spread over 20,000 user ids. Target: one ≥ 0.8 × many.
(3) ``leadtrail run`` over HTTP (``bench.ingest``'s part (a): 1,000,000 events, 4 senders, batches of
    1,000) with every user id carrying the seed's crm_id and lead_id, and with the seed's own ids, next
    to ``sqlite3.executemany`` of the same events into the seed's naive table with three indexes
    (``bench.ingest``'s part (c)). Target: shared ≥ 0.8 × naive; checked: every answer a 202.
(4) What the look-backs' index costs each insert: ``sqlite3.executemany`` of the stored rows (a plain
    INSERT, so only the indexes' upkeep differs) into LeadTrail's schema, where ix_events_client_user
    (client_id, user_id, event, ts) replaced ix_events_client_ts (client_id, ts, event, user_id); into
    the same schema with the index as it was; and with a separate (user_id, event, ts) index added
    instead, the other way to serve the look-backs.

Method: for (1) and (2) the figure is events over the command's wall time less its start-up (the same
command importing one event into a fresh file, in this run), so the constant start-up does not flatter
the ratio; files are written before the clock starts. Parts run one after the other. Targets are
printed with PASS/MISS, never asserted; the exit code is 1 when an event was lost or refused.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.common import REPO_ROOT, Figure, Target, print_table, seed_events
from bench.ingest import (
    PLAIN_SCHEMA_INSERT,
    ROWS_PER_TRANSACTION,
    create_leadtrail_schema,
    http_ingest,
    naive_baseline,
    open_sqlite,
    stored_rows,
    timed_inserts,
)
from storage.identity_policy import DEFAULT_MAX_USERS_PER_VALUE
from tests.processes import clean_env

SEED_IDS = {"crm_id": "BX_67890", "lead_id": "lead_2025_001"}
SHARED_PHONE = "+7 900 000-00-00"
AT_LEAST = Target(">=", 0.8)
# The schema now, and the two others part (4) compares it with.
SCHEMAS = {
    "ix_events_client_ts as before 0011": (
        "DROP INDEX ix_events_client_user;"
        " CREATE INDEX ix_events_client_ts ON events (client_id, ts, event, user_id)"
    ),
    "and (user_id, event, ts) added": (
        "DROP INDEX ix_events_client_user;"
        " CREATE INDEX ix_events_client_ts ON events (client_id, ts, event, user_id);"
        " CREATE INDEX ix_events_user_event_ts ON events (user_id, event, ts)"
    ),
}


@dataclass(frozen=True)
class Scale:
    shared_events: int = 60_000
    shared_users: int = 6_000
    history_events: int = 200_000
    history_users: int = 20_000
    http_events: int = 1_000_000
    index_events: int = 100_000


QUICK = Scale(6_000, 600, 20_000, 2_000, 100_000, 10_000)


def own_ids(total: int, *, run_tag: str, clients: int) -> Iterator[dict[str, Any]]:
    """Seed-shaped events where each user id has a crm_id, lead_id and phone of its own."""
    for item in seed_events(total, run_tag=run_tag, clients=clients):
        number = int(item["user_id"].removeprefix("tg_"))
        yield {**item, "lead_id": f"lead_2025_{number:05d}", "phone": f"+7 9{number:09d}"}


def with_ids(events: Iterator[dict[str, Any]], same: dict[str, str]) -> Iterator[dict[str, Any]]:
    """The same events with these ids on every user id."""
    for item in events:
        yield {**item, **same}


def seed_with_shared_ids(total: int, *, run_tag: str) -> Iterator[dict[str, Any]]:
    """``bench.ingest``'s events, every user id with the seed's crm_id and lead_id."""
    return with_ids(seed_events(total, run_tag=run_tag), SEED_IDS)


def write_ndjson(path: Path, events: Iterator[dict[str, Any]]) -> Path:
    with open(path, "wb") as file:
        for item in events:
            file.write(orjson.dumps(item) + b"\n")
    return path


@dataclass
class Ingested:
    seconds: float
    summary: str
    ok: bool


def leadtrail(database: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        env={**clean_env(), "LEADTRAIL_DATABASE__URL": f"sqlite+aiosqlite:///{database}"},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )


def ingest(database: Path, events: Path, expected: int) -> Ingested:
    started = time.perf_counter()
    result = leadtrail(database, "ingest", str(events))
    seconds = time.perf_counter() - started
    summary = result.stdout.strip()
    return Ingested(seconds, summary, result.returncode == 0 and f"принято: {expected}," in summary)


def users_of_tg_7(database: Path) -> int:
    result = leadtrail(database, "client", "tg_7", "--json")
    return len(json.loads(result.stdout)["client"]["user_ids"]) if result.returncode == 0 else -1


def index_upkeep(path: Path, events: int, run_tag: str, changes: str = "") -> float:
    """Seconds of a plain INSERT of the stored rows into LeadTrail's schema, changed by ``changes``."""
    create_leadtrail_schema(path)
    with closing(open_sqlite(path)) as conn:
        conn.executescript(changes)
        conn.execute("PRAGMA foreign_keys = OFF")  # the rows name clients this empty file does not have
        return timed_inserts(conn, PLAIN_SCHEMA_INSERT, stored_rows(events, run_tag))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.identities", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a tenth of every size, for a fast check")
    parser.add_argument("--http-events", type=int, help="events for part (3) (default 1,000,000)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scale = QUICK if args.quick else Scale()
    if args.http_events:
        scale = Scale(**{**scale.__dict__, "http_events": args.http_events})
    tag = f"ids-{secrets.token_hex(4)}"
    load = os.getloadavg()[0]
    figures: list[Figure] = []
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="leadtrail-bench-ids-") as tmp:
        work = Path(tmp)
        one = write_ndjson(work / "one.ndjson", own_ids(1, run_tag=tag, clients=1))
        start_up = ingest(work / "start.db", one, 1).seconds

        def rate(name: str, events: Iterator[dict[str, Any]], total: int) -> tuple[float, Path]:
            file = write_ndjson(work / f"{name}.ndjson", events)
            done = ingest(work / f"{name}.db", file, total)
            if not done.ok:
                problems.append(f"{name}: {done.summary}")
            return total / max(done.seconds - start_up, 1e-9), work / f"{name}.db"

        print("(1) shared ids against own ids …", flush=True)
        count, users = scale.shared_events, scale.shared_users
        distinct, _ = rate("own", own_ids(count, run_tag=tag, clients=users), count)
        everyone = {**SEED_IDS, "phone": SHARED_PHONE}
        shared, shared_db = rate(
            "shared", with_ids(own_ids(count, run_tag=tag, clients=users), everyone), count
        )
        if (shown := users_of_tg_7(shared_db)) > DEFAULT_MAX_USERS_PER_VALUE or shown < 1:
            problems.append(f"leadtrail client tg_7 shows {shown} user ids")
        figures += [
            Figure(f"(1) ingest, {count:,} events, {users:,} users, own ids", distinct, "events/s"),
            Figure("(1) the same, every user with the seed's ids and one phone", shared, "events/s"),
            Figure("(1) shared / own", shared / distinct, decimals=2, target=AT_LEAST),
        ]

        print("(2) one user id against many …", flush=True)
        count, users = scale.history_events, scale.history_users
        many, _ = rate("many", seed_events(count, run_tag=tag, clients=users), count)
        single, _ = rate("single", seed_events(count, run_tag=tag, clients=1), count)
        figures += [
            Figure(f"(2) ingest, {count:,} events over {users:,} users", many, "events/s"),
            Figure(f"(2) ingest, {count:,} events of one user id", single, "events/s"),
            Figure("(2) one / many", single / many, decimals=2, target=AT_LEAST),
        ]

        print("(3) HTTP with shared ids and with own ids, against the naive table …", flush=True)
        count = scale.http_events
        seconds: dict[str, float] = {}
        for name, source in (("shared", seed_with_shared_ids), ("own", seed_events)):
            url = f"sqlite+aiosqlite:///{work / f'http-{name}.db'}"
            http = asyncio.run(http_ingest(url, count, 1000, 4, work, f"{tag}-{name}", source=source))
            seconds[name] = http.seconds
            if set(http.answers) != {"202"} or http.rows != count or http.miscounted:
                problems.append(
                    f"HTTP {name}: answers {dict(http.answers)}, {http.rows} stored: {http.first_problem}"
                )
        naive_s = naive_baseline(work / "naive.db", count, tag, source=seed_with_shared_ids)
        figures += [
            Figure(
                f"(3) HTTP, {count:,} events, everyone the seed's crm_id and lead_id",
                count / seconds["shared"],
                "events/s",
            ),
            Figure("(3) HTTP, the same events with their own ids", count / seconds["own"], "events/s"),
            Figure("(3) sqlite3 executemany, naive table, 3 indexes", count / naive_s, "events/s"),
            Figure("(3) HTTP shared / naive", naive_s / seconds["shared"], decimals=2, target=AT_LEAST),
            Figure("(3) HTTP own / naive", naive_s / seconds["own"], decimals=2),
        ]

        print("(4) the upkeep of the look-backs' index …", flush=True)
        count = scale.index_events
        now = index_upkeep(work / "index-now.db", count, tag)
        figures.append(
            Figure(f"(4) plain insert, {count:,} rows, LeadTrail's schema", count / now, "events/s")
        )
        for number, (name, changes) in enumerate(SCHEMAS.items()):
            other = index_upkeep(work / f"index-{number}.db", count, tag, changes)
            figures += [
                Figure(f"(4) the same, {name}", count / other, "events/s"),
                Figure(f"(4) time per insert now against {name}", (now / other - 1) * 100, "%", 1),
            ]
    print_table(
        f"Identities and histories against ingest cost (rows in batches of {ROWS_PER_TRANSACTION})", figures
    )
    print(f"context: command start-up {start_up:.2f} s (subtracted in (1) and (2)) · load average {load:.2f}")
    for problem in problems:
        print(f"problem: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
