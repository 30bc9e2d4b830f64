"""``leadtrail run``: HTTP ingest, the writer and the bot in one asyncio process (the composition root);
on SQLite the writer's transactions run in a second process (``storage.writer_process``).

Shutdown order keeps the promise of every acknowledgement: stop the bot, commit what the writer holds
(requests arriving meanwhile get 503 + Retry-After), let the requests in flight finish, close the database.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from bot.background import cancel_and_wait
from bot.ingestion.auth import SourceToken
from bot.ingestion.http_app import IngestConfig, ServiceState, create_ingest_app, trace_waiter
from bot.ingestion.trace_wait import TraceWaiter
from bot.runtime.connectors import Connectors, RouteInstaller, prepare_connectors, webhook_routes
from bot.runtime.leadership import Leadership, start_leadership
from bot.runtime.log_scrub import scrub_http_server_log
from bot.runtime.trace_sweeper import sweep_waiting_calls
from bot.settings import Settings
from storage.bi_views import sync_bi_zone
from storage.database import Database, open_database
from storage.search import SearchIndexer
from storage.writer import EventWriter

logger = logging.getLogger(__name__)


def ingest_config(settings: Settings) -> IngestConfig:
    return IngestConfig(
        tokens=tuple(token.get_secret_value().encode() for token in settings.ingest.tokens),
        max_body_bytes=settings.ingest.max_body_bytes,
        local_zone=settings.tz,
        retry_after_seconds=settings.ingest.retry_after_seconds,
        metrics_token=(
            settings.ingest.metrics_token.get_secret_value().encode()
            if settings.ingest.metrics_token
            else None
        ),
        sources=source_tokens(settings),
        prices=settings.ai.price_table(),
        trace_wait_seconds=settings.ai.trace_wait_seconds,
    )


def source_tokens(settings: Settings) -> tuple[SourceToken, ...]:
    return tuple(
        SourceToken(
            source.name,
            source.token.get_secret_value().encode(),
            frozenset(source.channels) if source.channels else None,
            source.rate_per_second,
        )
        for source in settings.ingest.sources
    )


def create_writer(settings: Settings, db: Database) -> EventWriter:
    return EventWriter(
        db,
        max_batch_events=settings.ingest.batch_max_events,
        max_wait_ms=settings.ingest.batch_max_wait_ms,
        settings=settings.store_settings(),
    )


async def start_ingest_site(
    settings: Settings,
    db: Database,
    writer: EventWriter,
    state: ServiceState,
    port: int | None = None,
    routes: list[RouteInstaller] | None = None,
    waiter: TraceWaiter | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve the ingest app with the connectors' webhook ``routes`` (by default those the settings make,
    without workers); returns the runner and the port actually bound (``port=0`` picks one)."""
    scrub_http_server_log()
    if routes is None:
        routes = webhook_routes(settings, db, writer)
    app = create_ingest_app(db, writer, ingest_config(settings), state, connectors=routes, waiter=waiter)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=30)
    await runner.setup()
    site = web.TCPSite(runner, settings.ingest.host, settings.ingest.port if port is None else port)
    await site.start()
    bound = runner.addresses[0][1]
    return runner, int(bound)


async def serve(
    settings: Settings, stop: asyncio.Event, on_ready: Callable[[int], None] | None = None
) -> None:
    db = await open_database(settings.database.url, settings.database.busy_timeout_ms, writer_process=True)
    await sync_bi_zone(db, settings.tz)
    writer = create_writer(settings, db)
    await writer.start()
    indexer = SearchIndexer(db)
    await indexer.start()
    state = ServiceState()
    link = None
    leadership = None
    runner: web.AppRunner | None = None
    connectors: Connectors | None = None
    waiter = trace_waiter(db, writer, ingest_config(settings))
    sweeper: asyncio.Task[None] | None = None
    try:
        connectors = await prepare_connectors(settings, db, writer)
        runner, port = await start_ingest_site(
            settings, db, writer, state, routes=connectors.routes, waiter=waiter
        )
        sweeper = asyncio.create_task(sweep_waiting_calls(waiter), name="trace-sweeper")
        if not settings.ingest.tokens and not settings.ingest.sources:
            logger.warning(
                "ingest.tokens and ingest.sources are empty: every POST /v1/events will be refused with 401"
            )
        if settings.telegram.token is not None:
            from bot.runtime.telegram_link import TelegramLink
            from bot.telegram.dispatcher import build_dispatcher

            link = TelegramLink(settings, build_dispatcher(settings, db, writer), state)
        # Polling, the scheduler, delivery and the connectors' workers run in the leader only.
        leadership = await start_leadership(settings, db, writer, link, state, connectors.workers)
        # Everything built at start-up (modules, settings, engines, about 100k objects) lives as long as
        # the process: out of the collector's sight, a full collection under load takes a few ms, not 80.
        gc.collect()
        gc.freeze()
        logger.info("LeadTrail is ready: ingest on http://%s:%d", settings.ingest.host, port)
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
        logger.info("stopping: finishing requests in flight and committing what was acknowledged")
    finally:
        # The writer's drain starts at once, beside the loops' stop: it refuses newcomers (WriterClosed,
        # answered 503 while the listener still runs, so senders retry instead of meeting a closed port)
        # and commits what it holds, even while a loop waits for the database's lock before it stops.
        await asyncio.gather(writer.close(), _stop_loops(leadership, connectors, sweeper))
        if runner is not None:
            await runner.cleanup()
        await indexer.close()
        await db.close()
        logger.info("stopped")


async def _stop_loops(
    leadership: Leadership | None, connectors: Connectors | None, sweeper: asyncio.Task[None] | None
) -> None:
    """Polling, the scheduler and delivery, the connectors' workers and the OTLP sweep, each stopped for
    good. What they were writing is safe to cut: each picks its work up from the database at the next
    start."""
    if leadership is not None:
        await leadership.stop()
    if connectors is not None:
        await connectors.stop()
    await cancel_and_wait(sweeper)


async def run_until_signal(settings: Settings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await serve(settings, stop)
