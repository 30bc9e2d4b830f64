"""What LeadTrail's schema alone costs against the naive table, piece by piece: the floor under a/c.

``python -m bench.schema_floor [--events N]``

Part (b) of ``bench.ingest`` (plain ``sqlite3.executemany`` of the stored rows into the real schema,
with the writer's pragmas, no HTTP, no validation, no linking) repeated with one piece taken away at a
time, then part (c), the naive table of the seed's fields with three indexes, all in one run. HTTP
ingest pays for everything (b) does and more, so (b)/(c) bounds what any writer work can bring
``bench.ingest``'s a/c to.
Nothing is asserted; the figures are for the reader.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

from bench.common import Figure, print_table
from bench.ingest import PLAIN_SCHEMA_INSERT, naive_baseline, schema_baseline

NARROW_EVENT_TS = (
    "DROP INDEX ix_events_event_ts",
    "CREATE INDEX ix_events_event_ts ON events (event, ts)",
)
VARIANTS: list[tuple[str, tuple[str, ...], str | None]] = [
    ("(b) LeadTrail's schema, the server's INSERT", (), None),
    ("(b1) without the answer's look-up in the INSERT", (), PLAIN_SCHEMA_INSERT),
    ("(b2) b1, ix_events_event_ts only (event, ts)", NARROW_EVENT_TS, PLAIN_SCHEMA_INSERT),
    (
        "(b3) b2 without ix_events_client_user",
        (*NARROW_EVENT_TS, "DROP INDEX ix_events_client_user"),
        PLAIN_SCHEMA_INSERT,
    ),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.schema_floor", description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="rows per part (default 1,000,000)")
    args = parser.parse_args(argv)
    run_tag = f"floor-{secrets.token_hex(4)}"
    figures = []
    with tempfile.TemporaryDirectory(prefix="leadtrail-floor-") as tmp:
        workdir = Path(tmp)
        for number, (label, ddl, insert) in enumerate(VARIANTS):
            print(f"{label} …", flush=True)
            seconds = schema_baseline(workdir / f"b{number}.db", args.events, run_tag, ddl=ddl, insert=insert)
            figures.append(Figure(label, args.events / seconds, "events/s"))
        print("(c) naive table …", flush=True)
        naive = args.events / naive_baseline(workdir / "naive.db", args.events, run_tag)
    figures.append(Figure("(c) naive table, 3 indexes", naive, "events/s"))
    figures.append(Figure("b/c: the most a/c can be", figures[0].value / naive, decimals=2))
    print_table(f"LeadTrail's schema against the naive table: {args.events:,} rows, sqlite3", figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
