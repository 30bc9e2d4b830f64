"""``POST /v1/yclients/{webhook_token}``: YCLIENTS' webhooks (it cannot send headers, so the secret is in
the URL). One webhook object or a list of them; the answer comes after the events are committed.

401 wrong token (or the link is off), 400 not JSON, 413 over ``ingest.max_body_bytes``, 503 storage
unavailable (YCLIENTS delivers again); everything else is 200 — an object of another resource, or one that
cannot be read (kept in quarantine), must not make YCLIENTS repeat the whole body forever.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass

import orjson
from aiohttp import web

from bot.connectors.yclients.intake import YclientsIntake
from storage.database import StorageUnavailable

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/v1/yclients/{token}"


@dataclass(frozen=True)
class YclientsWebhook:
    """The expected token (None: the link is off) and where the webhooks go."""

    token: bytes | None
    intake: YclientsIntake | None
    retry_after_seconds: int = 5

    def install(self, app: web.Application) -> None:
        app[WEBHOOK_KEY] = self
        app.router.add_post(WEBHOOK_PATH, receive_webhook)


WEBHOOK_KEY = web.AppKey("yclients_webhook", YclientsWebhook)


def _error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


async def receive_webhook(request: web.Request) -> web.Response:
    hook = request.app[WEBHOOK_KEY]
    if hook.token is None or hook.intake is None:
        return _error(401, "the YCLIENTS link is off: [yclients] webhook_token is not set")
    if not hmac.compare_digest(request.match_info["token"].encode(), hook.token):
        return _error(401, "wrong webhook token in the URL")
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError:
        return _error(400, "the body is not JSON")
    if isinstance(payload, dict):
        payload = [payload]
    if not isinstance(payload, list):
        return _error(400, "expected a webhook object or a JSON array of them")
    try:
        result = await hook.intake.take(payload, source="yclients")
    except StorageUnavailable as exc:
        logger.warning("yclients: webhook not stored, storage unavailable (%s)", type(exc).__name__)
        return _error(
            503,
            "storage is unavailable, deliver again later",
            **{"Retry-After": str(hook.retry_after_seconds)},
        )
    return web.json_response(result.as_dict())
