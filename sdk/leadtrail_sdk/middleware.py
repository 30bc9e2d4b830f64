"""aiogram 3 integration for the salon's own bot: every client message and every answer, timed.

``LeadTrailTracker(client).setup(dp, bot)`` adds an outer middleware on ``dp.update`` (the exchange: who
wrote and when the update arrived) and a request middleware on ``bot.session`` (what the bot sent). The
current exchange lives in a ``ContextVar``, so handler code reaches it with no extra arguments and tasks
spawned by a handler still see it. The tracker must never cost the salon a reply: every error inside it
is logged by type only (no texts, no phones) and swallowed.

``clock`` (a ``time.time``-like callable) is for replaying history, as ``leadtrail demo`` does: with it the
tracker times answers and stamps every event it logs by that clock instead of the real one. Without it
answers are timed by ``time.monotonic`` and the client stamps events when they are logged.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot, Dispatcher
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods import (
    CopyMessage,
    ForwardMessage,
    SendAnimation,
    SendAudio,
    SendContact,
    SendDice,
    SendDocument,
    SendInvoice,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendPoll,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVideoNote,
    SendVoice,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from aiogram.types import Message, TelegramObject, Update

from leadtrail_sdk.stamps import utc_iso

logger = logging.getLogger(__name__)

CHANNEL = "telegram"
# Methods that put a message in front of the client; chat actions, edits and drafts are not answers.
_ANSWERS: frozenset[type[TelegramMethod[Any]]] = frozenset(
    {
        SendMessage,
        SendPhoto,
        SendDocument,
        SendVideo,
        SendAnimation,
        SendAudio,
        SendVoice,
        SendVideoNote,
        SendSticker,
        SendLocation,
        SendVenue,
        SendContact,
        SendPoll,
        SendDice,
        SendInvoice,
        SendMediaGroup,
        CopyMessage,
        ForwardMessage,
    }
)


class EventSink(Protocol):
    """What the tracker needs from :class:`leadtrail_sdk.client.EventClient`."""

    def log(self, event: dict[str, Any]) -> None: ...


@dataclass(slots=True)
class Exchange:
    """One update from one client and what the bot answered while handling it."""

    user_id: str
    chat_id: int
    arrived: float  # when the update reached the dispatcher: time.monotonic(), or the tracker's clock
    fields: dict[str, Any] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)
    open: bool = True


_CURRENT: ContextVar[Exchange | None] = ContextVar("leadtrail_exchange", default=None)


def _swallowed(where: str, error: Exception) -> None:
    """The tracker's own failure: logged by type only (the message could quote a client's text), then dropped.

    Every entry point catches ``Exception`` itself (try/except costs nothing until something is raised,
    and this runs on every update); the bot's own errors are never caught here.
    """
    logger.error("LeadTrail tracker: %s failed with %s; the bot goes on", where, type(error).__name__)


# These run for every update, so type() is used where isinstance() would go through pydantic's slow
# metaclass check (aiogram never subclasses its types and methods).


def _name(first: str, last: str | None) -> str:
    return f"{first} {last}" if last else first


def _answer_text(method: TelegramMethod[Any]) -> str | None:
    if type(method) is SendMessage:
        return method.text
    if type(method) is SendMediaGroup:
        return next((item.caption for item in method.media if isinstance(item.caption, str)), None)
    for attribute in ("text", "caption", "question"):
        value = getattr(method, attribute, None)
        if isinstance(value, str):
            return value
    return None


def _message_id(result: object) -> int | None:
    if isinstance(result, Message):  # what sessions return, though the chain is typed as Response
        return result.message_id
    if isinstance(result, Response):
        result = result.result
    if isinstance(result, list) and result:
        result = result[0]
    return result.message_id if isinstance(result, Message) else None


class LeadTrailTracker:
    """Records the salon bot's dialog as LeadTrail events; ``annotate`` and ``log_event`` are for handlers."""

    def __init__(self, client: EventSink, *, clock: Callable[[], float] | None = None) -> None:
        self.client = client
        self.clock = clock
        # Answer timing: a steady clock for live bots, the given one when replaying history.
        self._elapsed: Callable[[], float] = time.monotonic if clock is None else clock
        self._now: Callable[[], float] = time.time if clock is None else clock

    def setup(self, dp: Dispatcher, bot: Bot) -> None:
        """Register both middlewares: incoming updates on ``dp`` and outgoing answers on ``bot.session``."""
        dp.update.outer_middleware(_UpdateMiddleware(self))
        bot.session.middleware(_AnswerMiddleware(self))

    def annotate(self, **fields: Any) -> None:
        """Attach fields (intent, confidence, scenario, action, crm_id, lead_id, …) to the current answers.

        The model call behind the answer goes here too: ``annotate(model="yandexgpt-lite", input_tokens=812,
        output_tokens=64)`` (and ``cost`` when the assistant knows it; else LeadTrail prices the call). A
        model call that is not the answer (classifying the intent first) is an event of its own:
        ``log_event("llm_call", model=..., input_tokens=..., output_tokens=...)``.
        """
        try:
            exchange = _CURRENT.get()
            if exchange is None:
                logger.debug("LeadTrail annotate() outside an update is ignored")
                return
            exchange.fields.update(fields)
        except Exception as error:
            _swallowed("annotate", error)

    def log_event(
        self, event: str, *, user_id: str | None = None, channel: str = CHANNEL, **fields: Any
    ) -> None:
        """Log a business event (lead_created, appointment_booked, refusal, …) for the current client.

        Outside an update (a scheduler, a CRM callback) pass ``user_id`` explicitly.
        """
        try:
            if user_id is None:
                exchange = _CURRENT.get()
                if exchange is None:
                    logger.warning(
                        "LeadTrail log_event(%r) outside an update needs user_id; not logged", event
                    )
                    return
                user_id = exchange.user_id
            logged = {**fields, "event": event, "user_id": user_id, "channel": channel}
            if self.clock is not None and "timestamp" not in logged:
                logged["timestamp"] = utc_iso(self.clock())
            self.client.log(logged)
        except Exception as error:
            _swallowed("log_event", error)

    # ------------------------------------------------------------------ called by the middlewares

    def begin(self, update: Update) -> Exchange | None:
        """The exchange of a private message or button press (a client talking to the bot), else None."""
        arrived = self._elapsed()
        message = update.message
        if message is not None:
            user = message.from_user
            if message.chat.type != "private" or user is None:
                return None
            return Exchange(f"tg_{user.id}", message.chat.id, arrived)
        query = update.callback_query
        if query is not None and query.message is not None and query.message.chat.type == "private":
            return Exchange(f"tg_{query.from_user.id}", query.message.chat.id, arrived)
        return None

    def received(self, exchange: Exchange, message: Message) -> None:
        event: dict[str, Any] = {
            "event": "message_received",
            "user_id": exchange.user_id,
            "channel": CHANNEL,
            "message_id": message.message_id,
        }
        if self.clock is not None:
            event["timestamp"] = utc_iso(exchange.arrived)
        user = message.from_user
        if user is not None:
            event["name"] = _name(user.first_name, user.last_name)
        if (text := message.text or message.caption) is not None:
            event["message"] = text
        self.client.log(event)

    def answered(self, method: TelegramMethod[Any], result: object) -> None:
        """Record an answer: timed and annotated inside its exchange, plain outside any update."""
        chat_id = getattr(method, "chat_id", None)
        if not isinstance(chat_id, int) or chat_id <= 0:
            return  # channels and groups are not a client's dialog
        exchange = _CURRENT.get()
        if exchange is not None and exchange.chat_id != chat_id:
            return  # e.g. a notice to a manager while handling a client's message
        event: dict[str, Any] = {
            "timestamp": utc_iso(self._now()),
            "event": "assistant_response",
            "user_id": f"tg_{chat_id}",
            "channel": CHANNEL,
        }
        if (text := _answer_text(method)) is not None:
            event["assistant_response"] = text
        if (message_id := _message_id(result)) is not None:
            event["message_id"] = message_id
        if exchange is None:
            self.client.log(event)
            return
        event["response_time_ms"] = int((self._elapsed() - exchange.arrived) * 1000)
        if exchange.open:
            exchange.answers.append(event)  # logged at the end, with whatever annotate() adds meanwhile
        else:
            self.client.log({**exchange.fields, **event})

    def finish(self, exchange: Exchange) -> None:
        exchange.open = False
        for event in exchange.answers:
            self.client.log({**exchange.fields, **event})
        exchange.answers.clear()


