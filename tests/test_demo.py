"""``leadtrail demo``: a newcomer sees the report, the charts and a timeline without a token."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from PIL import Image

from bot.demo.salon_assistant.bot import SCENARIO
from bot.demo.salon_assistant.dialog import answer
from tests.processes import leadtrail

# One client message per rule of the example assistant (and its fallback).
RULE_SAMPLES = (
    "Хочу записаться",
    "Есть вечером?",
    "Сколько стоит?",
    "Где вы?",
    "Айдар, +7 917 123-45-67",
    "Да",
    "Дорого, не буду",
    "Привет",
)


def test_demo_writes_report_charts_and_a_timeline(tmp_path: Path) -> None:
    out = tmp_path / "showcase"
    result = leadtrail("demo", "--out", str(out), "--days", "14")
    assert result.returncode == 0, result.stderr
    assert "Отчёт за" in result.stdout and "Диалог → заявка" in result.stdout
    assert "нет свободных вечерних слотов" in result.stdout
    assert "Стоимость ИИ" in result.stdout and "По моделям: yandexgpt-pro — " in result.stdout
    assert "Без цены" not in result.stdout  # the demo prices its simulated model at the public prices
    for name in ("funnel.png", "trend.png", "answer-times.png", "heatmap.png", "client-journey.png"):
        with Image.open(out / name) as picture:
            assert picture.format == "PNG" and picture.size == (1200, 800)
        assert str(out / name) in result.stdout
    assert "Отчёт за" in (out / "report.txt").read_text(encoding="utf-8")
    assert "Клиент #" in (out / "client.txt").read_text(encoding="utf-8")
    with sqlite3.connect(out / "leadtrail-demo.db") as db:
        stored = db.execute("SELECT count(*) FROM events").fetchone()[0]
        from_yclients = db.execute("SELECT count(*) FROM events WHERE channel = 'yclients'").fetchone()[0]
        visits = db.execute("SELECT count(*) FROM events WHERE event = 'visit'").fetchone()[0]
        telegram = db.execute(
            "SELECT event, intent, assistant_response, response_time_ms, scenario, lead_id, extra "
            "FROM events WHERE channel = 'telegram' "
            "AND event IN ('message_received', 'assistant_response', 'lead_created')"
        ).fetchall()
    assert f"В базе {stored:,} событий".replace(",", "\xa0") in result.stdout
    assert f"доставлено {stored - from_yclients:,};".replace(",", "\xa0") in result.stdout
    assert visits > 0 and "✂️ Визиты" in result.stdout  # the visits came from the demo's YCLIENTS
    assert "записал middleware LeadTrail" in result.stdout
    _assert_the_assistant_and_the_tracker_logged_telegram(telegram)


def _assert_the_assistant_and_the_tracker_logged_telegram(rows: list[tuple[Any, ...]]) -> None:
    """Every Telegram answer is the example's rule reply, timed by the tracker, with the bot's message id."""
    answers = [row for row in rows if row[0] == "assistant_response"]
    assert answers and len(answers) == sum(row[0] == "message_received" for row in rows)
    replies = {(reply.intent, reply.text) for reply in map(answer, RULE_SAMPLES)}
    for _, intent, text, response_ms, scenario, _, extra in answers:
        assert (intent, text) in replies
        assert scenario == SCENARIO and response_ms >= 500
        assert json.loads(extra)["message_id"] % 2 == 0  # answers are even in the demo's chats
    leads = [row for row in rows if row[0] == "lead_created"]
    assert leads and all(row[5].startswith("lead_tg_") for row in leads)
