"""What the model calls cost: priced at ingest from ``[[ai.prices]]`` (exact names and globs, ``since``,
cached tokens), kept when the source gives a cost, and summed in ``report --json``'s ``ai_cost`` and the
owner's «Стоимость ИИ», on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import pytest
from sqlalchemy import select

from bot.ingestion.pipeline import ingest_items
from reports.metrics import ReportScope
from reports.owner_report import build_report
from reports.periods import Period
from reports.pricing import ModelPrice, PriceTable
from reports.texts.html import plain_text
from reports.texts.report import summary
from storage.database import Database
from storage.models import StoredEvent
from storage.writer import EventWriter
from tests.processes import leadtrail, write_config

MOSCOW = ZoneInfo("Europe/Moscow")
PERIOD = Period(date(2025, 3, 10), date(2025, 3, 11))
NBSP = "\u00a0"


def call(
    user: str, timestamp: str, model: str, tokens_in: int, tokens_out: int, **fields: Any
) -> dict[str, Any]:
    return {
        "timestamp": timestamp,
        "event": "llm_call",
        "user_id": user,
        "channel": "telegram",
        "model": model,
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        **fields,
    }


def business(user: str, timestamp: str, event: str) -> dict[str, Any]:
    return {"timestamp": timestamp, "event": event, "user_id": user, "channel": "telegram"}


# The example: 1,200 ₽ per million tokens, four calls of 1,000–4,000 input and 100 output tokens,
# two leads and one booking: (10,000 + 400) × 1,200 / 1,000,000 = 12.48 ₽, 6.24 ₽ per lead.
EXAMPLE = [
    *(call(f"tg_{n}", f"2025-03-10T1{n}:00:00+03:00", "yandexgpt-pro", 1000 * n, 100) for n in range(1, 5)),
    business("tg_1", "2025-03-10T11:05:00+03:00", "lead_created"),
    business("tg_2", "2025-03-10T12:05:00+03:00", "lead_created"),
    business("tg_2", "2025-03-11T10:00:00+03:00", "appointment_booked"),
]


def test_report_json_sums_the_example_in_roubles(tmp_path: Path, database_url: str) -> None:
    config = write_config(
        tmp_path / "c.toml",
        {
            "timezone": "Europe/Moscow",
            "database": {"url": database_url},
            "ai": {
                "currency": "RUB",
                "prices": [{"model": "yandexgpt-pro", "input_per_million": 1200, "output_per_million": 1200}],
            },
        },
    )
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(item) for item in EXAMPLE) + b"\n")
    loaded = leadtrail("ingest", str(events), "--config", str(config))
    assert loaded.returncode == 0, loaded.stderr

    result = leadtrail(
        "report", "--from", "2025-03-10", "--to", "2025-03-11", "--json", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["ai_cost"] == {
        "total": 12.48,
        "currency": "RUB",
        "calls": 4,
        "input_tokens": 10_000,
        "output_tokens": 400,
        "per_lead": 6.24,
        "per_booking": 12.48,
        "by_model": [["yandexgpt-pro", 12.48]],
        "unpriced_models": [],
    }
    assert data["previous"]["ai_cost"]["calls"] == 0
    assert data["previous"]["ai_cost"]["per_lead"] is None

    text = leadtrail("report", "--from", "2025-03-10", "--to", "2025-03-11", "--config", str(config))
    assert f"🧠 Всего: 12,48{NBSP}₽" in text.stdout
    assert f"На заявку: 6,24{NBSP}₽" in text.stdout
    assert f"По моделям: yandexgpt-pro — 12,48{NBSP}₽" in text.stdout


PRICES = PriceTable(
    "RUB",
    (
        # YandexGPT through the OpenAI-compatible API, any folder; a newer, cheaper price for one name.
        ModelPrice(model="gpt://*/yandexgpt/*", input_per_million=1200, output_per_million=1200),
        ModelPrice(
            model="gpt://b1g/yandexgpt/latest",
            input_per_million=800,
            output_per_million=800,
            since=date(2025, 3, 11),
        ),
        # A price change on the 11th (local day) does not rewrite the 10th.
        ModelPrice(
            model="yandexgpt-lite", input_per_million=200, output_per_million=200, since=date(2025, 1, 1)
        ),
        ModelPrice(
            model="yandexgpt-lite", input_per_million=400, output_per_million=400, since=date(2025, 3, 11)
        ),
        # GigaChat does not bill cached input tokens.
        ModelPrice(
            model="GigaChat-2-Max",
            input_per_million=2000,
            output_per_million=2000,
            cached_input_per_million=0,
        ),
    ),
)

PRICED = [
    # 1,000 in + 100 out at the glob's 1,200 ₽: the exact name's price starts only on the 11th.
    call("tg_a", "2025-03-10T10:00:00+03:00", "gpt://b1g/yandexgpt/latest", 1000, 100),  # 1.32
    call("tg_a", "2025-03-11T10:00:00+03:00", "gpt://b1g/yandexgpt/latest", 1000, 100),  # 0.88
    call("tg_b", "2025-03-10T10:00:00+03:00", "gpt://other/yandexgpt/rc", 500, 500),  # glob: 1.2
    # 23:59 in Moscow is still the 10th (20:59 UTC): the old price; midnight is the 11th's new one.
    call("tg_b", "2025-03-10T23:59:00+03:00", "yandexgpt-lite", 10_000, 0),  # 2.0
    call("tg_b", "2025-03-11T00:00:00+03:00", "yandexgpt-lite", 10_000, 0),  # 4.0
    # 1,000 input of which 400 cached (free), 100 output: 700 × 2,000 / 1e6.
    call("tg_c", "2025-03-11T09:00:00+03:00", "gigachat-2-max", 1000, 100, cached_tokens=400),  # 1.4
    # The source's own cost is kept, even for a model the list does not know.
    call("tg_c", "2025-03-11T09:30:00+03:00", "in-house", 50, 50, cost=0.5),  # 0.5
    # An answer to the client counts as a call too.
    {
        **call("tg_c", "2025-03-11T09:31:00+03:00", "yandexgpt-lite", 1000, 1000),
        "event": "assistant_response",
    },
    # Unpriced: no price for the model; a cost in another currency; no token counts at all.
    call("tg_d", "2025-03-11T10:00:00+03:00", "mystery-model", 300, 30),
    call("tg_d", "2025-03-11T10:01:00+03:00", "gpt-4o", 10, 10, cost=0.01, currency="USD"),
    {
        **call("tg_d", "2025-03-11T10:02:00+03:00", "yandexgpt-lite", 0, 0),
        "input_tokens": None,
        "output_tokens": None,
    },
    business("tg_a", "2025-03-10T10:05:00+03:00", "lead_created"),
    business("tg_b", "2025-03-10T10:05:00+03:00", "lead_created"),
    business("tg_c", "2025-03-11T10:05:00+03:00", "lead_created"),
    business("tg_c", "2025-03-11T11:05:00+03:00", "appointment_booked"),
    # The previous period: one call of 1,000 tokens at the lite price.
    call("tg_e", "2025-03-09T12:00:00+03:00", "yandexgpt-lite", 1000, 0),  # 0.2
]
# Yandex: 1.32 + 0.88 + 1.2; lite: 2.0 + 4.0 + 0.8 (the answer); GigaChat 1.4; in-house 0.5.
TOTAL = 1.32 + 0.88 + 1.2 + 2.0 + 4.0 + 0.8 + 1.4 + 0.5


async def test_since_globs_cached_tokens_and_unpriced_models(db: Database, writer: EventWriter) -> None:
    outcome = await ingest_items(PRICED, writer, MOSCOW, source="test", prices=PRICES)
    assert (outcome.accepted, outcome.errors) == (len(PRICED), [])
    async with db.sessions() as session:
        stored = {
            (row.user_id, row.ts.isoformat(), row.model): (row.cost, row.currency)
            for row in (
                await session.execute(select(StoredEvent).where(StoredEvent.model.is_not(None)))
            ).scalars()
        }
        report = (await build_report(session, ReportScope(PERIOD, MOSCOW, 3.0, currency="RUB"))).report
    assert stored[("tg_a", "2025-03-10T07:00:00+00:00", "gpt://b1g/yandexgpt/latest")] == (1.32, "RUB")
    assert stored[("tg_a", "2025-03-11T07:00:00+00:00", "gpt://b1g/yandexgpt/latest")] == (0.88, "RUB")
    assert stored[("tg_b", "2025-03-10T20:59:00+00:00", "yandexgpt-lite")] == (2.0, "RUB")
    assert stored[("tg_b", "2025-03-10T21:00:00+00:00", "yandexgpt-lite")] == (4.0, "RUB")
    assert stored[("tg_c", "2025-03-11T06:00:00+00:00", "gigachat-2-max")] == (1.4, "RUB")
    assert stored[("tg_c", "2025-03-11T06:30:00+00:00", "in-house")] == (0.5, "RUB")
    assert stored[("tg_d", "2025-03-11T07:00:00+00:00", "mystery-model")] == (None, None)
    assert stored[("tg_d", "2025-03-11T07:01:00+00:00", "gpt-4o")] == (0.01, "USD")

    cost = report.ai_cost.as_json()
    assert cost["total"] == pytest.approx(TOTAL) and round(cost["total"], 6) == cost["total"]
    assert cost["calls"] == 11
    assert cost["input_tokens"] == 1000 + 1000 + 500 + 10_000 + 10_000 + 1000 + 50 + 1000 + 300 + 10
    assert cost["output_tokens"] == 100 + 100 + 500 + 100 + 50 + 1000 + 30 + 10
    assert cost["per_lead"] == pytest.approx(TOTAL / 3)
    assert cost["per_booking"] == pytest.approx(TOTAL)
    assert cost["by_model"] == [
        ["yandexgpt-lite", 6.8],
        ["gpt://b1g/yandexgpt/latest", 2.2],
        ["gigachat-2-max", 1.4],
        ["gpt://other/yandexgpt/rc", 1.2],
        ["in-house", 0.5],
    ]
    assert cost["unpriced_models"] == ["gpt-4o", "mystery-model", "yandexgpt-lite"]
    assert report.previous is not None and report.previous.ai_cost.total == 0.2

    text = plain_text(summary(report, sla_seconds=3.0))
    assert f"🧠 Всего: {money(TOTAL)} ▲ +{money(TOTAL - 0.2)}" in text
    assert "Вызовов модели: 11" in text
    assert "⚠️ Без цены (не вошли в сумму): gpt-4o, mystery-model, yandexgpt-lite" in text


def money(value: float) -> str:
    return f"{value:.2f}".replace(".", ",") + f"{NBSP}₽"


async def test_a_report_without_model_calls_has_no_ai_section(db: Database, writer: EventWriter) -> None:
    await ingest_items(
        [business("tg_a", "2025-03-10T10:05:00+03:00", "lead_created")], writer, MOSCOW, source="t"
    )
    async with db.sessions() as session:
        built = await build_report(session, ReportScope(PERIOD, MOSCOW, 3.0))
    assert "Стоимость ИИ" not in built.text
    assert built.report.ai_cost.as_json()["per_lead"] == 0.0


def test_the_price_list_picks_exact_names_then_globs_then_the_latest_since() -> None:
    glob = ModelPrice(model="gpt://*/yandexgpt/*", input_per_million=1, output_per_million=1)
    older = ModelPrice(model="Pro", input_per_million=2, output_per_million=2, since=date(2025, 1, 1))
    newer = ModelPrice(model="pro", input_per_million=3, output_per_million=3, since=date(2025, 2, 1))
    later = ModelPrice(
        model="gpt://f/yandexgpt/latest", input_per_million=4, output_per_million=4, since=date(2026, 1, 1)
    )
    table = PriceTable("RUB", (glob, older, newer, later))
    assert table.price_for("PRO", date(2025, 1, 31)) is older  # names ignore case
    assert table.price_for("pro", date(2025, 2, 1)) is newer
    assert table.price_for("pro", date(2024, 12, 31)) is None  # before any of its prices
    assert table.price_for("gpt://f/yandexgpt/latest", date(2025, 6, 1)) is glob  # exact one not yet
    assert table.price_for("gpt://f/yandexgpt/latest", date(2026, 1, 1)) is later
    assert table.knows("gpt://x/yandexgpt/lite") and not table.knows("gigachat")
    twins = PriceTable(
        "RUB",
        (older, ModelPrice(model="pro", input_per_million=9, output_per_million=9, since=date(2025, 1, 1))),
    )
    assert twins.price_for("pro", date(2025, 6, 1)) is older  # a tie: the first listed
    # Cached tokens never exceed the input they are part of.
    free_cache = ModelPrice(
        model="m", input_per_million=1000, output_per_million=0, cached_input_per_million=0
    )
    assert free_cache.cost(100, 0, 500) == 0.0
    assert free_cache.cost(None, 1000, None) == 0.0
