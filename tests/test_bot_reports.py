"""/report through the real aiogram stack: summary, album of real PNGs, period and section buttons."""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from PIL import Image

from bot.demo.generator import generate_demo_month
from bot.ingestion.validation import validate_items
from bot.telegram.views.reports import ReportAction, ReportCallback, Section
from tests.bot_harness import OWNER, STRANGER, BotHarness, bot_harness
from tests.test_demo_generator import month_events

MOSCOW = ZoneInfo("Europe/Moscow")


async def load_demo_month(harness: BotHarness) -> None:
    end = (datetime.now(MOSCOW) - timedelta(days=1)).date()
    events = await month_events(generate_demo_month(days=30, end=end, seed=7, zone=MOSCOW))
    validated = validate_items(events, MOSCOW)
    assert validated.errors == []
    await harness.writer.write(validated.rows)


def buttons(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


async def test_report_sends_summary_album_and_sections(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await load_demo_month(harness)
        api.send_private_message(OWNER, "/report 30d")
        [summary] = await api.wait_for("sendMessage", timeout=60)
        [album] = await api.wait_for("sendMediaGroup", timeout=60)
        text = summary.params["text"]
        assert "Отчёт за" in text and "Диалог → заявка" in text and "Причины отказов" in text
        assert "нет свободных вечерних слотов" in text
        assert len(text) <= 4096
        media = album.params["media"]
        assert len(media) == 4
        for item in media:
            picture = Image.open(io.BytesIO(album.attachment(item["media"])))
            assert picture.format == "PNG" and picture.size[0] >= 800
        for button in buttons(summary):
            assert len(button["callback_data"].encode()) <= 64

        ab = next(b for b in buttons(summary) if "A/B" in b["text"])
        api.press_button(OWNER, ab["callback_data"])
        channels = next(b for b in buttons(summary) if "Каналы" in b["text"])
        api.press_button(OWNER, channels["callback_data"])
        sent = await api.wait_for("sendMessage", count=3, timeout=60)
        sections = " ".join(call.params["text"] for call in sent[1:])
        assert "A/B сценариев" in sections and "v1" in sections and "v2" in sections
        assert "По каналам" in sections and "telegram" in sections

        week = next(b for b in buttons(summary) if b["text"] == "7 дней")
        api.press_button(OWNER, week["callback_data"])
        await api.wait_for("sendMediaGroup", count=2, timeout=60)


async def test_bad_period_is_explained_and_strangers_get_nothing(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        api.send_private_message(OWNER, "/report <вчера>")
        [answer] = await api.wait_for("sendMessage", timeout=30)
        assert "Не понял период «&lt;вчера&gt;»" in answer.params["text"]
        api.press_button(
            STRANGER, ReportCallback(action=ReportAction.SECTION, period="30d", section=Section.AB).pack()
        )
        api.send_private_message(STRANGER, "/report 30d")
        calls = await api.wait_for("sendMessage", count=2, timeout=30)
        assert calls[1].params["chat_id"] == STRANGER and "только владельцам" in calls[1].params["text"]
        assert api.calls_of("sendMediaGroup") == []