class _UpdateMiddleware(BaseMiddleware):
    """Outer middleware on ``dp.update``: opens the exchange before the handlers, logs its answers after."""

    def __init__(self, tracker: LeadTrailTracker) -> None:
        self.tracker = tracker

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        if type(event) is not Update:  # always an Update on dp.update; this narrows the type
            return await handler(event, data)
        try:
            exchange = self.tracker.begin(event)
        except Exception as error:
            _swallowed("update", error)
            exchange = None
        if exchange is None:
            return await handler(event, data)
        if event.message is not None:
            try:
                self.tracker.received(exchange, event.message)
            except Exception as error:
                _swallowed("message_received", error)
        token = _CURRENT.set(exchange)
        try:
            return await handler(event, data)
        finally:
            _CURRENT.reset(token)
            try:
                self.tracker.finish(exchange)
            except Exception as error:
                _swallowed("assistant_response", error)


class _AnswerMiddleware(BaseRequestMiddleware):
    """Request middleware on the bot's session: sees every method after Telegram accepted it."""

    def __init__(self, tracker: LeadTrailTracker) -> None:
        self.tracker = tracker

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        response = await make_request(bot, method)
        if type(method) in _ANSWERS:
            try:
                self.tracker.answered(method, response)
            except Exception as error:
                _swallowed("assistant_response", error)
        return response
