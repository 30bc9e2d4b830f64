"""A local stand-in for an OpenAI-compatible chat API, answering as YandexGPT's compatible API does
(``POST {base}/chat/completions``, the model's URI echoed back, token ``usage`` in the answer), so the real
``openai`` client and its instrumentation run unchanged against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.local_server import serving

ANSWER = "Записала вас на завтра, 12:00."
PROMPT_TOKENS, COMPLETION_TOKENS = 2100, 160


@dataclass
class FakeOpenAI:
    base_url: str
    requests: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    app = web.Application()
    server = FakeOpenAI("")

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        server.requests.append(body)
        return web.json_response(
            {
                "id": f"chatcmpl-{len(server.requests)}",
                "object": "chat.completion",
                "created": 1_741_600_800,
                "model": body["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": ANSWER}, "finish_reason": "stop"}
                ],
                "usage": {
                    "prompt_tokens": PROMPT_TOKENS,
                    "completion_tokens": COMPLETION_TOKENS,
                    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                },
            }
        )

    app.router.add_post("/v1/chat/completions", completions)
    async with serving(app) as port:
        server.base_url = f"http://127.0.0.1:{port}/v1"
        yield server
