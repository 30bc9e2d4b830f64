"""/client through the real aiogram stack: search, choice, card, pages, details, and strangers."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select

from bot.ingestion.validation import validate_items
from bot.telegram.client_lookup import timeline_page
from bot.telegram.views.clients import PAGE_SIZE, ClientAction, ClientCallback
from reports.texts import client as client_texts
from storage.models import OwnerAudit, StoredEvent
from storage.timeline import find_client_ids
from tests.bot_harness import OWNER, STRANGER, BotHarness, bot_harness

HOSTILE = "</b><script>alert(1)</script> & <i>‮RTL\u200b" + "о" * 5000


async def write(harness: BotHarness, *items: dict[str, Any]) -> None:
    validated = validate_items(list(items), ZoneInfo("Europe/Moscow"))
    assert validated.errors == []
    await harness.writer.write(validated.rows)


def event(user: str, minute: int, **fields: Any) -> dict[str, Any]:
    return {
        "timestamp": f"2025-03-01T10:{minute:02d}:00+03:00",
        "event": "message_received",
        "user_id": user,
        **fields,
    }


def buttons(call: Any) -> list[dict[str, Any]]:
    markup = call.params.get("reply_markup") or {}
    return [button for row in markup.get("inline_keyboard", []) for button in row]


async def test_client_card_timeline_pages_and_details(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        history = [
            event("tg_1", 0, name="Гульнара Сафина", message=HOSTILE, phone="+7 917 000-11-22", utm="vk")
        ]
        history += [
            event(
                "tg_1",
                n,
                event="assistant_response",
                assistant_response=f"Ответ {n}",
                intent="booking.request",
                confidence=0.9,
                response_time_ms=1500,
            )
            for n in range(1, 10)
        ]
        history += [
            event("tg_1", 20, event="lead_created", crm_id="BX_7", lead_id="L7"),
            event("tg_1", 21, event="appointment_booked", appointment_at="2025-03-02T19:00:00"),
            event("tg_1", 40, event="payment_status", status="paid", amount=1500),
        ]
        await write(harness, *history)

        api.send_private_message(OWNER, "/client гульнара")
        card, page = await api.wait_for("sendMessage", count=2, timeout=15)
        assert "Гульнара Сафина" in card.params["text"]
        assert "BX_7" in card.params["text"] and "79170001122" in card.params["text"]
        assert "пришёл и оплатил" in card.params["text"] and "1 500 ₽" in card.params["text"].replace(
            "\xa0", " "
        )
        text = page.params["text"]
        assert "страница 1 из 3" in text
        assert "&lt;/b&gt;&lt;script&gt;" in text and "<script>" not in text
        assert len(text) <= 4096
        assert text.count("\n\n") == PAGE_SIZE
        for button in buttons(page):
            assert len(button["callback_data"].encode()) <= 64

        next_button = next(b for b in buttons(page) if b["text"] == "▶️")
        api.press_button(OWNER, next_button["callback_data"])
        [edit] = await api.wait_for("editMessageText", timeout=15)
        assert "страница 2 из 3" in edit.params["text"]

        details = ClientCallback(action=ClientAction.DETAILS, client_id=1, page=0).pack()
        api.press_button(OWNER, details)
        async with harness.db.sessions() as session:
            expected_chunks = len(
                client_texts.details(await timeline_page(session, 1, 0), harness.settings.tz)
            )
        assert expected_chunks >= 2  # the 5,000-character message does not fit one message
        sent = await api.wait_for("sendMessage", count=2 + expected_chunks, timeout=15)
        detail_texts = " ".join(call.params["text"] for call in sent[2:])
        assert "utm" in detail_texts and "vk" in detail_texts
        assert all(len(call.params["text"]) <= 4096 for call in sent)

        journey = ClientCallback(action=ClientAction.JOURNEY, client_id=1).pack()
        api.press_button(OWNER, journey)
        [photo] = await api.wait_for("sendPhoto", timeout=30)
        assert next(iter(photo.files.values())).startswith(b"\x89PNG")

        async with harness.db.sessions() as session:
            audit = (await session.execute(select(OwnerAudit))).scalars().all()
        assert [(row.owner_id, row.action, row.details) for row in audit] == [(OWNER, "client", "гульнара")]


async def test_several_matches_offer_a_choice_and_unknown_says_not_found(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(harness, event("tg_1", 1, name="Айдар Галиев"), event("wa_2", 2, name="Айдар Хасанов"))
        api.send_private_message(OWNER, "/client айдар")
        [choice] = await api.wait_for("sendMessage", timeout=15)
        assert "несколько клиентов (2)" in choice.params["text"]
        assert {b["text"] for b in buttons(choice)} == {"Айдар Галиев", "Айдар Хасанов"}
        api.press_button(OWNER, buttons(choice)[0]["callback_data"])
        calls = await api.wait_for("sendMessage", count=3, timeout=15)
        assert "Айдар" in calls[1].params["text"]

        api.send_private_message(OWNER, "/client 100%_нет")
        calls = await api.wait_for("sendMessage", count=4, timeout=15)
        assert "не найден" in calls[3].params["text"]


async def test_strangers_get_nothing_from_commands_or_forged_buttons(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(harness, event("tg_1", 1, name="Секретный Клиент", message="личное"))
        api.send_private_message(STRANGER, "/client tg_1")
        forged = ClientCallback(action=ClientAction.PAGE, client_id=1, page=0).pack()
        api.press_button(STRANGER, forged)
        api.press_button(STRANGER, ClientCallback(action=ClientAction.DETAILS, client_id=1, page=0).pack())
        [refusal] = await api.wait_for("sendMessage", timeout=15)
        await api.wait_for("answerCallbackQuery", count=2, timeout=15)
        assert refusal.params["chat_id"] == STRANGER
        leaked = [
            call for call in api.calls if "Секретный" in str(call.params) or "личное" in str(call.params)
        ]
        assert leaked == []
        assert api.calls_of("editMessageText") == []


async def test_audit_lists_owner_actions(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        api.send_private_message(OWNER, "/client <b>кто-то</b>")
        await api.wait_for("sendMessage", timeout=15)
        api.send_private_message(OWNER, "/audit")
        calls = await api.wait_for("sendMessage", count=2, timeout=15)
        text = calls[1].params["text"]
        assert f"{OWNER} · /client" in text
        assert "&lt;b&gt;кто-то&lt;/b&gt;" in text


async def test_forget_asks_then_erases_and_audits_only_the_fact(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(
            harness, event("tg_9", 1, name="Тимур Гарипов", phone="+7 917 555-44-33", message="мой адрес")
        )
        api.send_private_message(OWNER, "/forget tg_9")
        [question] = await api.wait_for("sendMessage", timeout=30)
        assert "Тимур Гарипов" in question.params["text"] and "необратимо" in question.params["text"]
        yes = next(b for b in buttons(question) if b["text"] == "Удалить навсегда")
        api.press_button(STRANGER, yes["callback_data"])  # a stranger's press erases nothing
        api.press_button(OWNER, yes["callback_data"])
        [done] = await api.wait_for("editMessageText", timeout=30)
        assert "событий стёрто: 1" in done.params["text"]
        async with harness.db.sessions() as session:
            assert await find_client_ids(session, "tg_9") == []
            audit = (
                (await session.execute(select(OwnerAudit).where(OwnerAudit.action == "forget")))
                .scalars()
                .all()
            )
        assert [row.owner_id for row in audit] == [OWNER]
        assert "tg_9" not in (audit[0].details or "") and "Тимур" not in (audit[0].details or "")


async def test_card_shows_the_ai_cost_and_the_timeline_each_calls_model_and_tokens(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(
            harness,
            event("tg_5", 0, message="Сколько стоит стрижка?"),
            event(
                "tg_5",
                1,
                event="llm_call",
                model="yandexgpt-lite",
                input_tokens=1200,
                output_tokens=8,
                cost=0.24,
            ),
            event(
                "tg_5",
                2,
                event="assistant_response",
                assistant_response="1 500 ₽",
                model="yandexgpt-pro",
                input_tokens=900,
                output_tokens=40,
                cost=1.128,
            ),
            event("tg_5", 3, event="llm_call", model="no-price-yet", input_tokens=100, output_tokens=10),
        )
        api.send_private_message(OWNER, "/client tg_5")
        card, page = await api.wait_for("sendMessage", count=2, timeout=15)
        assert "Стоимость ИИ: 1,37\xa0₽ (вызовов модели: 3), ещё 1 без цены" in card.params["text"]
        timeline = page.params["text"]
        assert "🧠 Вызов модели" in timeline
        assert "yandexgpt-lite · 1\xa0200 → 8 ток. · 0,24\xa0₽" in timeline
        assert "yandexgpt-pro · 900 → 40 ток. · 1,13\xa0₽" in timeline
        assert "no-price-yet · 100 → 10 ток." in timeline


def test_a_page_of_the_longest_events_still_fits_one_message() -> None:
    zone = ZoneInfo("Europe/Moscow")
    for nasty in ('<&"' * 100, "ж" * 400, "a b " * 300):
        worst = StoredEvent(
            ts=datetime(2025, 3, 1, tzinfo=UTC),
            event=nasty,
            channel=nasty,
            message=nasty * 10,
            assistant_response=nasty * 10,
            intent=nasty,
            confidence=0.92,
            response_time_ms=2**53,
            model=nasty,
            input_tokens=2**53,
            output_tokens=2**53,
            cost=1e12,
            currency=nasty,
            extra={f"field_{n}": n for n in range(30)},
        )
        assert len(client_texts.timeline_page([worst] * PAGE_SIZE, 0, 10**6, zone)) <= 4096


async def test_the_card_says_which_field_joined_which_ids(tmp_path: Path) -> None:
    async with bot_harness(tmp_path) as harness:
        api = harness.api
        await write(
            harness,
            event("tg_mum", 1, name="Лейсан", phone="+7 (917) 555-12-34"),
            event("wa_<b>son</b>", 2, channel="whatsapp", phone="89175551234", crm_id="BX_5"),
            event("vk_son", 3, channel="vk", crm_id="BX_5"),
            event("tg_guest", 4, crm_id="0"),  # a placeholder joins nobody
        )
        api.send_private_message(OWNER, "/client 8 917 555 12 34")
        card, _ = await api.wait_for("sendMessage", count=2, timeout=15)
        lines = card.params["text"].split("\n")
        son = "<code>wa_&lt;b&gt;son&lt;/b&gt;</code>"
        assert f"🔗 <code>tg_mum</code>, {son} — по телефону <code>+79175551234</code>" in lines
        assert (
            "🔗 <code>wa_&lt;b&gt;son&lt;/b&gt;</code>, <code>vk_son</code> — по CRM <code>BX_5</code>"
            in lines
        )
        assert "tg_guest" not in card.params["text"]
