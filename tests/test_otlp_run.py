"""``leadtrail run`` as an OTLP target for real OpenTelemetry exporters: the SDK's ``OTLPSpanExporter``, and
the ``openai`` client instrumented by ``opentelemetry-instrumentation-openai-v2`` exporting span by span.
The model calls end up on their clients' timelines with tokens and rouble costs, waiting calls survive
a restart, and a trace that never names its user leaves its call under ``unattributed``."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.fake_openai import ANSWER, COMPLETION_TOKENS, PROMPT_TOKENS, fake_openai
from tests.otlp_bodies import as_json, chat, new_span_id, new_trace_id, request, span
from tests.processes import clean_env, free_port, leadtrail, running_service, write_config

TOKEN = "otlp-e2e-token"
YANDEX_PRO = "gpt://b1g-folder/yandexgpt/latest"


def config(tmp_path: Path, port: int, *, wait: float = 120.0) -> Path:
    return write_config(
        tmp_path / "config.toml",
        {
            "timezone": "Europe/Moscow",
            "database": {"url": f"sqlite+aiosqlite:///{tmp_path / 'run.db'}"},
            "ingest": {"port": port, "tokens": [TOKEN]},
            "ai": {
                "trace_wait_seconds": wait,
                "prices": [
                    {
                        "model": "gpt://*/yandexgpt/latest",
                        "input_per_million": 1200,
                        "output_per_million": 1200,
                    },
                    {"model": "yandexgpt-lite", "input_per_million": 200, "output_per_million": 200},
                ],
            },
        },
    )


async def timeline(config_path: Path, user_id: str) -> dict[str, Any]:
    result = await asyncio.to_thread(leadtrail, "client", user_id, "--json", "--config", str(config_path))
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def exporter(url: str, token: str | None = TOKEN, **options: Any) -> OTLPSpanExporter:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return OTLPSpanExporter(endpoint=f"{url}/v1/traces", headers=headers, **options)


def assistant_turns(url: str) -> list[ReadableSpan]:
    """A handler span with the user and a model call inside it, a model call naming its own user, and a
    database span; exported as the SDK's SimpleSpanProcessor does (each span when it ends)."""
    kept = InMemorySpanExporter()
    # The channel on the resource: every span of the process has it (the lite call below names its own).
    provider = TracerProvider(
        resource=Resource.create({"service.name": "salon-bot", "leadtrail.channel": "telegram"})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter(url)))
    provider.add_span_processor(SimpleSpanProcessor(kept))
    tracer = provider.get_tracer("salon.handler")
    with tracer.start_as_current_span("handle_message", attributes={"user.id": "tg_100"}):
        with tracer.start_as_current_span(
            "chat", kind=SpanKind.CLIENT, attributes=chat(YANDEX_PRO, 1000, 100)
        ):
            pass
        with tracer.start_as_current_span("SELECT slots", attributes={"db.system.name": "postgresql"}):
            pass
    lite = {
        "gen_ai.system": "yandex",
        "gen_ai.request.model": "yandexgpt-lite",
        "gen_ai.usage.input_tokens": 4000,
        "gen_ai.usage.output_tokens": 1000,
        "enduser.id": "wa_200",
        "leadtrail.channel": "whatsapp",
        "leadtrail.event": "assistant_response",
        "leadtrail.intent": "price.question",
    }
    with tracer.start_as_current_span("chat yandexgpt-lite", kind=SpanKind.CLIENT, attributes=lite):
        pass
    provider.shutdown()
    return list(kept.get_finished_spans())


