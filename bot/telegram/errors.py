"""The one error handler of the owners' side: a command that fails tells the owner so in plain words,
and the log says which handler failed and with what type of error (never the data: an exception's text
can carry a client's message)."""

from __future__ import annotations

import logging
import traceback

from aiogram.exceptions import TelegramAPIError
from aiogram.types import ErrorEvent
from sqlalchemy.exc import SQLAlchemyError

from reports.texts import commands as texts
from storage.database import StorageUnavailable

logger = logging.getLogger(__name__)
STORAGE_ERRORS = (StorageUnavailable, SQLAlchemyError, OSError)


async def on_error(event: ErrorEvent) -> None:
    """Tell whoever asked that it did not work; a source's post gets no answer."""
    error = event.exception
    storage = isinstance(error, STORAGE_ERRORS)
    if storage:
        logger.warning("owner command failed: storage unavailable (%s)", type(error).__name__)
    else:
        # Where it failed (the frames), not what it said: the message may quote the data.
        frames = "".join(traceback.format_tb(error.__traceback__))
        logger.error("owner command failed with %s at\n%s", type(error).__name__, frames)
    update = event.update
    text = texts.STORAGE_DOWN if storage else texts.FAILED
    try:
        if update.message is not None and update.message.chat.type == "private":
            await update.message.answer(text)
        elif update.callback_query is not None:
            await update.callback_query.answer(text, show_alert=True)
    except TelegramAPIError as exc:
        logger.warning("could not tell the owner about the failure: %s", type(exc).__name__)
