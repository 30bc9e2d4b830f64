"""/audit: what the owners asked the bot recently (who, what, when)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot import texts
from bot.filters import IsOwner
from bot.formatting import format_local
from bot.settings import Settings
from bot.telegram_text import escape_short, pack_lines
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
        details = f" <code>{escape_short(action.details, 80)}</code>" if action.details else ""
        when = format_local(action.at, settings.tz)
        lines.append(f"{when} · {action.owner_id} · /{escape_short(action.action, 64)}{details}")
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
