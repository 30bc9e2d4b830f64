"""/client: find a client by any id or part of the name, then the card and the paged timeline. Owners and
staff use it (staff see no revenue); the follow-up lists open their clients' cards the same way."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardMarkup, Message, User

from bot.settings import Settings
from bot.telegram.client_lookup import client_ai_cost, client_view, lookup_clients, timeline_page
from bot.telegram.filters import STAFF_HIDDEN_FIELDS, IsTeam, is_staff
from bot.telegram.middlewares import audited
from bot.telegram.views.clients import (
    ClientAction,
    ClientCallback,
    choice_keyboard,
    timeline_keyboard,
)
from reports.charts import render_client_journey
from reports.drawing import drawn
from reports.texts import client as texts
from storage.chart_queries import client_journey
from storage.database import Database


async def send_client(
    message: Message,
    db: Database,
    settings: Settings,
    client_id: int,
    viewer: User,
    *,
    header: str | None = None,
    card_keyboard: InlineKeyboardMarkup | None = None,
) -> None:
    """The card (under ``header``, with ``card_keyboard``) and the first page of the timeline, as
    ``viewer`` may see them."""
    async with db.sessions() as session:
        view = await client_view(session, client_id)
        events = await timeline_page(session, client_id, 0) if view else []
        cost = await client_ai_cost(session, client_id, settings.ai.currency)
    if view is None:
        await message.answer(texts.GONE)
        return
    card = texts.card(
        view.card,
        view.channels,
        view.status,
        settings.tz,
        cost,
        show_paid=not is_staff(viewer.id, settings),
    )
    await message.answer(f"{header}\n\n{card}" if header else card, reply_markup=card_keyboard)
    await message.answer(
        texts.timeline_page(events, 0, view.pages, settings.tz),
        reply_markup=timeline_keyboard(client_id, 0, view.pages),
    )


async def find_client(
    message: Message, command: CommandObject, db: Database, settings: Settings, event_from_user: User
) -> None:
    """Look a client up and show them, or offer a choice when several match."""
    query = (command.args or "").strip()
    if not query:
        await message.answer(texts.USAGE)
        return
    async with db.sessions() as session:
        matches = await lookup_clients(session, query, settings.identity.default_region)
    if not matches:
        await message.answer(texts.NOT_FOUND)
    elif len(matches) == 1:
        await send_client(message, db, settings, matches[0].client_id, event_from_user)
    else:
        await message.answer(
            texts.CHOOSE.format(count=len(matches)),
            reply_markup=choice_keyboard([(match.client_id, match.title) for match in matches]),
        )


async def open_client(
    query: CallbackQuery, callback_data: ClientCallback, db: Database, settings: Settings
) -> None:
    """Open the client chosen from several matches or from /search."""
    await query.answer()
    if isinstance(query.message, Message):
        await send_client(query.message, db, settings, callback_data.client_id, query.from_user)


async def turn_page(
    query: CallbackQuery, callback_data: ClientCallback, db: Database, settings: Settings
) -> None:
    """Show another page of the timeline in the same message."""
    async with db.sessions() as session:
        view = await client_view(session, callback_data.client_id)
        page = min(max(callback_data.page, 0), view.pages - 1) if view else 0
        events = await timeline_page(session, callback_data.client_id, page) if view else []
    if view is None or not isinstance(query.message, Message):
        await query.answer(texts.GONE)
        return
    await query.answer()
    await query.message.edit_text(
        texts.timeline_page(events, page, view.pages, settings.tz),
        reply_markup=timeline_keyboard(callback_data.client_id, page, view.pages),
    )


async def show_details(
    query: CallbackQuery, callback_data: ClientCallback, db: Database, settings: Settings
) -> None:
    """Every field of the events on this page, extras included (staff do not see amounts)."""
    async with db.sessions() as session:
        events = await timeline_page(session, callback_data.client_id, callback_data.page)
    await query.answer()
    if not events or not isinstance(query.message, Message):
        return
    hidden = STAFF_HIDDEN_FIELDS if is_staff(query.from_user.id, settings) else frozenset()
    for chunk in texts.details(events, settings.tz, hidden):
        await query.message.answer(chunk)


async def show_journey(
    query: CallbackQuery, callback_data: ClientCallback, db: Database, settings: Settings
) -> None:
    """The client's journey on a time axis, as a picture."""
    await query.answer()
    async with db.sessions() as session:
        journey = await client_journey(session, callback_data.client_id, settings.tz)
    if not journey.events or not isinstance(query.message, Message):
        return
    picture = await drawn(render_client_journey, journey)
    await query.message.answer_photo(BufferedInputFile(picture, filename="journey.png"))


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="clients")
    router.message.filter(IsTeam())
    router.callback_query.filter(IsTeam())
    router.message.register(find_client, Command("client"), flags=audited("client"))
    router.callback_query.register(
        open_client,
        ClientCallback.filter(F.action == ClientAction.CARD),
        flags=audited("client.open", lambda data: str(data["callback_data"].client_id)),
    )
    router.callback_query.register(turn_page, ClientCallback.filter(F.action == ClientAction.PAGE))
    router.callback_query.register(show_details, ClientCallback.filter(F.action == ClientAction.DETAILS))
    router.callback_query.register(show_journey, ClientCallback.filter(F.action == ClientAction.JOURNEY))
    return router
