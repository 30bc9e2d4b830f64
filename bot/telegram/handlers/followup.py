"""/followup: who to answer now and who to call today, for owners and staff.

The four lists with their counts, a page at a time; each client opens their card, where «Обработано» takes
the item off its list until the client's next event. Who marked what is in the audit log (/audit) and in
the mark itself.
"""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.types import CallbackQuery, Message

from bot.settings import Settings
from bot.telegram.filters import IsTeam
from bot.telegram.handlers.clients import send_client
from bot.telegram.middlewares import audited
from bot.telegram.views.followup import (
    PAGE_SIZE,
    FollowupAction,
    FollowupCallback,
    card_keyboard,
    lists_keyboard,
    pages,
)
from reports.followup import FollowupLists
from reports.followup_check import followup_at
from reports.texts import followup as texts
from storage.database import Database
from storage.followup_items import ListKind
from storage.followup_queries import mark_handled


async def _lists(db: Database, settings: Settings) -> FollowupLists:
    return await followup_at(db.sessions, datetime.now(UTC), settings.followup)


def _first_waiting(lists: FollowupLists) -> ListKind:
    """The first list with anyone on it, so the first screen is never an empty one when work waits."""
    return next((kind for kind, items in lists if items), ListKind.UNANSWERED)


def _page(lists: FollowupLists, kind: ListKind, page: int, settings: Settings) -> tuple[str, int]:
    """The text of a page (clamped to the pages there are) and that page's number."""
    count = pages(len(lists.lists.get(kind, ())))
    page = min(max(page, 0), count - 1)
    return texts.page(lists, kind, page, count, PAGE_SIZE, settings.tz), page


async def _unless_unchanged(edit: Awaitable[object]) -> None:
    """Edit a message; pressing what is already shown changes nothing, which Telegram refuses as an edit."""
    try:
        await edit
    except TelegramBadRequest as exc:
        if "message is not modified" not in exc.message:
            raise


async def _send_lists(message: Message, db: Database, settings: Settings) -> None:
    lists = await _lists(db, settings)
    kind = _first_waiting(lists)
    text, page = _page(lists, kind, 0, settings)
    await message.answer(text, reply_markup=lists_keyboard(lists, kind, page))


async def show_lists(message: Message, db: Database, settings: Settings) -> None:
    """The four lists' counts and the first page of the first list with anyone on it."""
    await _send_lists(message, db, settings)


async def _under_button(query: CallbackQuery) -> Message | None:
    """Close the button's spinner; the message the button sits under, while Telegram still has it."""
    await query.answer()
    return query.message if isinstance(query.message, Message) else None


async def show_lists_again(query: CallbackQuery, db: Database, settings: Settings) -> None:
    """The lists in a new message, from the morning report's or an alert's button."""
    if (message := await _under_button(query)) is not None:
        await _send_lists(message, db, settings)


async def switch_list(
    query: CallbackQuery, callback_data: FollowupCallback, db: Database, settings: Settings
) -> None:
    """Another list or page, in the same message."""
    if (message := await _under_button(query)) is None:
        return
    lists = await _lists(db, settings)
    text, page = _page(lists, callback_data.kind, callback_data.page, settings)
    await _unless_unchanged(
        message.edit_text(text, reply_markup=lists_keyboard(lists, callback_data.kind, page))
    )


async def open_item(
    query: CallbackQuery, callback_data: FollowupCallback, db: Database, settings: Settings
) -> None:
    """The client's card under why they are on the list, with «Обработано»; without it once they are not."""
    if (message := await _under_button(query)) is None:
        return
    lists = await _lists(db, settings)
    item = lists.find(callback_data.kind, callback_data.client_id)
    if item is None:
        header, keyboard = texts.not_in_list(callback_data.kind), None
    else:
        header = texts.card_header(item, lists.now, settings.tz)
        keyboard = card_keyboard(item.kind, item.client_id)
    await send_client(
        message,
        db,
        settings,
        callback_data.client_id,
        query.from_user,
        header=header,
        card_keyboard=keyboard,
    )


async def mark_done(
    query: CallbackQuery, callback_data: FollowupCallback, db: Database, settings: Settings
) -> None:
    """«Обработано»: the item leaves its list until the client's next event; the button goes away."""
    lists = await _lists(db, settings)
    item = lists.find(callback_data.kind, callback_data.client_id)
    if item is None:
        await query.answer(texts.not_in_list(callback_data.kind), show_alert=True)
    else:
        async with db.sessions() as session, session.begin():
            mark_handled(
                session,
                item.client_id,
                item.kind,
                since=item.since,
                at=datetime.now(UTC),
                by=query.from_user.id,
            )
        await query.answer(texts.DONE)
    if isinstance(query.message, Message):
        await _unless_unchanged(query.message.edit_reply_markup(reply_markup=None))


def _item_details(data: dict[str, Any]) -> str:
    """Which item: the list and the client's number (never their name)."""
    callback: FollowupCallback = data["callback_data"]
    return f"{callback.kind} #{callback.client_id}"


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="followup")
    router.message.filter(IsTeam())
    router.callback_query.filter(IsTeam())
    router.message.register(show_lists, Command("followup"), flags=audited("followup"))
    router.callback_query.register(
        show_lists_again,
        FollowupCallback.filter(F.action == FollowupAction.SHOW),
        flags=audited("followup"),
    )
    router.callback_query.register(switch_list, FollowupCallback.filter(F.action == FollowupAction.LIST))
    router.callback_query.register(
        open_item,
        FollowupCallback.filter(F.action == FollowupAction.OPEN),
        flags=audited("followup.open", _item_details),
    )
    router.callback_query.register(
        mark_done,
        FollowupCallback.filter(F.action == FollowupAction.DONE),
        flags=audited("followup.done", _item_details),
    )
    return router
