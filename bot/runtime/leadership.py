"""One leader among several ``leadtrail run`` processes on one PostgreSQL: only it polls Telegram, runs the
scheduler (morning report, alerts, retention) and delivers the outbox; the others ingest and stand by.

Telegram allows one ``getUpdates`` consumer per bot, and a job run N times would alert N times, so these
follow the leader lock (``storage.leader_lock``). A standby tries again every
``database.leader_retry_seconds``; the leader checks it still holds the lock as often. On SQLite the one
process is the leader from the start, before ``leadtrail run`` says it is ready.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from bot.background import cancel_and_wait
from bot.ingestion.http_app import ServiceState
from bot.settings import Settings
from storage.database import Database
from storage.leader_lock import LeaderLock
from storage.writer import EventWriter

if TYPE_CHECKING:
    from bot.runtime.connectors import LeaderWorker
    from bot.runtime.owner_services import OwnerServices
    from bot.runtime.telegram_link import TelegramLink

logger = logging.getLogger(__name__)

Duty = Callable[[], Awaitable[None]]


class Leadership:
    def __init__(
        self, lock: LeaderLock, state: ServiceState, on_elected: Duty, on_demoted: Duty, retry_seconds: float
    ) -> None:
        self._lock = lock
        self._state = state
        self._on_elected = on_elected
        self._on_demoted = on_demoted
        self._retry = retry_seconds
        self._leader = False
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # The first try is inline, so a lone process has its duties running before it reports ready.
        await self._step()
        if not self._leader:
            logger.info("scheduler: standby, another process is the leader; retrying every %ss", self._retry)
        self._task = asyncio.create_task(self._keep(), name="leadership")

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        if self._leader:
            self._leader = False
            # Shutdown must go on to commit what the writer holds, whatever stopping the duties raised.
            await self._guard("stopping", self._on_demoted)
        await self._lock.release()

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self._retry)
            await self._step()

    async def _step(self) -> None:
        if self._leader:
            if await self._lock.still_held():
                return
            logger.warning("scheduler: lost the leader lock (database session gone); standing by")
            self._leader = False
            self._state.scheduler = "standby"
            await self._guard("stopping", self._on_demoted)
            return
        if not await self._lock.try_acquire():
            self._state.scheduler = "standby"
            return
        self._leader = True
        self._state.scheduler = "leader"
        logger.info("scheduler: this process is the leader (Telegram polling, scheduled jobs, delivery)")
        await self._guard("starting", self._on_elected)

    async def _guard(self, what: str, duty: Duty) -> None:
        try:
            await duty()
        except Exception:
            logger.exception("scheduler: %s the leader's duties failed", what)


class LeaderDuties:
    """What only the leader runs: the bot's polling, the owner services (delivery and scheduler) and the
    Bitrix24 worker."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        writer: EventWriter,
        link: TelegramLink | None,
        state: ServiceState,
        workers: Sequence[LeaderWorker] = (),
    ) -> None:
        self._settings = settings
        self._workers = workers
        self._db = db
        self._writer = writer
        self._link = link
        self._state = state
        self._services: OwnerServices | None = None

    async def start(self) -> None:
        for worker in self._workers:
            worker.start()
        if self._link is not None:
            self._link.start()
        if self._settings.telegram.owners or self._settings.email.owners:
            from bot.runtime.owner_services import start_owner_services

            self._services = start_owner_services(
                self._settings, self._db, self._writer, self._link, self._state
            )

    async def stop(self) -> None:
        services, self._services = self._services, None
        if services is not None:
            await services.stop()
        if self._link is not None:
            await self._link.stop()
        for worker in self._workers:
            await worker.pause()


async def start_leadership(
    settings: Settings,
    db: Database,
    writer: EventWriter,
    link: TelegramLink | None,
    state: ServiceState,
    workers: Sequence[LeaderWorker] = (),
) -> Leadership:
    duties = LeaderDuties(settings, db, writer, link, state, workers)
    leadership = Leadership(
        LeaderLock(db), state, duties.start, duties.stop, settings.database.leader_retry_seconds
    )
    await leadership.start()
    return leadership
