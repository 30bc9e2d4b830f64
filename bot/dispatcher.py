"""Building the LeadTrail bot's dispatcher: routers in one place, dependencies as dispatcher data."""

from __future__ import annotations

from aiogram import Dispatcher

from bot.handlers import start, strangers
from bot.settings import Settings
from storage.database import Database


def build_dispatcher(settings: Settings, db: Database) -> Dispatcher:
    dispatcher = Dispatcher(settings=settings, db=db)
    # Owner routers first; whatever they do not take falls through to the strangers' refusal.
    dispatcher.include_routers(start.router, strangers.router)
    return dispatcher
