"""/client: find a client by any id or part of the name, then the card and the paged timeline."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BufferedInputFile, CallbackQuery, Message

from bot.settings import Settings
from bot.telegram.client_lookup import client_view, lookup_clients, timeline_page
from bot.telegram.filters import IsOwner
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


async def _send_client(message: Message, db: Database, settings: Settings, client_id: int) -> None:
    async with db.sessions() as session:
        view = await client_view(session, client_id)
        events = await timeline_page(session, client_id, 0) if view else []
    if view is None:
        await message.answer(texts.GONE)
        return
    await message.answer(texts.card(view.card, view.channels, view.status, settings.tz))
    await message.answer(
        texts.timeline_page(events, 0, view.pages, settings.tz),
        reply_markup=timeline_keyboard(client_id, 0, view.pages),
    )


async def find_client(message: Message, command: CommandObject, db: Database, settings: Settings) -> None:
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
        await _send_client(message, db, settings, matches[0].client_id)
    else:
        await message.answer(
            texts.CHOOSE.format(count=len(matches)),
            reply_markup=choice_keyboard([(match.client_id, match.title) for match in matches]),
        )


async def open_client(
    query: CallbackQuery, callback_data: ClientCallback, db: Database, settings: Settings
) -> None:
    """Open the client the owner chose from several matches."""
    await query.answer()
    if isinstance(query.message, Message):
        await _send_client(query.message, db, settings, callback_data.client_id)


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
    """Every field of the events on this page, extras included."""
    async with db.sessions() as session:
        events = await timeline_page(session, callback_data.client_id, callback_data.page)
    await query.answer()
    if not events or not isinstance(query.message, Message):
        return
    for chunk in texts.details(events, settings.tz):
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
    router.message.filter(IsOwner())
    router.callback_query.filter(IsOwner())
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
