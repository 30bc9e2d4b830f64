"""/alerts through the real aiogram stack: rules with thresholds, and the mute button."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from bot.telegram.handlers.alerts import MuteCallback
from reports.alerts import RULES
from storage.alert_state import muted_rules
from tests.bot_harness import OWNER, STRANGER, bot_harness


async def test_alerts_lists_rules_and_mutes_one_for_a_day(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        api.send_private_message(OWNER, "/alerts")
        [answer] = await api.wait_for("sendMessage", timeout=30)
        text = answer.params["text"]
        for title in (
            "Конверсия диалог → заявка",
            "Неявки",
            "Скорость ответов ИИ",
            "Ошибки приёма событий",
            "Клиенты без ответа",
        ):
            assert title in text
        assert "p &lt; 0.01" in text
        assert "<b>Бюджет на ИИ</b> — бюджет не задан ([ai] monthly_budget)" in text
        assert "ждёт ответа дольше 10 мин, в рабочие часы 09:00-21:00" in text
        buttons = [b for row in answer.params["reply_markup"]["inline_keyboard"] for b in row]
        assert len(buttons) == len(RULES) and all(len(b["callback_data"].encode()) <= 64 for b in buttons)

        api.press_button(STRANGER, MuteCallback(rule="slow_ai").pack())
        api.press_button(OWNER, MuteCallback(rule="slow_ai").pack())
        answers = await api.wait_for("answerCallbackQuery", count=2, timeout=30)
        assert any("заглушено" in (call.params.get("text") or "") for call in answers)
        async with harness.db.sessions() as session:
            assert list(await muted_rules(session, datetime.now(UTC))) == ["slow_ai"]
