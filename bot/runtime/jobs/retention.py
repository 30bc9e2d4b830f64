"""Nightly retention (152-FZ): events older than ``retention.days`` lose their personal data."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.settings import Settings
from storage.database import Database
from storage.retention import AnonymizationReport, anonymize_before

logger = logging.getLogger(__name__)


class RetentionJob:
    def __init__(
        self, db: Database, settings: Settings, drop_identity_cache: Callable[[], None] | None = None
    ) -> None:
        self._db = db
        self._settings = settings
        self._drop_identity_cache = drop_identity_cache

    async def run(self, now: datetime) -> AnonymizationReport | None:
        retention = self._settings.retention
        if retention.hash_secret is None:
            logger.warning("retention: retention.hash_secret is not set, old dialogs are NOT anonymised")
            return None
        report = await anonymize_before(
            self._db,
            now - timedelta(days=retention.days),
            retention.secret_bytes(),
            batch_size=retention.batch_size,
            drop_identity_cache=self._drop_identity_cache,
        )
        logger.info("retention: %d events and %d clients anonymised", report.events, report.clients)
        return report
