"""Building the LeadTrail bot's dispatcher: routers in one place, dependencies as dispatcher data."""

from __future__ import annotations

from aiogram import Dispatcher, Router

from bot.ingestion import telegram_router
from bot.ingestion.telegram_sources import TelegramSourceService
from bot.notify import NoticeThrottle
from bot.settings import Settings
from bot.telegram.errors import on_error
from bot.telegram.handlers import (
    alerts,
    clients,
    followup,
    privacy,
    reports,
    search,
    start,
    strangers,
)
from bot.telegram.handlers import audit as audit_handlers
from bot.telegram.handlers import crm as crm_handlers
from bot.telegram.handlers import export as export_handlers
from bot.telegram.middlewares import AuditMiddleware
from storage.database import Database
from storage.writer import EventWriter


def owners_router() -> Router:
    """The owners' and staff's commands under one router: the audit middleware and the error handler
    apply to all. Each feature's router lets in whom it serves; staff end at the staff router."""
    router = Router(name="owners")
    audit = AuditMiddleware()
    router.message.middleware(audit)
    router.callback_query.middleware(audit)
    router.errors.register(on_error)
    router.include_routers(
        clients.create_router(),
        reports.create_router(),
        alerts.create_router(),
        privacy.create_router(),
        audit_handlers.create_router(),
        search.create_router(),
        export_handlers.create_router(),
        crm_handlers.create_router(),
        followup.create_router(),
        start.create_router(),
        start.create_staff_router(),
    )
    return router


def build_dispatcher(settings: Settings, db: Database, writer: EventWriter) -> Dispatcher:
    sources = TelegramSourceService(
        settings, writer, NoticeThrottle(settings.telegram.notice_interval_minutes * 60)
    )
    dispatcher = Dispatcher(settings=settings, db=db, writer=writer, sources=sources)
    # Sources first (a source may also be an owner), then owners; the rest gets the strangers' refusal.
    dispatcher.include_routers(
        telegram_router.create_router(),
        owners_router(),
        strangers.create_router(),
    )
    return dispatcher
