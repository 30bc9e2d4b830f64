"""Hostile client content shown to owners through the real bot: /client, /report and its sections,
/search and the charts. The fake Bot API parses HTML as strictly as Telegram, so a broken escape is a
400 here; what the owner sees must equal the original text (shortening aside).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from PIL import Image

from bot.telegram.views.clients import ClientAction, ClientCallback
from bot.telegram.views.reports import ReportAction, ReportCallback, Section
from storage.search import SearchIndexer
from tests.bot_harness import OWNER, BotHarness, bot_harness
from tests.fake_bot_api import _visible_text
from tests.test_bot_clients import event, write

NAME = "\u202eАнна\u200b 💇‍♀️ <b>O'Neil"
REASON = "</b><i>дорого</i> & *bold* $x^2$"
INTENT = "<script>x</script>_it_ \\frac{a}"
LONG_WORD = "ж" * 5000
MESSAGE = "Хочу маникюрщицу </b><a href='x'>ссылка</a> `code` [md](u) \u200d\u200f🔥 $5 & 10% " + LONG_WORD
ANSWER = "<tg-spoiler>Секрет</tg-spoiler> &amp; &lt;b&gt; <pre>"


def seen(call: Any) -> str:
    """What the owner reads; invalid HTML would already have been a 400 from the fake."""
    assert call.ok, call.params
    return _visible_text(call.params.get("text") or call.params.get("caption") or "", "HTML")


async def hostile_history(harness: BotHarness) -> None:
    await write(
        harness,
        event("tg_h", 1, name=NAME, message=MESSAGE, channel="telegram", scenario="<b>v1</b>"),
        event(
            "tg_h",
            2,
            event="assistant_response",
            assistant_response=ANSWER,
            intent=INTENT,
            confidence=0.9,
            response_time_ms=1200,
            scenario="<b>v1</b>",
        ),
        event("tg_h", 3, event="refusal", reason=REASON),
        event("tg_h", 4, event="lead_created", lead_id="L<1>"),
        event("tg_k", 5, message="Здравствуйте", scenario="<i>v2</i> & co"),
    )


async def test_client_card_timeline_details_and_journey_show_hostile_text_intact(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await hostile_history(harness)
        api.send_private_message(OWNER, "/client tg_h")
        card, page = await api.wait_for("sendMessage", count=2, timeout=30)
        assert NAME in seen(card)
        timeline = seen(page)
        assert MESSAGE[:60] in timeline  # the preview is shortened, never broken
        assert ANSWER in timeline and INTENT in timeline and "L<1>" in seen(card) + timeline
        assert all(len(call.params["text"]) <= 4096 for call in (card, page))

        api.press_button(OWNER, ClientCallback(action=ClientAction.DETAILS, client_id=1, page=0).pack())
        await api.wait_for("sendMessage", count=4, timeout=30)
        details = api.calls_of("sendMessage")[2:]
        shown = "".join(seen(call) for call in details)
        assert all(len(call.params["text"]) <= 4096 for call in details)
        for original in (NAME, REASON, INTENT, ANSWER):
            assert original in shown, original
        assert shown.count("ж") >= len(LONG_WORD)  # the 5,000-letter word is split across messages, not lost

        api.press_button(OWNER, ClientCallback(action=ClientAction.JOURNEY, client_id=1).pack())
        [photo] = await api.wait_for("sendPhoto", timeout=60)
        assert Image.open(io.BytesIO(next(iter(photo.files.values())))).format == "PNG"


async def test_report_sections_and_charts_show_hostile_reasons_and_intents_intact(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await hostile_history(harness)
        api.send_private_message(OWNER, "/report 2025-03-01")
        [summary] = await api.wait_for("sendMessage", timeout=60)
        [album] = await api.wait_for("sendMediaGroup", timeout=60)
        assert REASON in seen(summary)
        for item in album.params["media"]:
            assert Image.open(io.BytesIO(album.attachment(item["media"]))).format == "PNG"

        for section in (Section.INTENTS, Section.REASONS, Section.AB):
            data = ReportCallback(action=ReportAction.SECTION, period="2025-03-01", section=section).pack()
            api.press_button(OWNER, data)
        sections = await api.wait_for("sendMessage", count=4, timeout=60)
        shown = " ".join(seen(call) for call in sections[1:])
        assert INTENT in shown and REASON in shown
        assert "<b>v1</b>" in shown and "<i>v2</i> & co" in shown


async def test_search_snippet_shows_hostile_text_escaped(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await hostile_history(harness)
        await SearchIndexer(harness.db).catch_up()
        api.send_private_message(OWNER, "/search маникюрщицу ссылка")
        [answer] = await api.wait_for("sendMessage", timeout=30)
        text = seen(answer)
        assert NAME in text
        assert "</b><a href='x'>ссылка</a> `code` [md](u)" in text
        assert len(answer.params["text"]) <= 4096
