"""/export [period] [@location] [xlsx|csv|parquet]: every event of the period as a file (owners only)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from aiogram import Bot, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message

from bot.export.service import ExportTooBig, export_events
from bot.settings import Settings
from bot.telegram.filters import IsOwner
from bot.telegram.middlewares import audited
from bot.telegram.report_request import ReportRequest, parse_request
from reports.texts import export as texts
from reports.texts.html import escape_short
from storage.database import Database

DEFAULT_FORMAT = "xlsx"
_FORMATS = tuple(texts.FORMAT_NAMES)


def parse_export(args: str, settings: Settings) -> tuple[ReportRequest, str]:
    """The /report arguments plus at most one format word; ValueError when something is not understood."""
    words = args.split()
    formats = [word.lower() for word in words if word.lower() in _FORMATS]
    if len(formats) > 1:
        raise ValueError(args)
    rest = " ".join(word for word in words if word.lower() not in _FORMATS)
    return parse_request(rest, settings), formats[0] if formats else DEFAULT_FORMAT


async def export(
    message: Message, command: CommandObject, bot: Bot, db: Database, settings: Settings
) -> None:
    """Build the file in a temporary folder (chunks written off the event loop) and send it if it fits."""
    args = (command.args or "").strip()
    try:
        request, fmt = parse_export(args, settings)
    except ValueError:
        await message.answer(texts.EXPORT_USAGE.format(value=escape_short(args, 100)))
        return
    period = request.period
    label = texts.period_label(period)
    await bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_DOCUMENT)
    name = f"leadtrail_{period.start_local}_{period.end_local}.{fmt}"
    with tempfile.TemporaryDirectory(prefix="leadtrail-export-") as folder:
        path = Path(folder) / name
        limit = settings.telegram.upload_limit_bytes
        try:
            result = await export_events(
                db, settings.tz, period, fmt, path, location=request.location, max_bytes=limit
            )
        except ExportTooBig:
            too_big = texts.EXPORT_TOO_BIG.format(
                period=label,
                limit=texts.format_size(limit),
                start=period.start_local,
                end=period.end_local,
                ext=fmt,
            )
            await message.answer(too_big)
            return
        if result.events == 0:
            await message.answer(texts.EXPORT_EMPTY.format(period=label))
            return
        await message.answer_document(
            FSInputFile(path, filename=name),
            caption=texts.caption(request.period, result.events, fmt, request.location),
        )


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="export")
    router.message.filter(IsOwner())
    router.message.register(export, Command("export"), flags=audited("export"))
    return router
