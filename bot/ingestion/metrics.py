"""Prometheus metrics of the ingest server (``GET /metrics``), in a registry owned by one app.

Not the library's global registry: tests and several apps in one process would count into each other.
Counts come from the writer after each commit (every source that shares it: HTTP, Telegram, files), so
they are exact for duplicates and cost one dict increment per event. Nothing here carries personal data:
labels are channel names and outbox names.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from storage import outbox
from storage.database import Database
from storage.writer import CommittedBatch

logger = logging.getLogger(__name__)

INGEST_PATH = "/v1/events"
OWNER_OUTBOX = "owner_delivery"
# From a single event to the writer's largest transaction (ingest.batch_max_events defaults to 5000).
BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, math.inf)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, math.inf)

PendingCount = Callable[[AsyncSession], Awaitable[int]]


class OutboxDepth(Collector):
    """Pending rows of each outbox, counted at scrape time and cached for a few seconds.

    ``collect`` is synchronous, so the /metrics handler awaits ``refresh`` first. When the database does
    not answer, the depths are left out (a stale number would look healthy) and ``leadtrail_storage_up``
    says 0; the scrape itself still succeeds. More outboxes (a CRM one, say) are one ``add`` away.
    """

    def __init__(self, db: Database, *, cache_seconds: float = 5.0, timeout_seconds: float = 2.0) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._timeout_seconds = timeout_seconds
        self._counters: dict[str, PendingCount] = {}
        self._depths: dict[str, int] = {}
        self._storage_up = True
        self._read_at = -math.inf
        self._lock = asyncio.Lock()

    def add(self, name: str, pending_count: PendingCount) -> None:
        self._counters[name] = pending_count
        self._read_at = -math.inf

    async def refresh(self) -> None:
        async with self._lock:  # concurrent scrapes share one reading
            if time.monotonic() - self._read_at < self._cache_seconds:
                return
            try:
                async with asyncio.timeout(self._timeout_seconds), self._db.sessions() as session:
                    depths = {name: await count(session) for name, count in self._counters.items()}
            except (SQLAlchemyError, OSError, TimeoutError) as exc:
                logger.warning("metrics: cannot count the outboxes: %s", type(exc).__name__)
                self._depths, self._storage_up = {}, False
            else:
                self._depths, self._storage_up = depths, True
            self._read_at = time.monotonic()

    def collect(self) -> Iterable[Metric]:
        pending = GaugeMetricFamily(
            "leadtrail_outbox_pending",
            "Messages waiting in an outbox (not sent, not given up)",
            labels=["outbox"],
        )
        for name, depth in self._depths.items():
            pending.add_metric([name], depth)
        yield pending
        yield GaugeMetricFamily(
            "leadtrail_storage_up",
            "1 when the database answered the last outbox count, else 0",
            value=1 if self._storage_up else 0,
        )


class IngestMetrics:
    """The metrics of one ingest app; ``observe_writes`` hooks them to the writer."""

    def __init__(self, db: Database, *, outbox_cache_seconds: float = 5.0) -> None:
        self.registry = CollectorRegistry()
        self.events = Counter(
            "leadtrail_events",
            "Events offered to storage, by channel and outcome: accepted, duplicate or rejected",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "leadtrail_ingest_request_duration_seconds",
            "Time to answer POST /v1/events, commit included",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_events = Histogram(
            "leadtrail_writer_batch_events",
            "Valid events per committed transaction (group commit)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.last_event = Gauge(
            "leadtrail_last_event_timestamp_seconds",
            "Newest event time (the event's own timestamp, Unix seconds) stored per channel since start",
            ["channel"],
            registry=self.registry,
        )
        self.otlp_spans = Counter(
            "leadtrail_otlp_spans",
            "Spans received on POST /v1/traces by outcome: stored (a model call stored at once), waiting "
            "(for its trace's user), ignored (not a model call), rejected; and waiting calls once released: "
            "attributed or unattributed",
            ["outcome"],
            registry=self.registry,
        )
        self._newest: dict[str, datetime] = {}
        self.outboxes = OutboxDepth(db, cache_seconds=outbox_cache_seconds)
        self.outboxes.add(OWNER_OUTBOX, outbox.pending_count)
        self.registry.register(self.outboxes)

    def on_commit(self, batch: CommittedBatch) -> None:
        offered: dict[str, int] = {}
        for row in batch.rows:
            channel = row["channel"]
            offered[channel] = offered.get(channel, 0) + 1
        accepted: dict[str, int] = {}
        newest = self._newest
        for row in batch.new_rows:
            channel, ts = row["channel"], row["ts"]
            accepted[channel] = accepted.get(channel, 0) + 1
            if channel not in newest or ts > newest[channel]:
                newest[channel] = ts
        for channel, count in offered.items():
            new = accepted.get(channel, 0)
            if new:
                self.events.labels(channel, "accepted").inc(new)
                self.last_event.labels(channel).set(newest[channel].timestamp())
            if count > new:
                self.events.labels(channel, "duplicate").inc(count - new)
        rejected: dict[str, int] = {}
        for item in batch.rejected:
            rejected[item.channel] = rejected.get(item.channel, 0) + 1
        for channel, count in rejected.items():
            self.events.labels(channel, "rejected").inc(count)
        if batch.rows:
            self.batch_events.observe(len(batch.rows))

    def count_spans(self, outcome: str, spans: int) -> None:
        self.otlp_spans.labels(outcome).inc(spans)

    @web.middleware
    async def time_ingest(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Times POST /v1/events, whatever its answer (401 and 503 included)."""
        if request.path != INGEST_PATH:
            return await handler(request)
        started = time.perf_counter()
        try:
            return await handler(request)
        finally:
            self.request_seconds.observe(time.perf_counter() - started)