async def metric(url: str, name: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as response:
        for line in (await response.text()).splitlines():
            if line.startswith(name):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_the_sdk_exporter_delivers_model_calls_to_their_clients(tmp_path: Path) -> None:
    port = free_port()
    config_path = config(tmp_path, port)
    async with running_service(config_path, port, tmp_path / "run.log") as service:
        spans = await asyncio.to_thread(assistant_turns, service.url)
        assert [item.name for item in spans] == [
            "chat",
            "SELECT slots",
            "handle_message",
            "chat yandexgpt-lite",
        ]

        [call] = (await timeline(config_path, "tg_100"))["events"]
        assert (call["event"], call["channel"], call["model"], call["provider"]) == (
            "llm_call",
            "telegram",
            YANDEX_PRO,
            "openai",
        )
        assert (call["input_tokens"], call["output_tokens"], call["cost"], call["currency"]) == (
            1000,
            100,
            1.32,
            "RUB",
        )
        answer = await timeline(config_path, "wa_200")
        assert answer["client"]["ai_cost"]["total"] == 1.0  # (4,000 + 1,000) × 200 ₽ / 1e6
        [reply] = answer["events"]
        assert (reply["event"], reply["intent"], reply["channel"]) == (
            "assistant_response",
            "price.question",
            "whatsapp",
        )
        assert (
            await metric(service.url, 'leadtrail_otlp_spans_total{outcome="ignored"}') == 2.0
        )  # db + handler

        # The exporter retrying the same spans (and gzip-compressed this time) stores nothing new.
        for again in (exporter(service.url), exporter(service.url, compression=Compression.Gzip)):
            assert await asyncio.to_thread(again.export, spans) is SpanExportResult.SUCCESS
        assert len((await timeline(config_path, "tg_100"))["events"]) == 1
        assert len((await timeline(config_path, "wa_200"))["events"]) == 1

        # Without a token: refused (the exporter gives up: 401 is not retryable).
        assert (
            await asyncio.to_thread(exporter(service.url, token=None).export, spans)
            is SpanExportResult.FAILURE
        )
        async with aiohttp.ClientSession() as http:
            body = as_json(
                request(
                    span(
                        new_trace_id(), new_span_id(), chat("yandexgpt-lite", 10, 0, **{"user.id": "tg_json"})
                    )
                )
            )
            headers = {"Content-Type": "application/json"}
            async with http.post(f"{service.url}/v1/traces", data=body, headers=headers) as refused:
                assert refused.status == 401 and refused.content_type == "application/json"
            headers["Authorization"] = f"Bearer {TOKEN}"
            async with http.post(f"{service.url}/v1/traces", data=body, headers=headers) as accepted:
                assert (accepted.status, await accepted.json()) == (200, {})
        [json_call] = (await timeline(config_path, "tg_json"))["events"]
        assert json_call["cost"] == 0.002
        assert await service.stop() == 0


async def test_an_instrumented_openai_client_shows_on_the_client_timeline_with_its_rouble_cost(
    tmp_path: Path,
) -> None:
    port = free_port()
    config_path = config(tmp_path, port)
    async with (
        fake_openai() as openai_api,
        running_service(config_path, port, tmp_path / "run.log") as service,
    ):
        env = {
            **clean_env(),
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{service.url}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_HEADERS": f"Authorization={quote(f'Bearer {TOKEN}')}",
        }
        driver = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.otlp_openai_driver",
            openai_api.base_url,
            YANDEX_PRO,
            "tg_777",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(driver.communicate(), 120)
        assert driver.returncode == 0, err.decode()
        assert out.decode().strip() == ANSWER
        assert [body["model"] for body in openai_api.requests] == [YANDEX_PRO]

        data = await timeline(config_path, "tg_777")
        [call] = data["events"]
        assert (call["event"], call["channel"], call["model"]) == ("llm_call", "telegram", YANDEX_PRO)
        assert (call["input_tokens"], call["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
        cost = (PROMPT_TOKENS + COMPLETION_TOKENS) * 1200 / 1_000_000
        assert (call["cost"], call["currency"]) == (cost, "RUB")
        assert data["client"]["ai_cost"]["total"] == cost
        text = await asyncio.to_thread(leadtrail, "client", "tg_777", "--config", str(config_path))
        assert f"model={YANDEX_PRO}, provider=openai, input_tokens={PROMPT_TOKENS}" in text.stdout
        assert "Стоимость ИИ: 2,71\u00a0₽ (вызовов модели: 1)" in text.stdout
        assert await service.stop() == 0


async def wait_for_events(config_path: Path, user_id: str, count: int) -> list[dict[str, Any]]:
    """The sweep runs every half second here; poll until it did (the deadline only bounds a failure)."""
    for _ in range(200):
        result = await asyncio.to_thread(leadtrail, "client", user_id, "--json", "--config", str(config_path))
        if result.returncode == 0 and len(events := json.loads(result.stdout)["events"]) >= count:
            return list(events)
        await asyncio.sleep(0.2)
    raise AssertionError(f"{user_id} never got {count} event(s)")


async def post_traces(url: str, *spans: Any) -> None:
    headers = {"Content-Type": "application/x-protobuf", "Authorization": f"Bearer {TOKEN}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/traces", data=request(*spans).SerializeToString(), headers=headers) as r,
    ):
        assert r.status == 200


async def test_acknowledged_waiting_calls_survive_a_restart_then_find_their_user_or_go_unattributed(
    tmp_path: Path,
) -> None:
    port = free_port()
    config_path = config(tmp_path, port)
    orphan_trace, trace, handler = new_trace_id(), new_trace_id(), new_span_id()
    async with running_service(config_path, port, tmp_path / "first.log") as service:
        await post_traces(service.url, span(orphan_trace, new_span_id(), chat("yandexgpt-lite", 5000, 0)))
        await post_traces(
            service.url, span(trace, new_span_id(), chat("yandexgpt-lite", 1000, 0), parent=handler)
        )
        assert await service.stop() == 0
    # Started again: the handler's span names the user of the call that waited across the restart.
    async with running_service(config_path, port, tmp_path / "second.log") as service:
        await post_traces(service.url, span(trace, handler, {"user.id": "tg_back"}, name="handle_message"))
        [attributed] = (await timeline(config_path, "tg_back"))["events"]
        assert (attributed["model"], attributed["cost"]) == ("yandexgpt-lite", 0.2)
        assert await service.stop() == 0
    unknown = await asyncio.to_thread(leadtrail, "client", "unattributed", "--config", str(config_path))
    assert unknown.returncode == 1  # the other call still waits: nobody has named its user yet
    # Once its wait is over, the call nobody named goes under "unattributed".
    short_wait = config(tmp_path, port, wait=1.0)
    async with running_service(short_wait, port, tmp_path / "third.log") as service:
        [orphan] = await wait_for_events(short_wait, "unattributed", 1)
        assert orphan["event_id"].startswith(orphan_trace) and orphan["cost"] == 1.0
        assert await service.stop() == 0
