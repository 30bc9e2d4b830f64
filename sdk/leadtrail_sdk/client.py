"""``EventClient``: send events to LeadTrail from any asyncio code without ever waiting for the network.

``log()`` notes the time and appends the event to a bounded in-memory queue; stamping (``timestamp``,
``event_id``) and JSON encoding are left to the background task, off the handler's path. That one task
sends NDJSON batches to ``POST {base_url}/v1/events`` and is the only one that touches the spool, so
events keep their order: the spool always holds events older than the ones in memory, and is sent first.

Delivery rules (design.md, "HTTP ingest"):

- 202: delivered. 207/422: the events named in ``errors[].index`` go to ``dead-letter.ndjson``, the rest
  are delivered.
- Network errors, timeouts, 429 and 5xx: retried with exponential backoff and full jitter (``Retry-After``
  wins when the collector sends it). After one retry cycle the batch and everything queued behind it move
  to the spool; the spool is replayed, oldest first, as soon as the collector answers again.
- 413: the batch is split in halves until it fits; a single event over the limit is dead-lettered.
- 400/401/415 and other 4xx: a configuration problem (token, URL, proxy). Logged once as an error; the
  events wait in the spool and are retried every ``max_retry_delay`` seconds.

Only the standard library and aiohttp are imported: the salon bot's memory and start-up are not ours.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp

from leadtrail_sdk.spool import DEAD_LETTER_NAME, DeadLetterFile, Spool
from leadtrail_sdk.stamps import new_event_id, utc_iso

logger = logging.getLogger(__name__)

MAX_BATCH_BYTES = 512 * 1024  # half the collector's default ingest.max_body_bytes, so 413 stays rare
RETRY_CYCLE_ATTEMPTS = 4  # failed attempts of one batch before the queue is moved to the spool
FIRST_RETRY_DELAY = 0.2
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
_Queued = tuple[dict[str, Any], float]  # an event as logged, and time.time() when it was


@dataclass(slots=True)
class ClientStats:
    """Counters since the client was created; ``dropped`` is non-zero only if the spool cannot be written."""

    sent: int = 0
    """Events the collector acknowledged (stored or recognised as duplicates), replayed ones included."""
    spooled: int = 0
    """Events written to the spool."""
    replayed: int = 0
    """Events delivered from the spool."""
    rejected: int = 0
    """Events the collector refused for good, now in the dead-letter file."""
    dropped: int = 0
    """Events lost because neither the collector nor the spool could take them."""


class _Verdict(Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class _Outcome:
    verdict: _Verdict
    retry_after: float | None = None


_DELIVERED = _Outcome(_Verdict.DELIVERED)


def _retry_after(header: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; the HTTP-date form falls back to our own backoff."""
    try:
        seconds = float(header) if header is not None else -1.0
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _errors_by_index(body: bytes) -> dict[int, list[dict[str, Any]]] | None:
    try:
        errors = json.loads(body)["errors"]
        grouped: dict[int, list[dict[str, Any]]] = {}
        for error in errors:
            grouped.setdefault(int(error["index"]), []).append(dict(error))
    except (ValueError, KeyError, TypeError):
        return None
    return grouped


