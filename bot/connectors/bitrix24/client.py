"""A small Bitrix24 REST client over an inbound webhook URL (``https://<portal>/rest/<user>/<secret>/``).

Bitrix24 lets a webhook make about 2 requests a second (a leaky bucket) and answers 503
``QUERY_LIMIT_EXCEEDED`` beyond that; the client keeps its own pace under the limit and backs off on 503.
The webhook URL holds a secret: it never appears in an error message or a log line.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
import orjson

from bot.connectors.pace import LeakyBucket

RATE_LIMITED = "QUERY_LIMIT_EXCEEDED"


class Bitrix24Error(Exception):
    """A call failed; ``code`` is Bitrix24's error code (or ours: NETWORK, HTTP_<status>, BAD_ANSWER)."""

    def __init__(self, code: str, description: str = "") -> None:
        super().__init__(f"{code}: {description}" if description else code)
        self.code = code
        self.description = description


def _flatten(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}[{key}]" if prefix else str(key), item, out)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _flatten(f"{prefix}[{index}]", item, out)
    elif value is None:
        out.append((prefix, ""))
    else:
        out.append((prefix, str(value)))


def build_query(params: Mapping[str, Any]) -> str:
    """PHP-style nested query (``filter[ORIGIN_ID]=x&select[0]=ID``), the form ``batch`` commands take."""
    pairs: list[tuple[str, str]] = []
    _flatten("", params, pairs)
    return "&".join(f"{quote(key, safe='[]')}={quote(value, safe='')}" for key, value in pairs)


class Bitrix24Client:
    """``call`` and ``batch`` against one portal; one instance per process shares the pace."""

    def __init__(
        self,
        webhook_url: str,
        *,
        requests_per_second: float = 2.0,
        timeout_seconds: float = 20.0,
        rate_limit_retries: int = 4,
    ) -> None:
        self._base = webhook_url if webhook_url.endswith("/") else webhook_url + "/"
        self._bucket = LeakyBucket(requests_per_second)
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._rate_limit_retries = rate_limit_retries
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def call(self, method: str, params: Mapping[str, Any] | None = None) -> Any:
        """The method's ``result``; raises :class:`Bitrix24Error` with Bitrix24's code otherwise."""
        for attempt in range(self._rate_limit_retries + 1):
            await self._bucket.wait()
            try:
                return await self._post(method, params or {})
            except Bitrix24Error as exc:
                if exc.code != RATE_LIMITED or attempt == self._rate_limit_retries:
                    raise
                backoff = min(0.5 * 2.0**attempt, 10.0)
                self._bucket.pause(backoff)
        raise AssertionError("unreachable")

    async def batch(self, commands: Mapping[str, tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
        """Up to 50 calls in one request: ``{key: result}``, a failed command's key maps to its error."""
        if len(commands) > 50:
            raise ValueError("Bitrix24 takes at most 50 commands in one batch")
        cmd = {key: f"{method}?{build_query(params)}" for key, (method, params) in commands.items()}
        answer = await self.call("batch", {"halt": 0, "cmd": cmd})
        if not isinstance(answer, dict):
            raise Bitrix24Error("BAD_ANSWER", "batch result is not an object")
        results = answer.get("result") or {}
        errors = answer.get("result_error") or {}
        out: dict[str, Any] = {}
        for key in commands:
            if isinstance(errors, dict) and key in errors:
                error = errors[key] or {}
                out[key] = Bitrix24Error(
                    str(error.get("error", "ERROR")), str(error.get("error_description", ""))
                )
            elif isinstance(results, dict) and key in results:
                out[key] = results[key]
            else:
                out[key] = Bitrix24Error("BAD_ANSWER", "command missing from batch result")
        return out

    async def _post(self, method: str, params: Mapping[str, Any]) -> Any:
        try:
            async with self._http().post(
                f"{self._base}{method}.json",
                data=orjson.dumps(params),
                headers={"Content-Type": "application/json"},
            ) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Bitrix24Error("NETWORK", type(exc).__name__) from None
        try:
            answer = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            answer = None
        if isinstance(answer, dict) and "error" in answer:
            description = str(answer.get("error_description") or "")[:160]
            raise Bitrix24Error(str(answer["error"])[:64], description)
        if status >= 400:
            raise Bitrix24Error(f"HTTP_{status}")
        if not isinstance(answer, dict) or "result" not in answer:
            raise Bitrix24Error("BAD_ANSWER", "no 'result' in the answer")
        return answer["result"]
