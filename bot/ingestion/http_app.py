"""HTTP ingest: ``POST /v1/events`` and ``GET /healthz`` (design.md, "HTTP ingest").

Answers are sent only after the events are committed, so a 202 or 207 is a promise kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client.aiohttp import make_aiohttp_handler

from bot.ingestion.auth import IngestAuth, SourceToken
from bot.ingestion.metrics import IngestMetrics
from bot.ingestion.openapi import serve_openapi
from bot.ingestion.otlp_http import TRACES_PATH, TracesEndpoint
from bot.ingestion.payloads import JSON_TYPES, NDJSON_TYPES, UndecodableBody, decode_body
from bot.ingestion.pipeline import ingest_items, undecodable
from bot.ingestion.trace_wait import TraceWaiter
from reports.pricing import PriceTable
from storage.database import Database, StorageUnavailable
from storage.writer import EventWriter

logger = logging.getLogger(__name__)


@dataclass
class ServiceState:
    """What ``/healthz`` reports besides storage; the bot part updates ``telegram``."""

    telegram: str = "disabled"
    scheduler: str = "off"
    notes: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestConfig:
    tokens: tuple[bytes, ...]
    max_body_bytes: int
    local_zone: tzinfo
    retry_after_seconds: int
    metrics_token: bytes | None = None
    sources: tuple[SourceToken, ...] = ()
    prices: PriceTable | None = None
    trace_wait_seconds: float = 120.0


DB_KEY = web.AppKey("db", Database)
WRITER_KEY = web.AppKey("writer", EventWriter)
CONFIG_KEY = web.AppKey("ingest_config", IngestConfig)
STATE_KEY = web.AppKey("state", ServiceState)
METRICS_KEY = web.AppKey("metrics", IngestMetrics)
AUTH_KEY = web.AppKey("auth", IngestAuth)
WAITER_KEY = web.AppKey("trace_waiter", TraceWaiter)


@web.middleware
async def unreadable_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body that cannot be read (``Content-Encoding: gzip`` on a body that is not gzip, a connection cut
    mid-body) is the sender's 400 on every route, the connectors' webhooks included, never a 500."""
    try:
        return await handler(request)
    except web.RequestPayloadError as exc:
        return _error(400, f"the body cannot be read: {exc}")


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


async def post_events(request: web.Request) -> web.Response:
    config = request.app[CONFIG_KEY]
    auth = request.app[AUTH_KEY]
    source = auth.identify(request.headers.get("Authorization"))
    if source is None:
        return _error(401, "missing or unknown token: send 'Authorization: Bearer <token>'")
    if wait := auth.retry_after(source):
        logger.warning("source %s is over its rate limit (ingest.sources)", source.name)
        return _error(429, f"over the rate limit of source {source.name!r}", **{"Retry-After": str(wait)})
    media_type = request.content_type
    if media_type not in JSON_TYPES and media_type not in NDJSON_TYPES:
        return _error(
            415, f"unsupported Content-Type {media_type!r}: use application/json or application/x-ndjson"
        )
    if request.content_length is not None and request.content_length > config.max_body_bytes:
        return _error(413, f"body is over {config.max_body_bytes} bytes (ingest.max_body_bytes)")
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"body is over {config.max_body_bytes} bytes (ingest.max_body_bytes)")
    writer = request.app[WRITER_KEY]
    retry_after = str(config.retry_after_seconds)
    try:
        try:
            items = decode_body(body, media_type)
        except UndecodableBody as exc:
            await writer.write([], [undecodable("http", body, str(exc))])
            return _error(400, str(exc))
        outcome = await ingest_items(
            items, writer, config.local_zone, source="http", channels=source.channels, prices=config.prices
        )
    except StorageUnavailable:
        return _error(503, "storage is unavailable, retry later", **{"Retry-After": retry_after})
    if not outcome.errors:
        status = 202
    elif outcome.accepted or outcome.duplicates:
        status = 207
    else:
        status = 422
    if outcome.errors:
        logger.warning("rejected %d of %d events from HTTP", outcome.rejected, len(items))
    return web.json_response(outcome.as_dict(), status=status)


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    try:
        await request.app[DB_KEY].ping()
    except StorageUnavailable:
        return web.json_response(
            {"status": "down", "storage": "down", "telegram": state.telegram, "scheduler": state.scheduler},
            status=503,
        )
    return web.json_response(
        {"status": "ok", "storage": "ok", "telegram": state.telegram, "scheduler": state.scheduler}
    )


async def get_metrics(request: web.Request) -> web.StreamResponse:
    """Prometheus text format; behind a bearer token only when ``ingest.metrics_token`` is set."""
    token = request.app[CONFIG_KEY].metrics_token
    header = request.headers.get("Authorization")
    if token is not None and IngestAuth.from_tokens((token,)).identify(header) is None:
        return _error(401, "missing or wrong token: send 'Authorization: Bearer <ingest.metrics_token>'")
    metrics = request.app[METRICS_KEY]
    await metrics.outboxes.refresh()
    return await make_aiohttp_handler(metrics.registry)(request)


def trace_waiter(db: Database, writer: EventWriter, config: IngestConfig) -> TraceWaiter:
    return TraceWaiter(
        db, writer, zone=config.local_zone, prices=config.prices, wait_seconds=config.trace_wait_seconds
    )


def create_ingest_app(
    db: Database,
    writer: EventWriter,
    config: IngestConfig,
    state: ServiceState | None = None,
    connectors: Sequence[Callable[[web.Application], None]] = (),
    waiter: TraceWaiter | None = None,
) -> web.Application:
    """The ingest API; each of ``connectors`` adds its own webhook routes (a CRM, a booking system).

    ``waiter`` keeps the OTLP model calls waiting for their trace's user; ``leadtrail run`` passes the one
    its sweeper releases (``bot.runtime.trace_sweeper``).
    """
    # aiohttp enforces the size while reading a body that came without Content-Length.
    app = web.Application(client_max_size=config.max_body_bytes)
    app[DB_KEY] = db
    app[WRITER_KEY] = writer
    app[CONFIG_KEY] = config
    app[STATE_KEY] = state or ServiceState()
    app[AUTH_KEY] = auth = IngestAuth.from_tokens(config.tokens, config.sources)
    app[WAITER_KEY] = waiter = waiter or trace_waiter(db, writer, config)
    app.router.add_post("/v1/events", post_events)
    traces = TracesEndpoint(
        waiter,
        writer,
        auth,
        max_body_bytes=config.max_body_bytes,
        retry_after_seconds=config.retry_after_seconds,
    )
    app.router.add_post(TRACES_PATH, traces.post)
    app.router.add_get("/healthz", healthz)
    metrics = IngestMetrics(db)
    writer.observe(metrics.on_commit)
    waiter.observe(metrics.count_spans)
    app[METRICS_KEY] = metrics
    app.middlewares.append(metrics.time_ingest)
    app.middlewares.append(unreadable_body)
    app.router.add_get("/metrics", get_metrics)
    for install in connectors:
        install(app)
    app.router.add_get("/openapi.json", serve_openapi)
    return app
