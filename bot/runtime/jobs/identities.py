"""The owners hear once about each value that stopped linking (shared by too many user ids): something
upstream sends the same id for different people, and only they can get it fixed."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from bot.runtime.owner_outbox import enqueue_for_owners
from bot.settings import Settings
from reports.texts import identities as texts
from storage.database import Database
from storage.shared_identities import claim_unannounced

logger = logging.getLogger(__name__)
KIND = "identities"


class SharedValuesNotice:
    def __init__(self, db: Database, settings: Settings, on_enqueued: Callable[[], None]) -> None:
        self._db = db
        self._settings = settings
        self._on_enqueued = on_enqueued

    async def run(self, now: datetime) -> int:
        """Queue one notice for the values not announced yet; returns how many values it names."""
        settings = self._settings
        async with self._db.sessions() as session, session.begin():
            fresh = await claim_unannounced(session, now)
            if not fresh:
                return 0
            text = texts.owner_notice(fresh, settings.identity.max_users_per_value, settings.tz)
            await enqueue_for_owners(session, settings, kind=KIND, text=text, subject=texts.NOTICE_SUBJECT)
        logger.warning("identities: %d value(s) shared by too many user ids stopped linking", len(fresh))
        self._on_enqueued()
        return len(fresh)
