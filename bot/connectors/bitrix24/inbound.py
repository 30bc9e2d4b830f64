"""``POST /v1/bitrix24/events``: Bitrix24's outbound webhooks (form-encoded, token in ``auth[...]``).

Bitrix24 never retries a delivery, so the handler only stores a fetch job and answers; the worker
fetches the entity and records the events.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from storage import crm_jobs
from storage.database import Database

logger = logging.getLogger(__name__)

INBOUND_PATH = "/v1/bitrix24/events"
ENTITY_BY_EVENT = {
    "ONCRMLEADADD": "lead",
    "ONCRMLEADUPDATE": "lead",
    "ONCRMDEALADD": "deal",
    "ONCRMDEALUPDATE": "deal",
}


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Bitrix24Inbound:
    """What the handler needs: the expected token (None: refuse everything), storage and a wake-up."""

    application_token: bytes | None = None
    db: Database | None = None
    wake: Callable[[], None] = field(default=_nothing)

    def install(self, app: web.Application) -> None:
        """Serve ``POST /v1/bitrix24/events`` on the ingest app (401 while the link is not configured)."""
        app[INBOUND_KEY] = self
        app.router.add_post(INBOUND_PATH, post_bitrix24_event)


INBOUND_KEY = web.AppKey("bitrix24_inbound", Bitrix24Inbound)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def post_bitrix24_event(request: web.Request) -> web.Response:
    inbound = request.app.get(INBOUND_KEY) or Bitrix24Inbound()
    if inbound.application_token is None or inbound.db is None:
        return _error(401, "the Bitrix24 link is not configured ([bitrix24] application_token)")
    form = await request.post()
    offered = form.get("auth[application_token]")
    if not isinstance(offered, str) or not hmac.compare_digest(offered.encode(), inbound.application_token):
        return _error(401, "missing or wrong auth[application_token]")
    event = str(form.get("event") or "").upper()
    entity = ENTITY_BY_EVENT.get(event)
    if entity is None:
        return web.json_response({"status": "ignored", "event": event[:64]})
    entity_id = str(form.get("data[FIELDS][ID]") or "")
    if not entity_id.isdigit() or len(entity_id) > 18:
        return _error(400, "data[FIELDS][ID] must be a positive integer")
    try:
        async with inbound.db.sessions() as session, session.begin():
            await crm_jobs.enqueue(session, "fetch", {"event": event, "entity": entity, "id": int(entity_id)})
    except (SQLAlchemyError, OSError) as exc:
        logger.warning("bitrix24: cannot queue an inbound event: %s", type(exc).__name__)
        return _error(503, "storage is unavailable")
    inbound.wake()
    return web.json_response({"status": "queued"})


def inbound_for(token: str | None, db: Database, wake: Callable[[], None] | None) -> Bitrix24Inbound:
    return Bitrix24Inbound(token.encode() if token else None, db, wake or _nothing)
