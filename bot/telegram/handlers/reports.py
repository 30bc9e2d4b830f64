"""/report: the summary and the album of charts, buttons that switch the period and open sections."""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.enums import ChatAction
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.settings import Settings
from bot.telegram.filters import IsOwner
from bot.telegram.media import photo_albums
from bot.telegram.middlewares import audited
from bot.telegram.report_request import (
    ReportRequest,
    parse_request,
    period_request,
    scenario_samples,
)
from bot.telegram.views.reports import (
    ReportAction,
    ReportCallback,
    Section,
    report_keyboard,
)
from reports.owner_report import build_report
from reports.texts import report as texts
from reports.texts.html import escape_short
from storage.database import Database


async def _send_report(
    message: Message, bot: Bot, db: Database, settings: Settings, request: ReportRequest
) -> None:
    await bot.send_chat_action(message.chat.id, ChatAction.UPLOAD_PHOTO)
    scope = settings.report_scope(request.period, request.location)
    rendered = await build_report(db.sessions, scope, with_charts=True)
    await message.answer(rendered.text, reply_markup=report_keyboard(request.code, request.location))
    for album in photo_albums(rendered.charts):
        await message.answer_media_group(album)


async def report(
    message: Message, command: CommandObject, bot: Bot, db: Database, settings: Settings
) -> None:
    """Send the report for the period (default: yesterday and the 7 days before) and its charts."""
    args = (command.args or "").strip()
    try:
        request = parse_request(args, settings)
    except ValueError:
        await message.answer(texts.USAGE.format(value=escape_short(args, 100)))
        return
    await _send_report(message, bot, db, settings, request)


async def switch_period(
    query: CallbackQuery, callback_data: ReportCallback, bot: Bot, db: Database, settings: Settings
) -> None:
    """A period button: the same report for another period."""
    await query.answer()
    try:
        request = period_request(callback_data.period, settings, callback_data.location or None)
    except ValueError:
        return
    if isinstance(query.message, Message):
        await _send_report(query.message, bot, db, settings, request)


async def open_section(
    query: CallbackQuery, callback_data: ReportCallback, db: Database, settings: Settings
) -> None:
    """A section button: channels, intents, refusal reasons or the A/B of scenarios."""
    await query.answer()
    try:
        request = period_request(callback_data.period, settings, callback_data.location or None)
        section = Section(callback_data.section)
    except ValueError:
        return
    if not isinstance(query.message, Message):
        return
    if section is Section.AB:
        text = texts.scenarios(await scenario_samples(db, settings, request))
    else:
        scope = settings.report_scope(request.period, request.location)
        report_data = (await build_report(db.sessions, scope)).report
        renderers = {
            Section.CHANNELS: texts.channels,
            Section.INTENTS: texts.intents,
            Section.REASONS: texts.refusal_reasons,
        }
        text = renderers[section](report_data)
    await query.message.answer(text)


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="reports")
    router.message.filter(IsOwner())
    router.callback_query.filter(IsOwner())
    router.message.register(report, Command("report"), flags=audited("report"))
    router.callback_query.register(
        switch_period,
        ReportCallback.filter(F.action == ReportAction.PERIOD),
        flags=audited("report", lambda data: data["callback_data"].period),
    )
    router.callback_query.register(open_section, ReportCallback.filter(F.action == ReportAction.SECTION))
    return router
