"""/audit: what the owners and staff asked the bot recently (who, what, when)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.settings import Settings
from bot.telegram.filters import IsOwner, is_staff
from bot.telegram.middlewares import audited
from reports.texts import audit as texts
from reports.texts.html import pack_lines
from storage.audit import recent_actions
from storage.database import Database

SHOWN = 30


async def show_audit(message: Message, db: Database, settings: Settings) -> None:
    """List the latest actions of owners and staff, newest first."""
    async with db.sessions() as session:
        actions = await recent_actions(session, SHOWN)
    lines = [texts.AUDIT_HEADER]
    for action in actions:
        lines.append(
            texts.action_line(
                action.at,
                action.owner_id,
                action.action,
                action.details,
                settings.tz,
                staff=is_staff(action.owner_id, settings),
            )
        )
    if not actions:
        lines.append(texts.AUDIT_EMPTY)
    for chunk in pack_lines(lines):
        await message.answer(chunk)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="audit")
    router.message.filter(IsOwner())
    router.message.register(show_audit, Command("audit"), flags=audited("audit"))
    return router
