"""The Bitrix24 link in words: /crm for the owners (HTML), and what LeadTrail writes into the CRM (plain
text: the dialog comment on a lead, the note on the client's timeline)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from reports.texts.html import escape_short
from reports.texts.numbers import NONE, format_local
from storage.crm_jobs import LinkStatus

COMMENT_LINE_LIMIT = 500
COMMENT_LIMIT = 4000
SPEAKERS = {"client": "Клиент", "assistant": "Ассистент", "manager": "Менеджер"}

HEADER = "<b>Связь с Битрикс24</b>"
DISABLED = (
    "Связь выключена: в конфигурации не задан <code>[bitrix24] webhook_url</code> "
    "(входящий вебхук с правами crm). Как настроить — в README, раздел «Битрикс24»."
)
ENABLED = "Связь включена."
INBOUND_OFF = "Изменения из Битрикс24 не принимаются: не задан <code>application_token</code>."
INBOUND_ON = "Изменения из Битрикс24 принимаются на <code>POST /v1/bitrix24/events</code>."
LAST_SUCCESS = "Последний успешный обмен: {when}"
NEVER = "ещё не было"
PENDING = "В очереди: {count}"
FAILED = "Не удалось: {count}"
FAILED_ITEM = "• {when} · {kind}: <code>{error}</code>"
JOB_KINDS = {"lead": "лид", "comment": "комментарий", "fetch": "получение изменений"}


@dataclass(frozen=True, slots=True)
class LinkSettings:
    """What /crm says about the configuration: is the link on, are CRM changes accepted."""

    enabled: bool
    inbound: bool


def status_page(status: LinkStatus, link: LinkSettings, zone: tzinfo) -> list[str]:
    """The lines of /crm."""
    lines = [HEADER, ENABLED if link.enabled else DISABLED]
    if link.enabled:
        lines.append(INBOUND_ON if link.inbound else INBOUND_OFF)
    when = format_local(status.last_success_at, zone) if status.last_success_at else NEVER
    lines.append(LAST_SUCCESS.format(when=when))
    lines.append(PENDING.format(count=status.pending))
    lines.append(FAILED.format(count=status.failed))
    for failure in status.recent_failures:
        lines.append(
            FAILED_ITEM.format(
                when=format_local(failure.at, zone) if failure.at else NONE,
                kind=JOB_KINDS.get(failure.kind, escape_short(failure.kind, 32)),
                error=escape_short(failure.error, 200),
            )
        )
    return lines


def dialog_comment(lines: list[tuple[str, str]]) -> str | None:
    """Plain text for ``crm.timeline.comment.add``: the latest turns, each cut to a readable length."""
    if not lines:
        return None
    out = ["Диалог с ИИ-ассистентом (LeadTrail):"]
    for who, text in lines:
        text = " ".join(text.split())
        if len(text) > COMMENT_LINE_LIMIT:
            text = text[: COMMENT_LINE_LIMIT - 1] + "…"
        out.append(f"{SPEAKERS.get(who, who)}: {text}")
    comment = "\n".join(out)
    return comment if len(comment) <= COMMENT_LIMIT else comment[: COMMENT_LIMIT - 1] + "…"


def linked_message(entity: str, entity_crm_id: str, created: bool) -> str:
    if created:
        return f"Лид создан в Битрикс24: {entity_crm_id}"
    what = {"lead": "лид", "contact": "контакт"}.get(entity, entity)
    return f"Найден в Битрикс24 ({what}): {entity_crm_id}"
