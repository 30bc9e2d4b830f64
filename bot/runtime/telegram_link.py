"""Keeping the LeadTrail bot connected without ever holding up ingestion.

If the Bot API is unreachable (an outage, a block, a wrong token), this says so once in the log, marks
``telegram: down`` for /healthz, and keeps retrying with backoff while events keep flowing in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramNetworkError, TelegramServerError, TelegramUnauthorizedError
from aiogram.methods import GetMe, GetUpdates, TelegramMethod
from aiogram.methods.base import Response, TelegramType
from aiogram.types import BotCommand

from bot.ingestion.http_app import ServiceState
from bot.settings import Settings
from reports.texts import commands as texts

logger = logging.getLogger(__name__)

_UNREACHABLE = (
    TelegramNetworkError,
    TelegramServerError,
    TelegramUnauthorizedError,
    OSError,
    asyncio.TimeoutError,
)


def create_bot(settings: Settings) -> Bot:
    token = settings.telegram.token
    if token is None:
        raise ValueError("telegram.token is not set")
    session = AiohttpSession(
        api=TelegramAPIServer.from_base(settings.telegram.api_server),
        timeout=settings.telegram.request_timeout_seconds,
    )
    return Bot(
        token.get_secret_value(), session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML)
    )


class _LinkStateMiddleware(BaseRequestMiddleware):
    """Marks Telegram up from every Bot API call, and down only from the link's own calls (getMe, polling).

    One failed send (a hung upload, a 5xx for one chat) says nothing about Telegram as a whole; marking
    the link down for it would hold back every other owner's message until the next poll.
    """

    def __init__(self, link: TelegramLink) -> None:
        self._link = link

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        try:
            response = await make_request(bot, method)
        except _UNREACHABLE as exc:
            if isinstance(method, GetMe | GetUpdates):
                self._link.mark_down(exc)
            raise
        self._link.mark_up()
        return response


class TelegramLink:
    def __init__(self, settings: Settings, dispatcher: Dispatcher, state: ServiceState) -> None:
        self._settings = settings
        self._dispatcher = dispatcher
        self._state = state
        self._task: asyncio.Task[None] | None = None
        self._polling = False
        self.bot: Bot | None = None

    def mark_up(self) -> None:
        if self._state.telegram != "up":
            logger.info("telegram: connected")
        self._state.telegram = "up"

    def mark_down(self, exc: BaseException) -> None:
        if self._state.telegram != "down":
            logger.warning(
                "telegram: Bot API unreachable (%s); ingestion goes on, retrying in the background",
                type(exc).__name__,
            )
        self._state.telegram = "down"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run_forever(), name="telegram-link")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        if self._polling:
            with contextlib.suppress(RuntimeError):
                await self._dispatcher.stop_polling()
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def _run_forever(self) -> None:
        backoff = 1.0
        while True:
            bot = create_bot(self._settings)
            bot.session.middleware(_LinkStateMiddleware(self))
            self.bot = bot
            try:
                await bot.get_me()
                await self._publish_commands(bot)
                self._polling = True
                await self._dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
                return
            except _UNREACHABLE as exc:
                self.mark_down(exc)
            finally:
                self._polling = False
                await bot.session.close()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 300.0)

    @staticmethod
    async def _publish_commands(bot: Bot) -> None:
        commands = [BotCommand(command=name, description=text) for name, text in texts.COMMANDS.items()]
        try:
            await bot.set_my_commands(commands)
        except _UNREACHABLE as exc:
            logger.info("telegram: could not publish the command list (%s)", type(exc).__name__)
