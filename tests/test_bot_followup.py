"""/followup through the real aiogram stack against the fake Bot API: the lists, their buttons, the
client's card, «Обработано» and what puts an item back; staff's access and the owner's /audit."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.telegram.views.followup import FollowupAction, FollowupCallback
from reports.texts import commands as command_texts
from reports.texts import followup as texts
from storage.followup_items import ListKind
from storage.models import FollowupMark, OwnerAudit
from storage.timeline import find_client_ids
from tests.bot_harness import OWNER, BotHarness, bot_harness
from tests.fake_bot_api import FakeBotAPI
from tests.followup_data import followup_events
from tests.test_bot_clients import buttons, write

MOSCOW = ZoneInfo("Europe/Moscow")
STAFF = 3003
NAMES = {
    ListKind.UNANSWERED: ["Алсу Ждущая"],
    ListKind.LEADS_WITHOUT_BOOKING: ["Лейла Заявкина"],
    ListKind.NO_SHOWS: ["Нина Непришедшая"],
    ListKind.REPEAT_DUE: ["Регина Постоянная", "yc_payer"],
}


def holder(api: FakeBotAPI, chat_id: int, data: str) -> int:
    """The id of the newest bot message in the chat that carries a button with this callback data."""
    for (chat, message_id), message in sorted(api._messages.items(), reverse=True):
        markup = message.get("reply_markup") or {}
        if chat == chat_id and any(
            button.get("callback_data") == data for row in markup.get("inline_keyboard", []) for button in row
        ):
            return message_id
    raise AssertionError(f"no message in chat {chat_id} has a button {data!r}")


def press(api: FakeBotAPI, user: int, data: str) -> None:
    api.press_button(user, data, message_id=holder(api, user, data))


def list_button(kind: ListKind) -> str:
    return FollowupCallback(action=FollowupAction.LIST, kind=kind).pack()


def item_names(text: str) -> list[str]:
    """The clients of a /followup page, as its numbered lines show them."""
    return [line.split("<b>", 1)[1].split("</b>", 1)[0] for line in text.splitlines() if ". <b>" in line]


async def client_id(harness: BotHarness, user_id: str) -> int:
    async with harness.db.sessions() as session:
        [found] = await find_client_ids(session, user_id)
    return found


async def test_lists_cards_handled_and_back(tmp_path: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(harness, *followup_events(datetime.now(MOSCOW)))

        api.send_private_message(OWNER, "/followup")
        [first] = await api.wait_for("sendMessage", timeout=30)
        text = first.params["text"]
        assert "💬 Без ответа: 1 · 📝 Заявки без записи: 1 · 🚫 Неявки без новой записи: 1" in text
        assert "🔁 Пора позвать снова: 2" in text
        assert item_names(text) == NAMES[ListKind.UNANSWERED]  # the first list with anyone on it
        assert "ждёт ответа 1\xa0ч" in text
        assert all(len(button["callback_data"].encode()) <= 64 for button in buttons(first))

        edits = 0
        for kind, names in NAMES.items():
            press(api, OWNER, list_button(kind))
            edits += 1
            page = (await api.wait_for("editMessageText", count=edits, timeout=30))[-1]
            assert item_names(page.params["text"]) == names, kind

        # The lead's card from its list: why, who, and «Обработано».
        press(api, OWNER, list_button(ListKind.LEADS_WITHOUT_BOOKING))
        await api.wait_for("editMessageText", count=edits + 1, timeout=30)
        lead = await client_id(harness, "tg_lead")
        opened = FollowupCallback(
            action=FollowupAction.OPEN, kind=ListKind.LEADS_WITHOUT_BOOKING, client_id=lead
        )
        press(api, OWNER, opened.pack())
        card, timeline = (await api.wait_for("sendMessage", count=3, timeout=30))[1:]
        assert card.params["text"].startswith("<b>📝 Заявки без записи</b>: заявка ")
        assert "Лейла Заявкина" in card.params["text"] and "79171000002" in card.params["text"]
        [done] = buttons(card)
        assert done["text"] == texts.BUTTON_DONE
        assert "Лента событий" in timeline.params["text"]

        press(api, OWNER, done["callback_data"])
        [cleared] = await api.wait_for("editMessageReplyMarkup", timeout=30)
        assert not cleared.params.get("reply_markup")
        assert any(call.params.get("text") == texts.DONE for call in api.calls_of("answerCallbackQuery"))
        press(api, OWNER, list_button(ListKind.LEADS_WITHOUT_BOOKING))
        after = (await api.wait_for("editMessageText", count=edits + 2, timeout=30))[-1].params["text"]
        assert item_names(after) == [] and texts.EMPTY in after
        assert "📝 Заявки без записи: 0" in after

        # The client writes again: the lead is back on its list.
        await write(
            harness,
            {
                "timestamp": datetime.now(MOSCOW).isoformat(),
                "event": "message_received",
                "user_id": "tg_lead",
                "message": "Так что со стрижкой?",
            },
        )
        press(api, OWNER, list_button(ListKind.LEADS_WITHOUT_BOOKING))
        back = (await api.wait_for("editMessageText", count=edits + 3, timeout=30))[-1].params["text"]
        assert item_names(back) == ["Лейла Заявкина"]

        async with harness.db.sessions() as session:
            [mark] = (await session.execute(select(FollowupMark))).scalars()
            audit = (await session.execute(select(OwnerAudit).order_by(OwnerAudit.id))).scalars().all()
        assert (mark.client_id, mark.list_kind, mark.handled_by) == (lead, "leads_without_booking", OWNER)
        assert mark.handled_at <= datetime.now(UTC)
        assert [(row.action, row.details) for row in audit] == [
            ("followup", None),
            ("followup.open", f"leads_without_booking #{lead}"),
            ("followup.done", f"leads_without_booking #{lead}"),
        ]
    # The lists carry names, ids and phones; the log none of them (as for /client).
    assert caplog.records and not any(
        secret in caplog.text for secret in ("Алсу", "Лейла", "tg_wait", "tg_lead", "9171000001", "маникюр")
    )


async def test_staff_work_the_lists_and_nothing_else(tmp_path: Any) -> None:
    async with bot_harness(tmp_path, staff=[STAFF]) as harness:
        api = harness.api
        await write(harness, *followup_events(datetime.now(MOSCOW)))

        api.send_private_message(STAFF, "/followup")
        api.send_private_message(STAFF, "/report")
        api.send_private_message(STAFF, "/export")
        answers = await api.wait_for("sendMessage", count=3, timeout=30)
        by_text = {call.params["text"].split("\n", 1)[0]: call for call in answers}
        assert any(line.startswith("📋 <b>Кому ответить и позвонить</b>") for line in by_text)
        assert [call.params["text"] for call in answers].count(command_texts.STAFF_REFUSAL) == 2
        assert api.calls_of("sendMediaGroup") == [] and api.calls_of("sendDocument") == []

        # The payer's card: staff do not see what they paid; the owner does.
        payer = await client_id(harness, "yc_payer")
        press(api, STAFF, list_button(ListKind.REPEAT_DUE))
        await api.wait_for("editMessageText", timeout=30)
        opened = FollowupCallback(
            action=FollowupAction.OPEN, kind=ListKind.REPEAT_DUE, client_id=payer
        ).pack()
        press(api, STAFF, opened)
        staff_card = (await api.wait_for("sendMessage", count=5, timeout=30))[3]
        assert "последняя оплата" in staff_card.params["text"] and "Оплачено" not in staff_card.params["text"]

        [done] = buttons(staff_card)
        press(api, STAFF, done["callback_data"])
        await api.wait_for("editMessageReplyMarkup", timeout=30)

        api.send_private_message(OWNER, "/client yc_payer")
        owner_card = (await api.wait_for("sendMessage", count=7, timeout=30))[5]
        assert "Оплачено: 2\xa0500\xa0₽" in owner_card.params["text"]
        api.send_private_message(OWNER, "/audit")
        audit = (await api.wait_for("sendMessage", count=8, timeout=30))[7].params["text"]
        assert f"{STAFF} (администратор) · /followup.done <code>repeat_due #{payer}</code>" in audit
        assert f"{STAFF} (администратор) · /report" not in audit
