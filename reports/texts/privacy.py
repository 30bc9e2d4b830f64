"""Erasing a client on request (152-FZ): /forget in Telegram, ``leadtrail forget``, what the audit log
keeps of it; and ``leadtrail anonymize``."""

from __future__ import annotations

from datetime import tzinfo

from storage.retention import AnonymizationReport, ForgetReport
from storage.timeline import ClientCard

FORGET_USAGE = "Укажите клиента: <code>/forget tg_12345</code> (id, телефон, номер заявки или CRM)."
FORGET_AMBIGUOUS = (
    "Под это подходят несколько клиентов ({count}). Уточните id или телефон: удаление необратимо."
)
FORGET_CONFIRM = (
    "🗑 Удалить всё о клиенте <b>{title}</b>: события, переписку, контакты?\n"
    "Это необратимо. В журнал действий запишется только факт удаления."
)
FORGET_YES = "Удалить навсегда"
FORGET_NO = "Отмена"
FORGET_CANCELLED = "Удаление отменено."
FORGET_DONE = "✅ Клиент удалён, событий стёрто: {events}. Факт удаления записан в журнал действий."

# The audit log keeps that an erasure was done and how much, never whom; lookups of the erased client
# keep their time and lose what was typed.
AUDIT_NOT_FOUND = "клиент не найден"
AUDIT_REDACTED = "скрыто: клиент удалён по запросу"
CLI_NO_NAME = "без имени"
CLI_CONFIRM = "Удалить всё о клиенте {query} ({who})? [y/N] "
CLI_DONE = (
    "Клиент удалён: событий — {events}, идентификаторов — {identities}, записей карантина — {quarantined}. "
    "В журнал записано, что удаление сделано."
)


def audit_details(report: ForgetReport) -> str:
    """The audit line of an erasure."""
    if not report.clients:
        return AUDIT_NOT_FOUND
    return (
        f"клиентов удалено: {report.clients}, событий удалено: {report.events}, "
        f"идентификаторов: {report.identities}, записей карантина: {report.quarantined}"
    )


def cli_who(cards: list[ClientCard]) -> str:
    """Who would be erased, for the terminal's confirmation."""
    return "; ".join(f"#{card.id} {card.name or CLI_NO_NAME}, событий: {card.event_count}" for card in cards)


def anonymization_summary(report: AnonymizationReport, zone: tzinfo, zone_name: str) -> str:
    until = report.cutoff.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    verb = "Будет обезличено" if report.dry_run else "Обезличено"
    dropped = "будет удалено" if report.dry_run else "удалено"
    return (
        f"{verb} событий: {report.events}, клиентов: {report.clients}; "
        f"{dropped} из карантина: {report.quarantined} (всё до {until}, {zone_name})"
    )
