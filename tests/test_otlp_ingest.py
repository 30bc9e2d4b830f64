"""``POST /v1/traces`` over real HTTP on SQLite and PostgreSQL: spans become events on the right client,
a call waits (in the database) for its trace's user, and every answer follows the OTLP specification."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from google.protobuf import json_format
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.ingestion.http_app import WAITER_KEY, ServiceState
from bot.ingestion.pipeline import ingest_items
from bot.ingestion.trace_wait import TraceWaiter
from bot.runtime.service import create_writer, start_ingest_site
from bot.settings import Settings
from storage.database import Database
from storage.models import PendingSpan, QuarantinedPayload, StoredEvent, TraceUser
from storage.writer import EventWriter
from tests.otlp_bodies import AUTH, as_json, chat, new_span_id, new_trace_id, request, span

PROTOBUF = "application/x-protobuf"
PRICES = [{"model": "yandexgpt-pro", "input_per_million": 1200, "output_per_million": 1200}]


@dataclass
class Collector:
    url: str
    db: Database
    http: aiohttp.ClientSession
    waiter: TraceWaiter
    writer: EventWriter

    async def export(
        self, built: ExportTraceServiceRequest | bytes, *, media: str = PROTOBUF, **headers: str
    ) -> tuple[int, bytes, str]:
        body = built if isinstance(built, bytes) else built.SerializeToString()
        async with self.http.post(
            f"{self.url}/v1/traces", data=body, headers={"Content-Type": media, **AUTH, **headers}
        ) as response:
            return response.status, await response.read(), response.content_type

    async def ok(self, built: ExportTraceServiceRequest) -> ExportTraceServiceResponse:
        status, body, media = await self.export(built)
        assert (status, media) == (200, PROTOBUF), body
        return ExportTraceServiceResponse.FromString(body)

    async def events(self) -> list[StoredEvent]:
        async with self.db.sessions() as session:
            result = await session.execute(select(StoredEvent).order_by(StoredEvent.ts, StoredEvent.id))
            return list(result.scalars())

    async def count(self, model: Any) -> int:
        async with self.db.sessions() as session:
            return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


@pytest.fixture
async def collector(db: Database, tmp_path: Path) -> AsyncIterator[Collector]:
    settings = Settings(
        database={"url": "sqlite+aiosqlite:///unused.db"},
        ingest={
            "tokens": [SecretStr("otlp-token")],
            "sources": [{"name": "widget", "token": "widget-token", "channels": ["site"]}],
            "max_body_bytes": 64 * 1024,
        },
        ai={"prices": PRICES, "trace_wait_seconds": 120},
    )
    writer = create_writer(settings, db)
    await writer.start()
    runner, port = await start_ingest_site(settings, db, writer, ServiceState(), port=0)
    waiter = runner.app[WAITER_KEY]
    async with aiohttp.ClientSession() as http:
        yield Collector(f"http://127.0.0.1:{port}", db, http, waiter, writer)
    await runner.cleanup()
    await writer.close()


async def test_a_call_waits_for_its_parent_and_is_priced_when_the_parent_names_the_user(
    collector: Collector,
) -> None:
    trace, handler, call = new_trace_id(), new_span_id(), new_span_id()
    child = span(trace, call, chat("yandexgpt-pro", 1000, 100), parent=handler)
    parent = span(
        trace, handler, {"user.id": "tg_42", "leadtrail.channel": "telegram"}, name="handle_message"
    )
    # SimpleSpanProcessor: the child ends first and is exported alone.
    assert not (await collector.ok(request(child))).HasField("partial_success")
    assert await collector.events() == []
    assert await collector.count(PendingSpan) == 1
    await collector.ok(request(parent))  # answered only once the waiting call is stored
    [event] = await collector.events()
    assert (event.user_id, event.event, event.channel, event.actor) == (
        "tg_42",
        "llm_call",
        "unknown",
        "assistant",
    )
    assert (event.model, event.provider, event.input_tokens, event.output_tokens) == (
        "yandexgpt-pro",
        "openai",
        1000,
        100,
    )
    assert (event.cost, event.currency) == (1.32, "RUB")
    assert event.event_id == trace + call and event.response_time_ms == 1234
    assert event.ts == datetime(2025, 3, 10, 10, 0, 1, 234000, tzinfo=UTC)
    assert await collector.count(PendingSpan) == 0
    # A retry of the same export is a duplicate, not a second call.
    await collector.ok(request(child))
    await collector.ok(request(child, parent))
    assert len(await collector.events()) == 1


async def test_a_trace_user_seen_first_serves_later_calls_and_the_span_own_user_wins(
    collector: Collector,
) -> None:
    trace, handler = new_trace_id(), new_span_id()
    # The handler's span first (an app that ends it early), with a weaker and a stronger user attribute.
    await collector.ok(
        request(
            span(trace, handler, {"gen_ai.conversation.id": "conv-1", "enduser.id": "wa_7"}, name="handle"),
            span(trace, new_span_id(), {"langfuse.user.id": "lf-9"}, name="step"),
        )
    )
    await collector.ok(request(span(trace, new_span_id(), chat("yandexgpt-pro", 10, 10), parent=handler)))
    # A call naming its own user keeps it, whatever its trace says.
    await collector.ok(
        request(
            span(trace, new_span_id(), chat("yandexgpt-pro", 10, 10, **{"user.id": "tg_own"}), parent=handler)
        )
    )
    users = sorted(event.user_id for event in await collector.events())
    assert users == ["tg_own", "wa_7"]
    assert await collector.count(PendingSpan) == 0


async def test_a_sibling_model_call_naming_its_user_serves_the_trace_before_and_after_it(
    collector: Collector,
) -> None:
    """No handler span here: the user is on one of the trace's model calls, stored as an event, and that
    serves a call that waited for it as well as one that comes later."""
    trace = new_trace_id()
    await collector.ok(request(span(trace, new_span_id(), chat("yandexgpt-pro", 1, 1))))
    await collector.ok(
        request(span(trace, new_span_id(), chat("yandexgpt-pro", 2, 2, **{"enduser.id": "wa_5"})))
    )
    await collector.ok(request(span(trace, new_span_id(), chat("yandexgpt-pro", 3, 3))))
    assert sorted((event.user_id, event.input_tokens) for event in await collector.events()) == [
        ("wa_5", 1),
        ("wa_5", 2),
        ("wa_5", 3),
    ]
    assert await collector.count(PendingSpan) == 0
    assert await collector.count(TraceUser) == 0  # a user on a stored call is found on its event


async def test_nobody_named_calls_go_to_unattributed_after_the_wait(collector: Collector) -> None:
    trace = new_trace_id()
    await collector.ok(request(span(trace, new_span_id(), chat("yandexgpt-pro", 500, 50))))
    assert await collector.waiter.release_due(datetime.now(UTC)) == 0  # still within the wait
    later = datetime.now(UTC) + timedelta(seconds=121)
    assert await collector.waiter.release_due(later) == 1
    [event] = await collector.events()
    assert event.user_id == "unattributed" and event.cost == 0.66
    assert await collector.waiter.release_due(later) == 0
    assert await collector.count(PendingSpan) == 0


async def test_at_the_end_of_its_wait_a_call_still_takes_a_user_a_stored_call_of_its_trace_names(
    collector: Collector,
) -> None:
    trace = new_trace_id()
    await collector.ok(request(span(trace, new_span_id(), chat("yandexgpt-pro", 1, 1))))
    # A call of the same trace that reached storage another way (here: straight through the writer).
    sibling = {**chat_event(trace + new_span_id()), "user_id": "tg_sibling"}
    await ingest_items([sibling], collector.writer, UTC, source="test")
    assert await collector.waiter.release_due(datetime.now(UTC) + timedelta(seconds=121)) == 1
    assert sorted(event.user_id for event in await collector.events()) == ["tg_sibling", "tg_sibling"]


def chat_event(event_id: str) -> dict[str, Any]:
    return {"event_id": event_id, "event": "llm_call", "timestamp": "2025-03-10T10:00:00Z", "model": "m"}


async def test_a_waiting_call_whose_user_arrived_meanwhile_is_released_by_the_sweep(
    collector: Collector,
) -> None:
    """The race the sweep is for: the user's request committed between the call's commit and its read."""
    trace, call = new_trace_id(), new_span_id()
    await collector.ok(request(span(trace, call, chat("yandexgpt-pro", 1, 1))))
    async with collector.db.sessions() as session, session.begin():
        session.add(TraceUser(trace_id=trace, user_id="tg_race", rank=1, seen_at=datetime.now(UTC)))
    assert await collector.waiter.release_due(datetime.now(UTC)) == 1
    assert [event.user_id for event in await collector.events()] == ["tg_race"]


async def test_other_spans_are_ignored_and_bad_spans_are_rejected_in_partial_success(
    collector: Collector,
) -> None:
    trace = new_trace_id()
    bad = new_span_id()
    answer = await collector.ok(
        request(
            span(trace, new_span_id(), {"http.method": "GET", "user.id": "tg_1"}, name="GET /slots"),
            span(trace, new_span_id(), chat("yandexgpt-pro", 5, 5)),
            span(trace, bad, chat("yandexgpt-pro", -5, 5)),
            span(trace, new_span_id(), chat("yandexgpt-pro", 5, 5, **{"leadtrail.confidence": 7.0})),
        )
    )
    assert answer.partial_success.rejected_spans == 2
    message = answer.partial_success.error_message
    assert f"span {bad}: input_tokens: Input should be greater than or equal to 0" in message
    assert "confidence" in message
    assert [event.user_id for event in await collector.events()] == ["tg_1"]
    assert await collector.count(QuarantinedPayload) == 2


async def test_leadtrail_attributes_fill_fields_and_old_attribute_names_still_count(
    collector: Collector,
) -> None:
    attributes = {
        "gen_ai.system": "yandex",
        "gen_ai.request.model": "yandexgpt-pro",
        "gen_ai.usage.prompt_tokens": 2000,
        "gen_ai.usage.completion_tokens": 200,
        "gen_ai.usage.cache_read.input_tokens": 500,
        "leadtrail.event": "assistant_response",
        "leadtrail.intent": "booking.request",
        "leadtrail.crm_id": "BX_1",
        "leadtrail.cost": 0.5,
        "traceloop.association.properties.user_id": "tg_tl",
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "system", "parts": [{"type": "text", "content": "Ты администратор"}]},
                {"role": "user", "parts": [{"type": "text", "content": "Запишите на завтра"}]},
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "На 12:00?"}],
                    "finish_reason": "stop",
                }
            ]
        ),
    }
    await collector.ok(
        request(span(new_trace_id(), new_span_id(), attributes), resource={"leadtrail.channel": "site"})
    )
    [event] = await collector.events()
    assert (event.event, event.user_id, event.channel, event.intent, event.crm_id) == (
        "assistant_response",
        "tg_tl",
        "site",
        "booking.request",
        "BX_1",
    )
    assert (event.provider, event.input_tokens, event.output_tokens, event.cached_tokens) == (
        "yandex",
        2000,
        200,
        500,
    )
    assert event.cost == 0.5  # the span's own cost wins over the price list
    assert (event.prompt, event.assistant_response) == ("Запишите на завтра", "На 12:00?")


async def test_otlp_json_with_hex_ids_and_gzip(collector: Collector) -> None:
    trace, call = new_trace_id(), new_span_id()
    built = request(span(trace, call, chat("yandexgpt-pro", 1000, 100, **{"user.id": "tg_json"})))
    status, body, media = await collector.export(
        gzip.compress(as_json(built)), media="application/json", **{"Content-Encoding": "gzip"}
    )
    assert (status, media, body) == (200, "application/json", b"{}")
    [event] = await collector.events()
    assert event.event_id == trace + call  # hex, not base64 read wrong
    bad = as_json(request(span(trace, new_span_id(), chat("m", -1, 1))))
    status, body, _ = await collector.export(bad, media="application/json")
    answer = json_format.Parse(body, ExportTraceServiceResponse())
    assert status == 200 and answer.partial_success.rejected_spans == 1


@pytest.mark.parametrize(
    ("body", "media", "headers", "status", "words"),
    [
        (b"\xff\x00garbage", PROTOBUF, {}, 400, "not a protobuf"),
        (
            b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
            "application/json",
            {},
            400,
            "hex",
        ),
        (b"{}", "text/plain", {}, 415, "Content-Type"),
        (b"{}", "application/json", {"Content-Encoding": "compress"}, 415, "Content-Encoding"),
        (b"not gzip", "application/json", {"Content-Encoding": "gzip"}, 400, "cannot be read"),
        (
            gzip.compress(b" " * (65 * 1024)),
            "application/json",
            {"Content-Encoding": "gzip"},
            413,
            "decompressed",
        ),
        (b"x" * (65 * 1024), PROTOBUF, {}, 413, "ingest.max_body_bytes"),
        (b"", PROTOBUF, {"Authorization": "Bearer wrong"}, 401, "token"),
    ],
)
async def test_failures_are_a_google_rpc_status_in_the_request_encoding(
    collector: Collector, body: bytes, media: str, headers: dict[str, str], status: int, words: str
) -> None:
    got, answer, answer_media = await collector.export(body, media=media, **headers)
    assert got == status
    expected_media = media if media in (PROTOBUF, "application/json") else "application/json"
    assert answer_media == expected_media
    if expected_media == PROTOBUF:
        message = status_pb2.Status.FromString(answer).message
    else:
        message = json_format.Parse(answer, status_pb2.Status()).message
    assert words in message


async def test_an_empty_request_is_a_success_and_a_scoped_token_keeps_its_channels(
    collector: Collector,
) -> None:
    assert await collector.ok(ExportTraceServiceRequest()) == ExportTraceServiceResponse()
    trace = new_trace_id()
    built = request(
        span(trace, new_span_id(), chat("m", 1, 1, **{"user.id": "site_1", "leadtrail.channel": "site"})),
        span(trace, new_span_id(), chat("m", 1, 1, **{"user.id": "tg_1", "leadtrail.channel": "telegram"})),
    )
    status, body, _ = await collector.export(built, Authorization="Bearer widget-token")
    answer = ExportTraceServiceResponse.FromString(body)
    assert status == 200 and answer.partial_success.rejected_spans == 1
    assert "outside this token's scope" in answer.partial_success.error_message
    assert [event.user_id for event in await collector.events()] == ["site_1"]
