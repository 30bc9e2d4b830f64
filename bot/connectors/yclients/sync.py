"""The reconciliation: every ``yclients.sync_minutes`` the leader reads, per company, the records changed
since its last successful run (the first run: ``sync_days`` back) and feeds them through the same intake
as the webhooks. A change whose webhook was lost (LeadTrail down, a network hiccup) arrives this way,
once: its events are duplicates if the webhook did come.

A failed company is retried with backoff (never faster than once a minute) and its reason shown by /crm
and ``leadtrail doctor``; the other companies go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, tzinfo

from sqlalchemy.exc import SQLAlchemyError

from bot.background import cancel_and_wait
from bot.connectors.yclients.api import YclientsApi, YclientsApiError
from bot.connectors.yclients.intake import YclientsIntake
from bot.connectors.yclients.mapping import RECORD, UPDATE
from bot.settings import YclientsSettings
from storage.database import Database, StorageUnavailable
from storage.yclients import note_sync, synced_until

logger = logging.getLogger(__name__)

# Read a little before where the last run ended: the two clocks may disagree by a few minutes.
OVERLAP = timedelta(minutes=5)
FIRST_RETRY_SECONDS = 60.0


class YclientsSync:
    def __init__(
        self,
        settings: YclientsSettings,
        db: Database,
        intake: YclientsIntake,
        api: YclientsApi,
        zone: tzinfo,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = settings
        self._db = db
        self._intake = intake
        self._api = api
        self._zone = zone
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="yclients-sync")

    async def pause(self) -> None:
        """Stop reconciling (this process is no longer the leader)."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def stop(self) -> None:
        await self.pause()
        await self._api.close()

    async def _run(self) -> None:
        interval = self._settings.sync_minutes * 60
        failures = 0
        while True:
            failed = await self.run_once()
            failures = failures + 1 if failed else 0
            delay = min(interval, FIRST_RETRY_SECONDS * 2 ** (failures - 1)) if failures else interval
            await asyncio.sleep(delay)

    async def run_once(self) -> int:
        """Reconcile every company once; returns how many of them failed."""
        failed = 0
        for company_id in self._settings.company_ids:
            try:
                await self._reconcile(company_id)
            except (YclientsApiError, StorageUnavailable, SQLAlchemyError, OSError) as exc:
                failed += 1
                reason = str(exc) if isinstance(exc, YclientsApiError) else type(exc).__name__
                logger.warning("yclients: reconciling company %s failed: %s", company_id, reason)
                with contextlib.suppress(StorageUnavailable, SQLAlchemyError, OSError):
                    async with self._db.sessions() as session, session.begin():
                        await note_sync(session, company_id, self._clock(), until=None, error=reason)
        return failed

    async def _reconcile(self, company_id: int) -> None:
        until = self._clock()
        async with self._db.sessions() as session:
            last = await synced_until(session, company_id)
        since = (last - OVERLAP) if last else until - timedelta(days=self._settings.sync_days)
        read = 0
        async for records in self._api.changed_records(company_id, since, until, self._zone):
            items = [
                {"company_id": company_id, "resource": RECORD, "status": UPDATE, "data": record}
                for record in records
            ]
            await self._intake.take(items, source="yclients-sync", from_webhook=False)
            read += len(records)
        async with self._db.sessions() as session, session.begin():
            await note_sync(session, company_id, self._clock(), until=until, error=None)
        logger.info("yclients: company %s reconciled, %d records read", company_id, read)
