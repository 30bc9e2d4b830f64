"""Building the LeadTrail bot's dispatcher: routers in one place, dependencies as dispatcher data."""

from __future__ import annotations

from aiogram import Dispatcher

from bot.handlers import alerts, audit, clients, privacy, reports, search, start, strangers, transport
from bot.handlers import crm as crm_handlers
from bot.handlers import export as export_handlers
from bot.notify import NoticeThrottle
from bot.settings import Settings
from bot.telegram_sources import TelegramSourceService
from storage.database import Database
from storage.writer import EventWriter


def build_dispatcher(settings: Settings, db: Database, writer: EventWriter) -> Dispatcher:
    sources = TelegramSourceService(
        settings, writer, NoticeThrottle(settings.telegram.notice_interval_minutes * 60)
    )
    dispatcher = Dispatcher(settings=settings, db=db, writer=writer, sources=sources)
    # Sources first (a source may also be an owner), then owners; the rest gets the strangers' refusal.
    dispatcher.include_routers(
        transport.create_router(),
        clients.create_router(),
        reports.create_router(),
        alerts.create_router(),
        privacy.create_router(),
        audit.create_router(),
        search.create_router(),
        export_handlers.create_router(),
        crm_handlers.create_router(),
        start.create_router(),
        strangers.create_router(),
    )
    return dispatcher
