"""Every owner path tried by a stranger: commands and buttons found in the real routers, inline mode,
channel posts and group messages. The stranger learns nothing and changes nothing.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import orjson
from aiogram import Dispatcher
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData, CallbackQueryFilter
from aiogram.types import BotCommand
from sqlalchemy import func, select

from bot.settings import Settings
from bot.telegram.dispatcher import build_dispatcher
from reports.alerts import RULES
from reports.texts import commands as texts
from reports.texts.report import PERIOD_BUTTONS
from storage.alert_state import muted_rules
from storage.database import Database
from storage.models import OwnerAudit, StoredEvent
from storage.writer import EventWriter
from tests.bot_harness import OWNER, STRANGER, bot_harness
from tests.test_bot_clients import event, write

SECRET_NAME, SECRET_TEXT, SECRET_PHONE = "Секретная Клиентка", "тайное сообщение", "+7 917 123-45-67"
EVENT_CHANNEL, FOREIGN_CHANNEL = -1001111111111, -1002222222222
QUIET_METHODS = {"getMe", "getUpdates", "setMyCommands", "deleteWebhook", "getMyCommands", "deleteMyCommands"}


def _dispatcher(tmp_path: Path) -> Dispatcher:
    settings = Settings(database={"url": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"})
    return build_dispatcher(settings, Database.__new__(Database), EventWriter.__new__(EventWriter))


def owner_commands(dispatcher: Dispatcher) -> set[str]:
    """Every command any router answers, read from the handlers' filters."""
    found: set[str] = set()
    for router in dispatcher.chain_tail:
        for handler in router.message.handlers:
            for flt in handler.filters or []:
                if isinstance(flt.callback, Command):
                    for command in flt.callback.commands:
                        if isinstance(command, str):
                            found.add(command)
                        elif isinstance(command, BotCommand):
                            found.add(command.command)
    return found


def _candidates(annotation: Any) -> list[Any]:
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return list(annotation)
    if annotation is int:
        return [1, 0, -1, 2**31]
    return ["", "tg_1", "7d", "yesterday", *RULES, *PERIOD_BUTTONS]