def _decoded(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return line.decode("utf-8", "replace")


class EventClient:
    """Batches, retries and spools events for one collector; see the module docstring for the rules."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        spool_dir: str | Path = "./leadtrail-spool",
        batch_size: int = 200,
        flush_interval: float = 0.5,
        max_queue: int = 10_000,
        max_retry_delay: float = 30.0,
        timeout: float = 10.0,
    ) -> None:
        self.url = base_url.rstrip("/") + "/v1/events"
        self.spool_dir = Path(spool_dir)
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.max_queue = max_queue
        self.max_retry_delay = max_retry_delay
        self.timeout = timeout
        self.stats = ClientStats()
        self._headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/x-ndjson"}
        self._dead_letter = DeadLetterFile(self.spool_dir / DEAD_LETTER_NAME)
        # Age order, oldest first: spool < _held (the batch being tried) < _spill (overflow) < _memory.
        # Queued events wait with the time they were logged, and are stamped when encoded.
        self._memory: deque[_Queued] = deque()
        self._held: list[bytes] = []
        self._spill: list[_Queued] = []
        self._unencodable: list[tuple[bytes, list[dict[str, Any]]]] = []
        self._first_queued_at = 0.0
        self._spool: Spool | None = None
        self._spool_opening = asyncio.Lock()
        self._disk_writes: set[asyncio.Future[None]] = set()
        self._http: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._interrupt = asyncio.Event()
        self._drained = asyncio.Event()
        self._flushes = 0
        self._closing = False
        self._closed = False
        self._outage = False
        self._refusals_logged: set[int] = set()

    @property
    def pending(self) -> int:
        """Events not yet acknowledged by the collector: in memory plus in the spool."""
        spooled = self._spool.pending if self._spool is not None else 0
        return len(self._memory) + len(self._held) + len(self._spill) + spooled

    def log(self, event: Mapping[str, Any]) -> None:
        """Queue one event; returns at once. Call it from the event loop's thread.

        Fills in ``timestamp`` (the time of this call) and a unique ``event_id`` when absent, before the
        first send, so a retried event is stored once. The top level is copied now; nested values are read
        when the batch is encoded, so do not change them afterwards. Past ``max_queue`` the queued events
        are handed to the sender to be spooled.
        """
        if self._closed:
            raise RuntimeError("EventClient is closed")
        queued = (dict(event), time.time())
        memory = self._memory
        if len(memory) >= self.max_queue:
            self._spill.extend(memory)
            memory.clear()
            self._interrupt.set()
            self._wake.set()
        memory.append(queued)
        if len(memory) == 1:
            self._first_queued_at = time.monotonic()
            self._wake.set()
        elif len(memory) == self.batch_size:
            self._wake.set()
        if self._task is None:
            self._start_sender()

    def log_model_call(
        self,
        user_id: str,
        *,
        model: str,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        cached_tokens: int | None = None,
        cost: float | None = None,
        provider: str | None = None,
        event: str = "llm_call",
        **fields: Any,
    ) -> None:
        """Queue one call of the model made for this client, with its tokens; returns at once, like ``log``.

        ``llm_call`` is a call that is not itself the answer (an intent classification, a summary, a tool
        step); log the answer's own call with ``event="assistant_response"`` and the answer's fields. Without
        ``cost`` LeadTrail prices the call from its ``[[ai.prices]]``; with it, ``currency`` in ``fields``
        (else LeadTrail's ``ai.currency``). Any other field (``channel``, ``intent``, ``prompt``…) goes as is.
        """
        call: dict[str, Any] = {**fields, "event": event, "user_id": user_id, "model": model}
        optional = {
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cached_tokens": cached_tokens,
            "cost": cost,
            "provider": provider,
        }
        call.update({name: value for name, value in optional.items() if value is not None})
        self.log(call)

    async def start(self) -> None:
        """Open the spool (raising if ``spool_dir`` is unusable) and start sending, replaying the spool first.

        Optional: the first ``log()`` inside a running loop starts the client too.
        """
        await self._open_spool()
        self._start_sender()

    async def flush(self, timeout: float = 5.0) -> bool:  # noqa: ASYNC109 - the deadline is the point
        """Send what is queued now and wait until the collector has acknowledged everything, spool included.

        Returns False if events are still pending at the deadline (the collector is down or refusing):
        they stay queued or spooled, nothing is lost.
        """
        self._start_sender()
        self._flushes += 1
        self._wake.set()
        try:
            async with asyncio.timeout(timeout):
                while self.pending:
                    self._drained.clear()
                    await self._drained.wait()
        except TimeoutError:
            return False
        finally:
            self._flushes -= 1
        return True

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 - the deadline is the point
        """Deliver what can be delivered within ``timeout`` seconds, spool the rest, release the session."""
        if self._closed:
            return
        self._closed = self._closing = True
        self._wake.set()
        self._interrupt.set()
        task = self._task
        if task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout)
            except TimeoutError:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            except Exception:  # already logged by _sender_done; its events are spooled below
                pass
        for outcome in await asyncio.gather(*self._disk_writes, return_exceptions=True):
            if isinstance(outcome, OSError):
                logger.error("LeadTrail: a spool write cut short by aclose failed (%s)", outcome.strerror)
        await self._spool_rest()
        if self._http is not None:
            await self._http.close()

    # ------------------------------------------------------------------ the sender

    def _start_sender(self) -> None:
        if self._task is not None or self._closed:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # log() before the loop runs: start() or the next log() inside the loop starts it
        self._task = loop.create_task(self._run(), name="leadtrail-event-client")
        self._task.add_done_callback(self._sender_done)

    @staticmethod
    def _sender_done(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (error := task.exception()) is not None:
            logger.error(
                "LeadTrail sender stopped by %s; queued events go to the spool", type(error).__name__
            )

    async def _run(self) -> None:
        while self._spool is None:
            try:
                await self._open_spool()
            except OSError as exc:
                logger.error("cannot open the spool in %s (%s); retrying", self.spool_dir, exc.strerror)
                if self._closing:
                    return
                await self._pause(self.max_retry_delay)
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        failures = 0
        while await self._wait_for_work():
            if self._spill:
                await self._spool_out(include_memory=False)
            if self._unencodable:
                await self._reject_unencodable()
            batch, from_spool = await self._next_batch()
            if not batch:
                continue  # the spool's count was stale (see Spool.peek); nothing to send
            outcome = await self._deliver(batch)
            if outcome.verdict is _Verdict.DELIVERED:
                if from_spool:
                    self.stats.replayed += len(batch)
                    await self._on_disk(partial(self._spool_or_fail().consume, batch))
                else:
                    self._held = []
                if self._outage:
                    self._outage = False
                    logger.info("LeadTrail collector answers again; %d event(s) to catch up", self.pending)
                failures = 0
                continue
            failures += 1
            if self._closing:
                return  # aclose spools what is left
            refused = outcome.verdict is _Verdict.REFUSED
            if from_spool or refused or failures >= RETRY_CYCLE_ATTEMPTS:
                await self._spool_out(include_memory=True)
            if refused:
                delay = self.max_retry_delay
            elif outcome.retry_after is not None:
                delay = outcome.retry_after
            else:
                delay = random.uniform(0, min(self.max_retry_delay, FIRST_RETRY_DELAY * 2**failures))
            await self._pause(delay)

    async def _wait_for_work(self) -> bool:
        """Wait until a batch is due (full, old enough, spooled or retried); False when closing and done."""
        while True:
            if self._held or self._spill or self._spool_or_fail().pending:
                return True
            if self._memory:
                due = self._first_queued_at + self.flush_interval - time.monotonic()
                if self._closing or self._flushes or len(self._memory) >= self.batch_size or due <= 0:
                    return True
                self._wake.clear()
                await self._wait(self._wake, due)
            elif self._closing:
                return False
            else:
                self._drained.set()  # nothing left anywhere: flush() may return
                self._wake.clear()
                await self._wake.wait()

    async def _pause(self, seconds: float) -> None:
        """Back off, but keep moving overflow to disk meanwhile; closing ends the pause."""
        deadline = time.monotonic() + seconds
        while not self._closing and (remaining := deadline - time.monotonic()) > 0:
            self._interrupt.clear()
            await self._wait(self._interrupt, remaining)
            if self._spill:
                await self._spool_out(include_memory=False)

    @staticmethod
    async def _wait(event: asyncio.Event, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await event.wait()
        except TimeoutError:
            pass

    async def _next_batch(self) -> tuple[list[bytes], bool]:
        if self._held:
            return self._held, False
        spool = self._spool_or_fail()
        if spool.pending:
            return await asyncio.to_thread(spool.peek, self.batch_size, MAX_BATCH_BYTES), True
        batch: list[bytes] = []
        size = 0
        memory = self._memory
        while memory and len(batch) < self.batch_size:
            line = self._encode(memory[0])
            if line is not None and batch and size + len(line) >= MAX_BATCH_BYTES:
                break
            memory.popleft()
            if line is not None:
                batch.append(line)
                size += len(line) + 1
        self._held = batch
        return batch, False

    def _encode(self, queued: _Queued) -> bytes | None:
        """One NDJSON line; an event JSON cannot express (a cycle, odd keys) goes to the dead-letter file."""
        event, logged_at = queued
        if "timestamp" not in event:
            event["timestamp"] = utc_iso(logged_at)
        if "event_id" not in event:
            event["event_id"] = new_event_id()
        try:
            return _ENCODER.encode(event).encode()
        except (TypeError, ValueError) as exc:
            reason = {"index": 0, "field": None, "message": f"not JSON-serialisable: {type(exc).__name__}"}
            self._unencodable.append((repr(event).encode(), [reason]))
            return None

    def _encode_all(self, queue: Iterable[_Queued]) -> list[bytes]:
        return [line for queued in queue if (line := self._encode(queued)) is not None]

    async def _reject_unencodable(self) -> None:
        rejected, self._unencodable = self._unencodable, []
        await self._reject(rejected)

    # ------------------------------------------------------------------ one batch over HTTP

    async def _deliver(self, batch: list[bytes]) -> _Outcome:
        """POST one batch; 413 splits it. Counts what was delivered and dead-letters what was rejected."""
        assert self._http is not None
        try:
            async with self._http.post(self.url, data=b"\n".join(batch), headers=self._headers) as response:
                status = response.status
                body = await response.read()
                retry_after = _retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._note_outage(type(exc).__name__)
            return _Outcome(_Verdict.RETRY)
        if status in (200, 202):
            self.stats.sent += len(batch)
            return _DELIVERED
        if status in (207, 422) and (errors := _errors_by_index(body)) is not None:
            rejected = [(batch[index], reasons) for index, reasons in errors.items() if index < len(batch)]
            await self._reject(rejected)
            self.stats.sent += len(batch) - len(rejected)
            return _DELIVERED
        if status == 413:
            return await self._deliver_split(batch)
        if status == 429 or status >= 500:
            self._note_outage(f"HTTP {status}")
            return _Outcome(_Verdict.RETRY, retry_after)
        if status not in self._refusals_logged:
            self._refusals_logged.add(status)
            logger.error(
                "LeadTrail collector refuses the requests with HTTP %d (check the URL and the token); "
                "events are kept in %s and retried every %.0f s",
                status,
                self.spool_dir,
                self.max_retry_delay,
            )
        return _Outcome(_Verdict.REFUSED)

    async def _deliver_split(self, batch: list[bytes]) -> _Outcome:
        if len(batch) == 1:
            message = f"event of {len(batch[0])} bytes is over the collector's body limit (HTTP 413)"
            await self._reject([(batch[0], [{"index": 0, "field": None, "message": message}])])
            return _DELIVERED
        middle = len(batch) // 2
        for half in (batch[:middle], batch[middle:]):
            # A failed second half resends the first one later: the collector dedupes it by event_id.
            outcome = await self._deliver(half)
            if outcome.verdict is not _Verdict.DELIVERED:
                return outcome
        return _DELIVERED

    async def _reject(self, rejected: list[tuple[bytes, list[dict[str, Any]]]]) -> None:
        if not rejected:
            return
        entries = [(_decoded(line), reasons) for line, reasons in rejected]
        self.stats.rejected += len(rejected)
        await self._on_disk(partial(self._dead_letter.append, entries))
        fields = sorted(
            {str(reason.get("field") or "(whole event)") for _, reasons in rejected for reason in reasons}
        )
        logger.warning(
            "LeadTrail collector rejected %d event(s) (fields: %s); they are in %s",
            len(rejected),
            ", ".join(fields),
            self._dead_letter.path,
        )

    def _note_outage(self, reason: str) -> None:
        if not self._outage:
            self._outage = True
            logger.warning(
                "LeadTrail collector unreachable (%s); retrying, then spooling to %s", reason, self.spool_dir
            )

    # ------------------------------------------------------------------ the spool

    async def _open_spool(self) -> None:
        async with self._spool_opening:  # start() and a lazily started sender must not open it twice
            if self._spool is not None:
                return
            spool = await asyncio.to_thread(Spool, self.spool_dir)
            if spool.torn_tail:
                reason = {"index": 0, "field": None, "message": "incomplete line left by a crash"}
                await self._reject([(spool.torn_tail, [reason])])
            self._spool = spool

    async def _on_disk(self, operation: Callable[[], None]) -> None:
        """Run a spool or dead-letter write in a thread, shielded from cancellation.

        If aclose cancels the sender meanwhile, the write still completes exactly once, and aclose waits
        for it before it spools the rest, so the spool keeps its order.
        """
        write = asyncio.ensure_future(asyncio.to_thread(operation))
        self._disk_writes.add(write)
        write.add_done_callback(self._disk_writes.discard)
        await asyncio.shield(write)

    def _spool_or_fail(self) -> Spool:
        if self._spool is None:
            raise RuntimeError("the spool is not open")
        return self._spool

    async def _spool_out(self, *, include_memory: bool) -> None:
        """Move the held batch and the overflow (and the queue) to the spool, keeping their order."""
        lines = self._held + self._encode_all(self._spill)
        if include_memory:
            lines.extend(self._encode_all(self._memory))
            self._memory.clear()
        self._held, self._spill = [], []
        if not lines:
            return
        self.stats.spooled += len(lines)
        try:
            await self._on_disk(partial(self._spool_or_fail().append, lines))
        except OSError as exc:
            self.stats.spooled -= len(lines)
            logger.error(
                "cannot write the spool in %s (%s); keeping events in memory", self.spool_dir, exc.strerror
            )
            self._held = lines  # retried as one batch, still ahead of everything queued after it

    async def _spool_rest(self) -> None:
        lines = self._held + self._encode_all(self._spill) + self._encode_all(self._memory)
        self._held, self._spill = [], []
        self._memory.clear()
        if self._unencodable:
            await self._reject_unencodable()
        if not lines:
            return
        try:
            if self._spool is None:
                await self._open_spool()
            await self._on_disk(partial(self._spool_or_fail().append, lines))
        except OSError as exc:
            self.stats.dropped += len(lines)
            logger.error(
                "LeadTrail lost %d event(s): the spool in %s is not writable (%s)",
                len(lines),
                self.spool_dir,
                exc.strerror,
            )
            return
        self.stats.spooled += len(lines)
