"""The single path by which events reach the database, with group commit.

Concurrent callers are committed together in one transaction (bounded in events and in waiting time),
and each caller is answered only after that commit: an acknowledgement means the events are on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from sqlalchemy.exc import SQLAlchemyError

from storage.batch_store import BatchStore, Rejected, StoreFailed, store_failure
from storage.database import Database, StorageUnavailable
from storage.event_row import EventRow
from storage.writer_process import WriterProcess

logger = logging.getLogger(__name__)

__all__ = ["CommittedBatch", "EventWriter", "Rejected", "WriteResult", "WriterClosed"]


class WriterClosed(StorageUnavailable):
    """The writer is draining for shutdown and takes no new work."""


@dataclass(frozen=True, slots=True)
class WriteResult:
    accepted: int
    duplicates: int


@dataclass(frozen=True, slots=True)
class CommittedBatch:
    """What one transaction stored, told to observers (such as /metrics) after the commit."""

    rows: list[EventRow]  # every valid row offered, duplicates included
    new_rows: list[EventRow]  # the rows that were stored (first of each new event_id)
    rejected: list[Rejected]


BatchObserver = Callable[[CommittedBatch], None]


class BatchSink(Protocol):
    """Where a batch is committed: in this process (``LocalSink``) or in the writer process."""

    async def store(self, rows: list[EventRow], rejected: list[Rejected], now: datetime) -> set[str]:
        """Commit the batch; returns the event_ids that were new, raises ``StoreFailed``."""

    def forget(self) -> None:
        """Drop the identity cache."""


class LocalSink:
    """The batch's transaction in this process, on the database's write path (``WriteTransactions``)."""

    def __init__(self, db: Database, quarantine_max_rows: int) -> None:
        self._db = db
        self._batch = BatchStore()
        self._quarantine_max_rows = quarantine_max_rows

    async def store(self, rows: list[EventRow], rejected: list[Rejected], now: datetime) -> set[str]:
        work = partial(
            self._batch.store,
            rows=rows,
            rejected=rejected,
            now=now,
            quarantine_max_rows=self._quarantine_max_rows,
        )
        try:
            return await self._db.writes.run(work)
        except (SQLAlchemyError, OSError) as exc:
            # OSError: a disk error (EFBIG, EIO, EROFS) the driver did not wrap; storage, not the data.
            self._batch.forget()
            raise store_failure(exc) from exc

    def forget(self) -> None:
        self._batch.forget()


class ProcessSink:
    """The batch's transaction in ``leadtrail run``'s writer process (``storage.writer_process``)."""

    def __init__(self, process: WriterProcess, quarantine_max_rows: int) -> None:
        self._process = process
        self._quarantine_max_rows = quarantine_max_rows

    async def store(self, rows: list[EventRow], rejected: list[Rejected], now: datetime) -> set[str]:
        return await self._process.store(rows, rejected, now, self._quarantine_max_rows)

    def forget(self) -> None:
        self._process.forget()


@dataclass(slots=True)
class _Job:
    rows: list[EventRow]
    rejected: Sequence[Rejected]
    done: asyncio.Future[WriteResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class EventWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch_events: int = 5000,
        max_wait_ms: float = 0.0,
        quarantine_max_rows: int = 10_000,
    ) -> None:
        self._max_batch_events = max_batch_events
        self._max_wait = max_wait_ms / 1000
        process = db.writes.process
        self._sink: BatchSink = (
            ProcessSink(process, quarantine_max_rows) if process else LocalSink(db, quarantine_max_rows)
        )
        self._queue: asyncio.Queue[_Job | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.batches_committed = 0
        self._observers: list[BatchObserver] = []
        # Monotonic time of the first failed commit of the current storage outage; None while writes work.
        # Read by the owners' alarm (bot.runtime.storage_alarm): the database itself cannot carry that news.
        self.failing_since: float | None = None

    def observe(self, observer: BatchObserver) -> None:
        """Call ``observer`` after each commit; it must be quick, and its errors are only logged."""
        self._observers.append(observer)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="event-writer")
            self._task.add_done_callback(self._stopped)

    def _stopped(self, task: asyncio.Task[None]) -> None:
        """A writer that died of a bug must not leave its callers waiting for ever: fail what is queued."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        logger.error("the event writer stopped: %s; events are refused until restart", type(error).__name__)
        while not self._queue.empty():
            job = self._queue.get_nowait()
            if job is not None and not job.done.done():
                job.done.set_exception(StorageUnavailable("the event writer stopped; restart LeadTrail"))

    async def close(self) -> None:
        """Stop taking work, commit everything already queued, then stop."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            await self._queue.put(None)
            await task

    def forget_identities(self) -> None:
        """Drop the identity cache: a client was erased or merged outside this writer."""
        self._sink.forget()

    async def write(self, rows: list[EventRow], rejected: Sequence[Rejected] = ()) -> WriteResult:
        """Store the rows (and quarantine the rejected); returns once committed."""
        if self._closing or self._task is None:
            raise WriterClosed("LeadTrail is shutting down")
        if self._task.done():
            raise StorageUnavailable("the event writer stopped; restart LeadTrail")
        if not rows and not rejected:
            return WriteResult(0, 0)
        job = _Job(rows, rejected)
        await self._queue.put(job)
        return await asyncio.shield(job.done)

    async def _next_batch(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, size = [first], len(first.rows)
        deadline = asyncio.get_running_loop().time() + self._max_wait
        while size < self._max_batch_events:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if job is None:
                return batch, True
            batch.append(job)
            size += len(job.rows)
        return batch, False

    async def _run(self) -> None:
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            batch, stop = await self._next_batch(first)
            await self._commit_batch(batch)
        while not self._queue.empty():
            leftover = self._queue.get_nowait()
            if leftover is not None:
                await self._commit_batch([leftover])

    async def _commit_batch(self, batch: list[_Job]) -> None:
        try:
            results, committed = await self._commit(batch)
        except StoreFailed as failure:
            if len(batch) > 1 and not failure.unavailable:
                # One job's data broke the transaction; commit the others on their own.
                for job in batch:
                    await self._commit_batch([job])
                return
            logger.error("storage write failed: %s: %s", failure.kind, failure.reason)
            if failure.unavailable and self.failing_since is None:
                self.failing_since = asyncio.get_running_loop().time()
            for job in batch:
                if not job.done.done():
                    job.done.set_exception(failure)
            return
        except BaseException as exc:
            self._sink.forget()
            for job in batch:
                if not job.done.done():
                    job.done.set_exception(StorageUnavailable(f"writer failed: {exc!r}"))
            raise
        self.batches_committed += 1
        self._tell_observers(committed)
        self.failing_since = None
        for job, result in zip(batch, results, strict=True):
            if not job.done.done():
                job.done.set_result(result)

    def _tell_observers(self, committed: CommittedBatch | None) -> None:
        if committed is None:
            return
        for observer in self._observers:
            try:
                observer(committed)
            except Exception:
                logger.exception("a write observer failed; the events are stored all the same")

    async def _commit(self, batch: list[_Job]) -> tuple[list[WriteResult], CommittedBatch | None]:
        now = datetime.now(UTC)
        first_owner: dict[str, int] = {}
        unique_rows: list[EventRow] = []
        for number, job in enumerate(batch):
            for row in job.rows:
                if row["event_id"] not in first_owner:
                    first_owner[row["event_id"]] = number
                    unique_rows.append({**row, "received_at": now})
        rejected = [item for job in batch for item in job.rejected]

        inserted = await self._sink.store(unique_rows, rejected, now)
        accepted = [0] * len(batch)
        for event_id in inserted:
            accepted[first_owner[event_id]] += 1
        results = [WriteResult(accepted[n], len(job.rows) - accepted[n]) for n, job in enumerate(batch)]
        committed = None
        if self._observers:
            committed = CommittedBatch(
                rows=[row for job in batch for row in job.rows],
                new_rows=[row for row in unique_rows if row["event_id"] in inserted],
                rejected=rejected,
            )
        return results, committed