def forged_callbacks(dispatcher: Dispatcher) -> dict[str, list[str]]:
    """For each callback handler, packed data that passes its filter (so the forgery reaches the door)."""
    forged: dict[str, list[str]] = {}
    for router in dispatcher.chain_tail:
        for handler in router.callback_query.handlers:
            for flt in handler.filters or []:
                if not isinstance(flt.callback, CallbackQueryFilter):
                    continue
                data_class: type[CallbackData] = flt.callback.callback_data
                fields = data_class.model_fields
                combos = itertools.product(*(_candidates(info.annotation) for info in fields.values()))
                instances = [data_class(**dict(zip(fields, combo, strict=True))) for combo in combos]
                rule = flt.callback.rule
                passing = [item.pack() for item in instances if rule is None or rule.resolve(item)]
                # A few per door is enough: the owner filter does not look at the data.
                forged[f"{router.name}.{handler.callback.__name__}"] = passing[:: max(len(passing) // 3, 1)][
                    :3
                ]
    return forged


def test_routers_expose_the_commands_and_buttons_the_stranger_test_tries(tmp_path: Path) -> None:
    dispatcher = _dispatcher(tmp_path)
    assert {"client", "report", "search", "alerts", "audit", "forget", "start", "help"} <= owner_commands(
        dispatcher
    )
    forged = forged_callbacks(dispatcher)
    assert len(forged) >= 8
    assert all(forged.values()), [name for name, data in forged.items() if not data]


async def test_a_stranger_gets_no_data_through_any_path(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, event_channel_id=EVENT_CHANNEL) as harness:
        api = harness.api
        await write(harness, event("tg_1", 1, name=SECRET_NAME, message=SECRET_TEXT, phone=SECRET_PHONE))
        dispatcher = _dispatcher(tmp_path)
        commands = sorted(owner_commands(dispatcher))
        for command in commands:
            api.send_private_message(STRANGER, f"/{command} tg_1")
        refusals = await api.wait_for("sendMessage", count=len(commands), timeout=30)
        assert {call.params["chat_id"] for call in refusals} == {STRANGER}
        assert {call.params["text"] for call in refusals} == {texts.STRANGER_REFUSAL}

        presses = [data for datas in forged_callbacks(dispatcher).values() for data in datas]
        for data in presses:
            api.press_button(STRANGER, data)
        answers = await api.wait_for("answerCallbackQuery", count=len(presses), timeout=60)
        assert all(not call.params.get("text") for call in answers)

        # Inline mode: nobody may list clients by typing @bot tg_1 anywhere.
        api.push_update(
            {
                "inline_query": {
                    "id": "77",
                    "from": api._user(STRANGER, "Чужой", None),
                    "query": "tg_1",
                    "offset": "",
                }
            }
        )
        # A JSON event in a channel that is not the event channel, and a command in a group.
        foreign = {"timestamp": "2025-03-01T10:00:00+03:00", "event": "message_received", "user_id": "spy"}
        api.post_in_channel(FOREIGN_CHANNEL, orjson.dumps(foreign).decode(), title="Чужой канал")
        api.send_private_message(
            STRANGER, "/client tg_1", chat={"id": -100333, "type": "supergroup", "title": "Группа"}
        )
        api.send_private_message(STRANGER, "/start")  # a marker: everything before it has been handled
        await api.wait_for("sendMessage", count=len(commands) + 1, timeout=30)

        assert [call.params for call in api.calls_of("answerInlineQuery") if call.params.get("results")] == []
        talk = [call for call in api.calls if call.method not in QUIET_METHODS]
        assert {call.method for call in talk} <= {"sendMessage", "answerCallbackQuery"}
        assert {call.params.get("chat_id") for call in api.calls_of("sendMessage")} == {STRANGER}
        for call in talk:
            shown = str(call.params)
            assert SECRET_NAME not in shown and SECRET_TEXT not in shown
            assert "79171234567" not in shown and SECRET_PHONE not in shown
        async with harness.db.sessions() as session:
            assert (await session.execute(select(func.count()).select_from(OwnerAudit))).scalar_one() == 0
            users = set((await session.execute(select(StoredEvent.user_id))).scalars())
        assert users == {"tg_1"}  # nothing forgotten, nothing taken from the foreign channel

        # The owner, by contrast, gets the card: the data was there to be leaked.
        api.send_private_message(OWNER, "/client tg_1")
        await api.wait_for("sendMessage", count=len(commands) + 3, timeout=30)
        assert SECRET_NAME in api.calls_of("sendMessage")[-2].params["text"]


STAFF = 3003
STAFF_COMMANDS = {"followup", "client", "search", "start", "help"}
STAFF_ACTIONS = {"followup", "followup.open", "followup.done", "client", "client.open", "search"}


async def test_staff_get_the_lists_cards_and_search_and_nothing_else(tmp_path: Path) -> None:
    async with bot_harness(tmp_path, staff=[STAFF]) as harness:
        api = harness.api
        paid = event("tg_1", 2, event="payment_status", status="paid", amount=4321)
        await write(harness, event("tg_1", 1, name=SECRET_NAME, message=SECRET_TEXT), paid)
        dispatcher = _dispatcher(tmp_path)
        commands = sorted(owner_commands(dispatcher))
        for command in commands:
            api.send_private_message(STAFF, f"/{command} tg_1")
        # /client answers with the card and the timeline; every other command with one message.
        answers = await api.wait_for("sendMessage", count=len(commands) + 1, timeout=60)
        refused = [call for call in answers if call.params["text"] == texts.STAFF_REFUSAL]
        assert len(refused) == len(set(commands) - STAFF_COMMANDS)
        assert any(SECRET_NAME in call.params["text"] for call in answers)  # the card: staff may see it

        presses = [data for datas in forged_callbacks(dispatcher).values() for data in datas]
        for data in presses:
            api.press_button(STAFF, data)
        await api.wait_for("answerCallbackQuery", count=len(presses), timeout=60)

        # A marker: once its answer is in, everything sent before it has been handled.
        def helps() -> int:
            return sum(call.params.get("text") == texts.STAFF_HELP for call in api.calls_of("sendMessage"))

        before = helps()
        api.send_private_message(STAFF, "/start")
        while helps() == before:
            await api.wait_for("sendMessage", count=len(api.calls_of("sendMessage")) + 1, timeout=60)

        staff_calls = [call for call in api.calls if call.params.get("chat_id") == STAFF]
        assert {call.method for call in staff_calls} <= {
            "sendMessage",
            "editMessageText",
            "editMessageReplyMarkup",
            "sendPhoto",  # the client's journey, part of /client
        }
        for call in staff_calls:
            shown = str(call.params)
            assert "Оплачено" not in shown and "4321" not in shown and "4\xa0321" not in shown
        async with harness.db.sessions() as session:
            actions = set((await session.execute(select(OwnerAudit.action))).scalars())
            users = set((await session.execute(select(StoredEvent.user_id))).scalars())
        assert actions <= STAFF_ACTIONS and "client" in actions
        assert users == {"tg_1"}  # nothing forgotten
        async with harness.db.sessions() as session:
            assert await muted_rules(session, datetime.now(UTC)) == {}
