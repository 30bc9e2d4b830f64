"""How fast ``leadtrail run`` ingests model calls as OTLP traces, next to the same events as NDJSON.

``python -m bench.otlp [--quick | --calls N] [--batch 1000] [--senders 4] [--database-url URL]``

One ``leadtrail run`` in its own process (a fresh SQLite file unless ``--database-url``), with a price
list, so every call is priced at ingest on both paths. The same model calls go in twice, under different
ids so both are stored: as ``POST /v1/traces`` bodies of ``--batch`` protobuf spans (the GenAI attributes
``opentelemetry-instrumentation-openai-v2`` sets, each span naming its own user, each its own trace), and
as ``POST /v1/events`` NDJSON bodies of ``--batch`` events with the fields those spans map to (the
baseline). The two alternate in rounds of ``ROUND_BATCHES`` bodies each, so both meet a table of the same
size and the same moments of a shared machine. Only sending is timed: every round's bodies are encoded
with the clock stopped. Target: OTLP at least 0.8 of NDJSON. Printed with PASS/MISS, never asserted; the
exit code is 1 only when a call was lost or an answer was not the full success.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import orjson
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from sqlalchemy.engine import make_url

from bench.common import Figure, Target, batched, print_table, running_server
from bench.ingest import count_events
from tests.otlp_bodies import START_NANO, chat, request, span
from tests.processes import free_port, write_config

QUICK_CALLS = 40_000
ROUND_BATCHES = 10
TOKEN = "bench-otlp"
OTLP_OVER_NDJSON = Target(">=", 0.8)
MODELS = ("yandexgpt-lite", "yandexgpt-pro", "GigaChat-2-Max")
PRICES = [
    {"model": "yandexgpt-lite", "input_per_million": 200, "output_per_million": 200},
    {"model": "yandexgpt-pro", "input_per_million": 1200, "output_per_million": 1200},
    {
        "model": "GigaChat-2-Max",
        "input_per_million": 1950,
        "output_per_million": 1950,
        "cached_input_per_million": 0,
    },
]


@dataclass(frozen=True, slots=True)
class Call:
    trace_id: str
    span_id: str
    user_id: str
    model: str
    input_tokens: int
    output_tokens: int
    start_nano: int
    duration_ms: int


def calls(count: int, rng: random.Random) -> list[Call]:
    """Model calls of 20,000 clients over a day, at random sizes; ids from ``rng``, so each run differs."""
    return [
        Call(
            trace_id=rng.randbytes(16).hex(),
            span_id=rng.randbytes(8).hex(),
            user_id=f"tg_{rng.randrange(20_000)}",
            model=rng.choice(MODELS),
            input_tokens=rng.randrange(200, 4000),
            output_tokens=rng.randrange(5, 400),
            start_nano=START_NANO + n * 86_400_000_000_000 // count,
            duration_ms=rng.randrange(300, 5000),
        )
        for n in range(count)
    ]


def protobuf_body(batch: list[Call]) -> bytes:
    spans = [
        span(
            call.trace_id,
            call.span_id,
            chat(call.model, call.input_tokens, call.output_tokens, **{"user.id": call.user_id}),
            name=f"chat {call.model}",
            start=call.start_nano,
            duration_ms=call.duration_ms,
        )
        for call in batch
    ]
    return request(*spans, resource={"leadtrail.channel": "telegram"}).SerializeToString()


def ndjson_body(batch: list[Call]) -> bytes:
    """The events the spans above become, as a source would send them to /v1/events."""
    lines = []
    for call in batch:
        end = call.start_nano / 1e9 + call.duration_ms / 1000
        event = {
            "event_id": call.trace_id + call.span_id,
            "event": "llm_call",
            "timestamp": datetime.fromtimestamp(end, UTC).isoformat(timespec="milliseconds"),
            "user_id": call.user_id,
            "channel": "telegram",
            "response_time_ms": call.duration_ms,
            "model": call.model,
            "provider": "openai",
            "input_tokens": call.input_tokens,
            "output_tokens": call.output_tokens,
        }
        lines.append(orjson.dumps(event))
    return b"\n".join(lines) + b"\n"


@dataclass
class Side:
    """One path: its bodies' seconds and what came back (``answers``: status or exception name)."""

    path: str
    content_type: str
    seconds: float = 0.0
    calls: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    first_problem: str | None = None

    def wrong(self, problem: str) -> None:
        self.first_problem = self.first_problem or problem


Check = Callable[[int, bytes, int], str | None]


def traces_answer(status: int, body: bytes, _size: int) -> str | None:
    if status != 200:
        return f"{status}: {body[:300]!r}"
    answer = ExportTraceServiceResponse.FromString(body)
    return f"partial success: {answer.partial_success}" if answer.HasField("partial_success") else None


