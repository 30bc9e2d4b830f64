"""/alerts: the rules with their thresholds and current values, the last alerts, and a mute button."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.keyboard import InlineKeyboardBuilder

from bot import texts
from bot.alert_engine import AlertEngine
from bot.filters import IsOwner
from bot.formatting import format_decimal, format_local
from bot.settings import Settings
from bot.telegram_text import escape, escape_short, pack_lines
from reports.alert_texts import RULE_TITLES
from reports.alerts import RULES, AlertVerdict
from storage.alert_state import mute_rule, muted_rules, recent_alerts
from storage.audit import record_action
from storage.database import Database

MUTE_FOR = timedelta(hours=24)


class MuteCallback(CallbackData, prefix="al1"):
    rule: str


def _verdict_line(verdict: AlertVerdict) -> str:
    state = "🔴 тревога" if verdict.firing else "🟢 норма"
    scope = f" ({escape_short(verdict.scope, 40)})" if verdict.scope else ""
    value = "" if verdict.value is None else f", сейчас {format_decimal(verdict.value, 2)}"
    return f"  {state}{scope}{value}"


def render_alerts(
    verdicts: list[AlertVerdict],
    settings: Settings,
    muted: dict[str, datetime],
    recent: list[tuple[datetime, str]],
) -> list[str]:
    limits = texts.alert_thresholds(settings.alerts, settings.reports.sla_seconds)
    lines = [texts.ALERTS_HEADER]
    for rule in RULES:
        lines.append(f"\n<b>{escape(RULE_TITLES[rule])}</b> — {escape(limits[rule])}")
        lines.extend(_verdict_line(verdict) for verdict in verdicts if verdict.rule == rule)
        if rule in muted:
            lines.append(f"  🔕 заглушено до {format_local(muted[rule], settings.tz)}")
    lines.append(f"\n{texts.ALERTS_RECENT}")
    lines.extend(f"{format_local(at, settings.tz)} · {escape_short(text, 300)}" for at, text in recent)
    if not recent:
        lines.append(texts.ALERTS_NONE_YET)
    return pack_lines(lines)


def mute_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for rule in RULES:
        builder.button(text=f"🔕 {RULE_TITLES[rule]}", callback_data=MuteCallback(rule=rule))
    builder.adjust(1)
    return builder.as_markup()


async def show_alerts(message: Message, db: Database, settings: Settings) -> None:
    """The rules' state right now (evaluated, not sent) and the last alerts."""
    assert message.from_user is not None
    await record_action(db.sessions, message.from_user.id, "alerts")
    now = datetime.now(UTC)
    verdicts = await AlertEngine(db, settings, lambda: None).verdicts(now)
    async with db.sessions() as session:
        muted = await muted_rules(session, now)
        recent = [(entry.at, entry.text) for entry in await recent_alerts(session)]
    chunks = render_alerts(verdicts, settings, muted, recent)
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
    await record_action(db.sessions, query.from_user.id, "alerts.mute", callback_data.rule)
    await query.answer(
        texts.ALERT_MUTED.format(rule=RULE_TITLES[callback_data.rule], until=format_local(until, settings.tz))
    )


def create_router() -> Router:
    """A fresh router each time: a router can belong to one dispatcher only."""
    router = Router(name="alerts")
    router.message.filter(IsOwner())
    router.callback_query.filter(IsOwner())
    router.message.register(show_alerts, Command("alerts"))
    router.callback_query.register(mute, MuteCallback.filter(F.rule.in_(RULES)))
    return router
