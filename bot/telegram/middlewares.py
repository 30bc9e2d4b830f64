"""The audit log of what owners ask for, kept by one middleware instead of a line in every handler.

A handler that is audited says so with a flag: ``flags=audited("report")`` records the command's
arguments as the details, ``audited("report", lambda data: data["callback_data"].period)`` a button's.
The row is written before the handler runs, so a command that fails is still on record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiogram import BaseMiddleware
from aiogram.dispatcher.flags import get_flag
from aiogram.filters import CommandObject
from aiogram.types import TelegramObject, User

from storage.audit import record_action
from storage.database import Database

FLAG = "audit"
Details = Callable[[dict[str, Any]], str | None]


def command_arguments(data: dict[str, Any]) -> str | None:
    """What was typed after the command, if anything."""
    command: CommandObject | None = data.get("command")
    return (command.args or "").strip() or None if command is not None else None


@dataclass(frozen=True, slots=True)
class Audited:
    action: str
    details: Details = command_arguments


def audited(action: str, details: Details = command_arguments) -> dict[str, Any]:
    """The handler flags that make ``AuditMiddleware`` record ``action``."""
    return {FLAG: Audited(action, details)}


class AuditMiddleware(BaseMiddleware):
    """Records the flagged handlers' actions: who (the Telegram user), what, and with which details."""

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        audit: Audited | None = get_flag(data, FLAG)
        user: User | None = data.get("event_from_user")
        if audit is not None and user is not None:
            db: Database = data["db"]
            await record_action(db.sessions, user.id, audit.action, audit.details(data))
        return await handler(event, data)