def events_answer(status: int, body: bytes, size: int) -> str | None:
    if status != 202 or orjson.loads(body).get("accepted") != size:
        return f"{status}: {body[:300]!r}"
    return None


async def send(
    http: aiohttp.ClientSession,
    url: str,
    side: Side,
    bodies: list[tuple[bytes, int]],
    senders: int,
    check: Check,
) -> None:
    """The round's pre-encoded bodies through ``senders`` concurrent senders; only this is timed."""
    pending = iter(bodies)
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": side.content_type}

    async def sender() -> None:
        for body, size in pending:
            try:
                async with http.post(f"{url}{side.path}", data=body, headers=headers) as response:
                    status, answer = response.status, await response.read()
            except aiohttp.ClientError as exc:
                side.answers[type(exc).__name__] += 1
                side.wrong(repr(exc))
                continue
            side.answers[str(status)] += 1
            if (problem := check(status, answer, size)) is not None:
                side.wrong(problem)

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    side.seconds += time.perf_counter() - started
    side.calls += sum(size for _, size in bodies)


async def run(args: argparse.Namespace, workdir: Path) -> tuple[Side, Side, int, int]:
    url = args.database_url or f"sqlite+aiosqlite:///{workdir / 'leadtrail.db'}"
    port = free_port()
    config = write_config(
        workdir / "leadtrail.toml",
        {"database": {"url": url}, "ingest": {"port": port, "tokens": [TOKEN]}, "ai": {"prices": PRICES}},
    )
    rng = random.Random()
    otlp = Side("/v1/traces", "application/x-protobuf")
    ndjson = Side("/v1/events", "application/x-ndjson")
    async with running_server(config, port, workdir / "server.log") as server:
        before = await count_events(url)
        timeout = aiohttp.ClientTimeout(total=600)
        connector = aiohttp.TCPConnector(limit=args.senders)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
            per_round = args.batch * ROUND_BATCHES
            for done in range(0, args.calls, per_round):
                size = min(per_round, args.calls - done)
                rounds: list[tuple[Side, Callable[[list[Call]], bytes], Check]] = [
                    (otlp, protobuf_body, traces_answer),
                    (ndjson, ndjson_body, events_answer),
                ]
                if done // per_round % 2:  # alternate which path goes first
                    rounds.reverse()
                for side, encode, check in rounds:
                    bodies = [
                        (encode(batch), len(batch)) for batch in batched(iter(calls(size, rng)), args.batch)
                    ]
                    await send(http, server.url, side, bodies, args.senders, check)
        exit_code = await server.stop()
    return otlp, ndjson, await count_events(url) - before, exit_code


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.otlp", description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--calls", type=int, default=200_000, help="model calls per path (default 200,000)")
    size.add_argument("--quick", action="store_true", help=f"{QUICK_CALLS:,} calls per path")
    parser.add_argument("--batch", type=int, default=1000, help="spans or events per request (default 1000)")
    parser.add_argument("--senders", type=int, default=4, help="concurrent HTTP senders (default 4)")
    parser.add_argument("--database-url", help="server database (default: a fresh SQLite file)")
    args = parser.parse_args(argv)
    if args.quick:
        args.calls = QUICK_CALLS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="leadtrail-bench-otlp-") as tmp:
        otlp, ndjson, stored, exit_code = asyncio.run(run(args, Path(tmp)))
    backend = make_url(args.database_url or "sqlite://").get_backend_name()
    rate_otlp, rate_ndjson = otlp.calls / otlp.seconds, ndjson.calls / ndjson.seconds
    print_table(
        f"OTLP ingest: {args.calls:,} model calls per path, {args.batch} per request, "
        f"{args.senders} senders, {backend}",
        [
            Figure("POST /v1/traces, protobuf spans", rate_otlp, "calls/s"),
            Figure("POST /v1/events, NDJSON (baseline)", rate_ndjson, "calls/s"),
            Figure("OTLP / NDJSON", rate_otlp / rate_ndjson, decimals=2, target=OTLP_OVER_NDJSON),
        ],
    )
    answers = {side.path: dict(side.answers) for side in (otlp, ndjson)}
    print(
        f"checks: {stored:,} of {2 * args.calls:,} calls stored · answers {answers} · exit code {exit_code}"
    )
    print(f"context: load average at start {load:.2f}")
    for side in (otlp, ndjson):
        if side.first_problem:
            print(f"first problem on {side.path}: {side.first_problem}")
    clean = not (otlp.first_problem or ndjson.first_problem)
    return 0 if clean and stored == 2 * args.calls and exit_code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
