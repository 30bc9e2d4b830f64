"""/audit: what the owners asked the bot recently (who, what, when)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.filters import IsOwner
from bot.settings import Settings
from reports.texts import audit as texts
from reports.texts.html import pack_lines
from storage.audit import recent_actions, record_action
from storage.database import Database

SHOWN = 30


async def show_audit(message: Message, db: Database, settings: Settings) -> None:
    """List the latest owner actions, newest first."""
    assert message.from_user is not None
    await record_action(db.sessions, message.from_user.id, "audit")
    async with db.sessions() as session:
        actions = await recent_actions(session, SHOWN)
    lines = [texts.AUDIT_HEADER]
    for action in actions:
        lines.append(
            texts.action_line(action.at, action.owner_id, action.action, action.details, settings.tz)
        )
    if not actions:
        lines.append(texts.AUDIT_EMPTY)
    for chunk in pack_lines(lines):
        await message.answer(chunk)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="audit")
    router.message.filter(IsOwner())
    router.message.register(show_audit, Command("audit"))
    return router
