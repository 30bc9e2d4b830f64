"""The single path by which events reach the database, with group commit.

Concurrent callers are committed together in one transaction (bounded in events and in waiting time),
and each caller is answered only after that commit: an acknowledgement means the events are on disk.

A transaction that fails for any reason but storage being unavailable (a bug, a constraint, data the
database refuses) is no poison: its events are stored again in halves, down to single events, and an
event that still fails alone is quarantined with "internal error, quarantined" while the others are
stored and acknowledged. Only storage trouble fails the callers (503: retry later).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

import orjson

from storage.batch_store import BatchStore, Rejected, StoreFailed, StoreSettings, store_failure
from storage.database import Database, StorageUnavailable
from storage.event_row import EventRow
from storage.writer_process import WriterProcess

logger = logging.getLogger(__name__)

__all__ = ["CommittedBatch", "EventWriter", "Rejected", "WriteResult", "WriterClosed"]


class WriterClosed(StorageUnavailable):
    """The writer is draining for shutdown and takes no new work."""


INTERNAL_ERROR = "internal error, quarantined"


@dataclass(frozen=True, slots=True)
class WriteResult:
    accepted: int
    duplicates: int
    failed: tuple[int, ...] = ()  # positions of the rows that failed alone and went to quarantine


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


class LocalSink:
    """The batch's transaction in this process, on the database's write path (``WriteTransactions``)."""

    def __init__(self, db: Database, settings: StoreSettings) -> None:
        self._db = db
        self._batch = BatchStore()
        self._settings = settings

    async def store(self, rows: list[EventRow], rejected: list[Rejected], now: datetime) -> set[str]:
        work = partial(self._batch.store, rows=rows, rejected=rejected, now=now, settings=self._settings)
        try:
            return await self._db.writes.run(work)
        except Exception as exc:
            # OSError: a disk error (EFBIG, EIO, EROFS) the driver did not wrap; storage, not the data.
            # Anything else but the database's own errors is a bug, which fails this transaction only.
            self._batch.forget()
            raise store_failure(exc) from exc


class ProcessSink:
    """The batch's transaction in ``leadtrail run``'s writer process (``storage.writer_process``)."""

    def __init__(self, process: WriterProcess, settings: StoreSettings) -> None:
        self._process = process
        self._settings = settings

    async def store(self, rows: list[EventRow], rejected: list[Rejected], now: datetime) -> set[str]:
        return await self._process.store(rows, rejected, now, self._settings)


@dataclass(slots=True)
class _Job:
    rows: list[EventRow]
    rejected: Sequence[Rejected]
    source: str
    done: asyncio.Future[WriteResult] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


@dataclass(slots=True)
class _Batch:
    """Jobs committed together: their rows, each event_id once, with the job each came from."""

    jobs: list[_Job]
    now: datetime
    rows: list[EventRow] = field(default_factory=list)
    owners: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(row) → (job, position in it)
    rejected: list[Rejected] = field(default_factory=list)

    @classmethod
    def of(cls, jobs: list[_Job]) -> _Batch:
        batch = cls(jobs, datetime.now(UTC))
        seen: set[str] = set()
        for number, job in enumerate(jobs):
            for position, row in enumerate(job.rows):
                if row["event_id"] not in seen:
                    seen.add(row["event_id"])
                    stored: EventRow = {**row, "received_at": batch.now}
                    batch.rows.append(stored)
                    batch.owners[id(stored)] = (number, position)
            batch.rejected.extend(job.rejected)
        return batch

    def results(self, inserted: set[str], failed: Sequence[EventRow] = ()) -> list[WriteResult]:
        accepted = [0] * len(self.jobs)
        for row in self.rows:
            if row["event_id"] in inserted:
                accepted[self.owners[id(row)][0]] += 1
        failures: list[list[int]] = [[] for _ in self.jobs]
        for row in failed:
            number, position = self.owners[id(row)]
            failures[number].append(position)
        return [
            WriteResult(
                accepted[n], len(job.rows) - accepted[n] - len(failures[n]), tuple(sorted(failures[n]))
            )
            for n, job in enumerate(self.jobs)
        ]

    def quarantined(self, failed: Sequence[EventRow]) -> list[Rejected]:
        """The rows that failed alone, as quarantine entries of the source that sent each."""
        return [
            Rejected(
                source=self.jobs[self.owners[id(row)][0]].source,
                payload=orjson.dumps(
                    {key: value for key, value in row.items() if key not in ("client_id", "received_at")}
                ).decode(),
                errors=[{"field": None, "message": INTERNAL_ERROR}],
                channel=row["channel"],
            )
            for row in failed
        ]


class EventWriter:
    def __init__(
        self,
        db: Database,
        *,
        max_batch_events: int = 5000,
        max_wait_ms: float = 0.0,
        settings: StoreSettings | None = None,
    ) -> None:
        self._max_batch_events = max_batch_events
        self._max_wait = max_wait_ms / 1000
        process = db.writes.process
        settings = settings or StoreSettings()
        self._sink: BatchSink = ProcessSink(process, settings) if process else LocalSink(db, settings)
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

    async def write(
        self, rows: list[EventRow], rejected: Sequence[Rejected] = (), *, source: str = "unknown"
    ) -> WriteResult:
        """Store the rows (and quarantine the rejected); returns once committed. ``source`` names the
        sender in the quarantine, should one of the rows fail alone."""
        if self._closing or self._task is None:
            raise WriterClosed("LeadTrail is shutting down")
        if self._task.done():
            raise StorageUnavailable("the event writer stopped; restart LeadTrail")
        if not rows and not rejected:
            return WriteResult(0, 0)
        job = _Job(rows, rejected, source[:64])
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

    async def _commit_batch(self, jobs: list[_Job]) -> None:
        try:
            batch = _Batch.of(jobs)
            try:
                results, committed = await self._commit(batch)
            except StoreFailed as failure:
                if failure.unavailable:
                    raise
                logger.warning(
                    "a write transaction failed (%s: %s); storing its events in parts",
                    failure.kind,
                    failure.reason,
                )
                results, committed = await self._commit_in_parts(batch)
        except StoreFailed as failure:
            logger.error("storage write failed: %s: %s", failure.kind, failure.reason)
            if failure.unavailable and self.failing_since is None:
                self.failing_since = asyncio.get_running_loop().time()
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(failure)
            return
        except BaseException as exc:
            for job in jobs:
                if not job.done.done():
                    job.done.set_exception(StorageUnavailable(f"writer failed: {exc!r}"))
            raise
        self.batches_committed += 1
        self._tell_observers(committed)
        self.failing_since = None
        for job, result in zip(jobs, results, strict=True):
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

    async def _commit(self, batch: _Batch) -> tuple[list[WriteResult], CommittedBatch | None]:
        inserted = await self._sink.store(batch.rows, batch.rejected, batch.now)
        return batch.results(inserted), self._committed(batch, inserted, batch.rejected)

    async def _commit_in_parts(self, batch: _Batch) -> tuple[list[WriteResult], CommittedBatch | None]:
        """The batch's transaction failed on its data: the rejected on their own, then the rows in halves
        down to single rows; a row that fails alone goes to the quarantine. Storage trouble on the way
        fails the whole batch (what was stored meanwhile counts as duplicates when the senders retry)."""
        if batch.rejected:
            await self._sink.store([], batch.rejected, batch.now)
        inserted, failed = await self._store_parts(batch.rows, batch.now)
        poisoned = batch.quarantined(failed)
        if poisoned:
            await self._sink.store([], poisoned, batch.now)
            logger.error("%d event(s) failed alone and were quarantined", len(poisoned))
        return batch.results(inserted, failed), self._committed(batch, inserted, [*batch.rejected, *poisoned])

    async def _store_parts(self, rows: list[EventRow], now: datetime) -> tuple[set[str], list[EventRow]]:
        """Store the rows, or each half on its own; returns the new event_ids and the rows that failed
        alone. The first try is of all of them again: a failure caused by a stale identity cache (dropped
        with the failed transaction) does not repeat."""
        if not rows:
            return set(), []
        try:
            return await self._sink.store(rows, [], now), []
        except StoreFailed as failure:
            if failure.unavailable:
                raise
            if len(rows) == 1:
                return set(), rows
        half = len(rows) // 2
        first, first_failed = await self._store_parts(rows[:half], now)
        second, second_failed = await self._store_parts(rows[half:], now)
        return first | second, first_failed + second_failed

    def _committed(
        self, batch: _Batch, inserted: set[str], rejected: list[Rejected]
    ) -> CommittedBatch | None:
        if not self._observers:
            return None
        return CommittedBatch(
            rows=[row for job in batch.jobs for row in job.rows],
            new_rows=[row for row in batch.rows if row["event_id"] in inserted],
            rejected=rejected,
        )
