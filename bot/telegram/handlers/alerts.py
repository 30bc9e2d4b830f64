"""/alerts: the rules with their thresholds and current values, the last alerts, and a mute button."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot.alert_verdicts import configured_verdicts
from bot.settings import Settings
from bot.telegram.filters import IsOwner
from bot.telegram.middlewares import audited
from reports.alerts import RULES
from reports.texts import alerts as texts
from reports.texts.html import pack_lines
from reports.texts.numbers import format_local
from storage.alert_state import mute_rule, muted_rules, recent_alerts
from storage.database import Database

MUTE_FOR = timedelta(hours=24)


class MuteCallback(CallbackData, prefix="al1"):
    rule: str


def mute_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for rule in RULES:
        builder.button(
            text=texts.MUTE_BUTTON.format(rule=texts.RULE_TITLES[rule]), callback_data=MuteCallback(rule=rule)
        )
    builder.adjust(1)
    return builder.as_markup()


async def show_alerts(message: Message, db: Database, settings: Settings) -> None:
    """The rules' state right now (evaluated, not sent) and the last alerts."""
    now = datetime.now(UTC)
    verdicts = await configured_verdicts(db, settings, now)
    async with db.sessions() as session:
        muted = await muted_rules(session, now)
        recent = [(entry.at, entry.text) for entry in await recent_alerts(session)]
    conditions = texts.thresholds(
        settings.alerts,
        settings.reports.sla_seconds,
        settings.followup.unanswered_minutes,
        settings.ai.budget(),
    )
    chunks = pack_lines(texts.page(RULES, verdicts, conditions, muted, recent, settings.tz))
    for number, chunk in enumerate(chunks, start=1):
        await message.answer(chunk, reply_markup=mute_keyboard() if number == len(chunks) else None)


async def mute(query: CallbackQuery, callback_data: MuteCallback, db: Database, settings: Settings) -> None:
    """Mute one rule for 24 hours."""
    if callback_data.rule not in RULES:
        await query.answer()
        return
    until = datetime.now(UTC) + MUTE_FOR
    async with db.sessions() as session, session.begin():
        await mute_rule(session, callback_data.rule, until)
    await query.answer(
        texts.MUTED.format(rule=texts.RULE_TITLES[callback_data.rule], until=format_local(until, settings.tz))
    )


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="alerts")
    router.message.filter(IsOwner())
    router.callback_query.filter(IsOwner())
    router.message.register(show_alerts, Command("alerts"), flags=audited("alerts"))
    router.callback_query.register(
        mute,
        MuteCallback.filter(F.rule.in_(RULES)),
        flags=audited("alerts.mute", lambda data: data["callback_data"].rule),
    )
    return router
