"""/crm: the state of the Bitrix24 link for owners — on or off, last success, queued and failed jobs."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.bitrix24 import texts
from bot.filters import IsOwner
from bot.formatting import format_local
from bot.settings import Settings
from bot.telegram_text import escape_short, pack_lines
from storage.audit import record_action
from storage.crm_jobs import LinkStatus, link_status
from storage.database import Database


def render_status(status: LinkStatus, settings: Settings) -> list[str]:
    config = settings.bitrix24
    lines = [texts.HEADER, texts.ENABLED if config.enabled else texts.DISABLED]
    if config.enabled:
        lines.append(texts.INBOUND_ON if config.application_token else texts.INBOUND_OFF)
    when = format_local(status.last_success_at, settings.tz) if status.last_success_at else texts.NEVER
    lines.append(texts.LAST_SUCCESS.format(when=when))
    lines.append(texts.PENDING.format(count=status.pending))
    lines.append(texts.FAILED.format(count=status.failed))
    for failure in status.recent_failures:
        lines.append(
            texts.FAILED_ITEM.format(
                when=format_local(failure.at, settings.tz) if failure.at else "—",
                kind=texts.JOB_KINDS.get(failure.kind, escape_short(failure.kind, 32)),
                error=escape_short(failure.error, 200),
            )
        )
    return lines


async def show_crm(message: Message, db: Database, settings: Settings) -> None:
    assert message.from_user is not None
    await record_action(db.sessions, message.from_user.id, "crm")
    async with db.sessions() as session:
        status = await link_status(session)
    for chunk in pack_lines(render_status(status, settings)):
        await message.answer(chunk)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="crm")
    router.message.filter(IsOwner())
    router.message.register(show_crm, Command("crm"))
    return router
