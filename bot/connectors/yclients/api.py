"""A small client of the YCLIENTS REST API (``https://api.yclients.com/api/v1``; Altegio's has the same
shape): the records of a company changed in a time range, page by page.

Authorization is ``Bearer <partner token>, User <user token>``; every answer is ``{"success", "data",
"meta"}``. YCLIENTS allows 5 requests a second per address: the client keeps its own pace under that and
waits longer after a 429. The tokens never appear in an error message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, tzinfo
from typing import Any

import aiohttp
import orjson

from bot.connectors.pace import LeakyBucket

PAGE_SIZE = 200
ACCEPT = "application/vnd.yclients.v2+json"
RATE_LIMIT_PAUSE_SECONDS = 2.0
RATE_LIMIT_RETRIES = 5


class RateLimited(Exception):
    """YCLIENTS said 429: wait (the pace is pushed back) and try the same call again."""


class YclientsApiError(Exception):
    """A call failed: ``retryable`` for network trouble, 429 and 5xx; else the setup is wrong."""

    def __init__(self, reason: str, *, retryable: bool) -> None:
        super().__init__(reason)
        self.retryable = retryable


class YclientsApi:
    def __init__(
        self,
        base_url: str,
        partner_token: str,
        user_token: str,
        *,
        requests_per_second: float,
        timeout_seconds: float,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._headers = {
            "Authorization": f"Bearer {partner_token}, User {user_token}",
            "Accept": ACCEPT,
            "Content-Type": "application/json",
        }
        self._bucket = LeakyBucket(requests_per_second)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _get(self, path: str, params: dict[str, str | int]) -> Any:
        """One call; a 429 (YCLIENTS counts differently from our clock) is waited out and tried again."""
        for _ in range(RATE_LIMIT_RETRIES):
            try:
                return await self._get_once(path, params)
            except RateLimited:
                continue
        raise YclientsApiError("HTTP 429: still too many requests after waiting", retryable=True)

    async def _get_once(self, path: str, params: dict[str, str | int]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers)
        await self._bucket.wait()
        try:
            async with self._session.get(f"{self._base}{path}", params=params) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise YclientsApiError(f"network: {type(exc).__name__}", retryable=True) from None
        if status == 429:
            self._bucket.pause(RATE_LIMIT_PAUSE_SECONDS)
            raise RateLimited
        if status != 200:
            raise YclientsApiError(
                f"HTTP {status}: {_message(body)}", retryable=status == 429 or status >= 500
            )
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise YclientsApiError("the answer is not JSON", retryable=True) from None
        if not isinstance(answer, dict) or answer.get("success") is not True:
            raise YclientsApiError(f"refused: {_message(body)}", retryable=False)
        return answer

    async def changed_records(
        self, company_id: int, since: datetime, until: datetime, zone: tzinfo
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """The company's records (deleted ones too) created or changed in ``[since, until)``, a page at a
        time; YCLIENTS reads the bounds as the salon's local time."""
        params: dict[str, str | int] = {
            "changed_after": f"{since.astimezone(zone):%Y-%m-%dT%H:%M:%S}",
            "changed_before": f"{until.astimezone(zone):%Y-%m-%dT%H:%M:%S}",
            "with_deleted": 1,
            "count": PAGE_SIZE,
        }
        page = 1
        while True:
            answer = await self._get(f"/records/{company_id}", {**params, "page": page})
            records = [item for item in answer.get("data") or [] if isinstance(item, dict)]
            if records:
                yield records
            total = (answer.get("meta") or {}).get("total_count")
            if len(records) < PAGE_SIZE or (isinstance(total, int) and page * PAGE_SIZE >= total):
                return
            page += 1


def _message(body: bytes) -> str:
    """YCLIENTS' own reason (``meta.message``), shortened; never the request (it carries the tokens)."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        return "no details"
    meta = answer.get("meta") if isinstance(answer, dict) else None
    message = meta.get("message") if isinstance(meta, dict) else None
    return str(message)[:200] if message else "no details"
