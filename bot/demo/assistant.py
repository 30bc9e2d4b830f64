"""The demo's Telegram clients talk to the example salon assistant, offline, in the demo month's time.

Each :class:`TelegramMessage` of the month becomes an aiogram ``Update`` fed to the assistant's real
dispatcher (``bot.demo.salon_assistant.bot.create_dispatcher``: its router, its rules, LeadTrail's tracker
registered as a salon would). So the demo's Telegram dialogs are logged by the SDK's middleware — the
incoming message, the answer with its ``response_time_ms``, the intent the rules found — and the lead,
booking and refusal events by the example's own code, all sent on through the same sink (the demo's
``EventClient``) as the rest of the month. Nothing leaves the process: the bot's session answers Bot API
calls in memory, and a replay clock puts every exchange at its moment of the month, the assistant
"thinking" for the message's ``think_ms`` before it answers.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import datetime
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.base import BaseSession
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update

from bot.demo.booking_system import Webhook
from bot.demo.generator import DemoMonth, TelegramMessage
from bot.demo.salon_assistant.bot import create_dispatcher
from leadtrail_sdk.middleware import EventSink

# A well-formed token of a bot that does not exist: nothing here ever reaches Telegram.
BOT_TOKEN = "7000000001:LeadTrail-demo-offline-assistant"
BOT_USER = {"id": 7000000001, "is_bot": True, "first_name": "Усы · ассистент", "username": "usy_demo_bot"}


class ReplayClock:
    """``time.time()`` of the replayed month: each message's moment, moved on as the assistant thinks."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def set(self, moment: datetime) -> None:
        self.now = moment.timestamp()


class OfflineSession(BaseSession):
    """A Bot API session that never touches the network: every method is answered in memory.

    A sent message comes back as Telegram would return it (parsed by aiogram's own ``check_response``),
    dated by the replay clock, so the tracker's request middleware sees an ordinary answer. Methods that
    name no chat get ``true``, as most of those do in Telegram.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__()
        self.clock = clock
        self._in_chat: Counter[int] = Counter()

    async def make_request(
        self,
        bot: Bot,
        method: TelegramMethod[TelegramType],
        timeout: int | None = None,  # noqa: ASYNC109 - aiogram's signature
    ) -> TelegramType:
        chat_id = getattr(method, "chat_id", None)
        result: object = True
        if isinstance(chat_id, int):
            # The demo's client messages are odd in each chat, each answered once: answers are even.
            self._in_chat[chat_id] += 2
            result = {
                "message_id": self._in_chat[chat_id],
                "date": int(self.clock()),
                "chat": {"id": chat_id, "type": "private"},
                "from": BOT_USER,
                "text": getattr(method, "text", None) or "",
            }
        response = self.check_response(
            bot=bot, method=method, status_code=200, content=self.json_dumps({"ok": True, "result": result})
        )
        return cast(TelegramType, response.result)

    async def stream_content(
        self,
        url: str,
        headers: dict[str, Any] | None = None,
        timeout: int = 30,  # noqa: ASYNC109 - aiogram's signature
        chunk_size: int = 65536,
        raise_for_status: bool = True,
    ) -> AsyncGenerator[bytes, None]:
        raise NotImplementedError("the demo assistant downloads nothing")
        yield b""  # pragma: no cover - makes this an async generator, as the base class declares

    async def close(self) -> None:
        return None


class ThinkingTime(BaseMiddleware):
    """Moves the replay clock on by the message's ``think_seconds`` before the assistant's handler runs.

    Stands for the time a real assistant spends (a model, a CRM look-up) between receiving and answering.
    """

    def __init__(self, clock: ReplayClock) -> None:
        self.clock = clock

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        self.clock.now += data.get("think_seconds", 0.0)
        return await handler(event, data)


def _update(bot: Bot, number: int, message: TelegramMessage) -> Update:
    person = {"first_name": message.first_name, "last_name": message.last_name}
    return Update.model_validate(
        {
            "update_id": number,
            "message": {
                "message_id": message.message_id,
                "date": int(message.at.timestamp()),
                "chat": {"id": message.chat_id, "type": "private", **person},
                "from": {"id": message.chat_id, "is_bot": False, "language_code": "ru", **person},
                "text": message.text,
            },
        },
        context={"bot": bot},
    )


async def play_month(
    month: DemoMonth, sink: EventSink, deliver: Callable[[Webhook], Awaitable[None]]
) -> None:
    """Plays the month in order: events logged into ``sink`` as they are, Telegram messages through the
    assistant, the YCLIENTS webhooks handed to ``deliver``."""
    clock = ReplayClock()
    bot = Bot(BOT_TOKEN, session=OfflineSession(clock))
    dispatcher = create_dispatcher(bot, sink, clock=clock)
    dispatcher.message.middleware(ThinkingTime(clock))
    try:
        for number, item in enumerate(month.history, start=1):
            if isinstance(item, TelegramMessage):
                clock.set(item.at)
                await dispatcher.feed_update(
                    bot, _update(bot, number, item), think_seconds=item.think_ms / 1000
                )
            elif isinstance(item, Webhook):
                await deliver(item)
            else:
                sink.log(item)
    finally:
        await bot.session.close()


class NumberingSink:
    """Gives the assistant's events ids that depend only on the seed (``demo-tg-…``) and keeps a copy.

    The same seed then stores the same events, and the showcase client is picked from what was logged.
    """

    def __init__(self, target: EventSink | None = None) -> None:
        self.target = target
        self.logged: list[dict[str, Any]] = []
        self._numbers = itertools.count(1)

    def log(self, event: dict[str, Any]) -> None:
        if "event_id" not in event:
            event = {"event_id": f"demo-tg-{next(self._numbers):06d}", **event}
        self.logged.append(event)
        if self.target is not None:
            self.target.log(event)
