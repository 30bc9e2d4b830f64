"""Nightly retention (152-FZ): events older than ``retention.days`` lose their personal data.

It runs with the default config: without ``retention.hash_secret`` the key comes from its file
(``bot.retention_key``), made on the first run.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.retention_key import retention_secret
from bot.settings import Settings
from storage.database import Database
from storage.retention import AnonymizationReport, anonymize_before

logger = logging.getLogger(__name__)


class RetentionJob:
    def __init__(self, db: Database, settings: Settings) -> None:
        self._db = db
        self._settings = settings

    async def run(self, now: datetime) -> AnonymizationReport:
        retention = self._settings.retention
        report = await anonymize_before(
            self._db,
            now - timedelta(days=retention.days),
            retention_secret(self._settings),
            batch_size=retention.batch_size,
        )
        logger.info("retention: %d events and %d clients anonymised", report.events, report.clients)
        return report
