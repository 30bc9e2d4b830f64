"""/crm: the state of the links for owners — Bitrix24 (on or off, last success, queued and failed jobs) and
YCLIENTS (webhooks, the last reconciliation and its error)."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.settings import Settings
from bot.telegram.filters import IsOwner
from bot.telegram.middlewares import audited
from reports.texts import crm as texts
from reports.texts import yclients as yclients_texts
from reports.texts.html import pack_lines
from storage.crm_jobs import link_status
from storage.database import Database
from storage.yclients import link_status as yclients_status


async def show_crm(message: Message, db: Database, settings: Settings) -> None:
    async with db.sessions() as session:
        status = await link_status(session)
        companies = await yclients_status(session)
    link = texts.LinkSettings(settings.bitrix24.enabled, settings.bitrix24.application_token is not None)
    config = settings.yclients
    setup = yclients_texts.YclientsSetup(
        config.webhook_token is not None, config.sync_enabled, config.sync_minutes
    )
    lines = texts.status_page(status, link, settings.tz)
    lines += ["", *yclients_texts.status_page(companies, setup, settings.tz)]
    for chunk in pack_lines(lines):
        await message.answer(chunk)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="crm")
    router.message.filter(IsOwner())
    router.message.register(show_crm, Command("crm"), flags=audited("crm"))
    return router
