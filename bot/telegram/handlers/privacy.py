"""/forget: an owner erases one client on their request (152-FZ), after confirming with a button."""

from __future__ import annotations

from enum import StrEnum

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.privacy import forget
from bot.settings import Settings
from bot.telegram.client_lookup import lookup_clients
from bot.telegram.filters import IsOwner
from reports.texts import client as client_texts
from reports.texts import privacy as texts
from reports.texts.html import escape_short
from storage.database import Database
from storage.timeline import load_card


class ForgetAction(StrEnum):
    CONFIRM = "y"
    CANCEL = "n"


class ForgetCallback(CallbackData, prefix="fg1"):
    action: ForgetAction
    client_id: int


def confirm_keyboard(client_id: int) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    builder.button(
        text=texts.FORGET_YES, callback_data=ForgetCallback(action=ForgetAction.CONFIRM, client_id=client_id)
    )
    builder.button(
        text=texts.FORGET_NO, callback_data=ForgetCallback(action=ForgetAction.CANCEL, client_id=client_id)
    )
    return builder.as_markup()


async def ask_forget(message: Message, command: CommandObject, db: Database, settings: Settings) -> None:
    """Find exactly one client and ask for confirmation; never erase on a guess."""
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.FORGET_USAGE)
        return
    async with db.sessions() as session:
        matches = await lookup_clients(session, query, settings.identity.default_region)
    if not matches:
        await message.answer(client_texts.NOT_FOUND)
    elif len(matches) > 1:
        await message.answer(texts.FORGET_AMBIGUOUS.format(count=len(matches)))
    else:
        title = escape_short(matches[0].title or f"#{matches[0].client_id}", 80)
        await message.answer(
            texts.FORGET_CONFIRM.format(title=title), reply_markup=confirm_keyboard(matches[0].client_id)
        )


async def confirm_forget(query: CallbackQuery, callback_data: ForgetCallback, db: Database) -> None:
    """Erase now; the audit log records that it was done, not what was erased."""
    await query.answer()
    if not isinstance(query.message, Message):
        return
    if callback_data.action is ForgetAction.CANCEL:
        await query.message.edit_text(texts.FORGET_CANCELLED)
        return
    async with db.sessions() as session:
        card = await load_card(session, callback_data.client_id)
    identity = next((values[0] for values in card.identities.values() if values), None) if card else None
    if identity is None:
        await query.message.edit_text(client_texts.GONE)
        return
    report = await forget(db, identity, owner_id=query.from_user.id)
    await query.message.edit_text(texts.FORGET_DONE.format(events=report.events))


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="privacy")
    router.message.filter(IsOwner())
    router.callback_query.filter(IsOwner())
    router.message.register(ask_forget, Command("forget"))
    router.callback_query.register(confirm_forget, ForgetCallback.filter(F.action.in_(list(ForgetAction))))
    return router
