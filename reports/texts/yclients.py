"""The YCLIENTS link in words: its part of /crm (HTML) and of ``leadtrail doctor`` (plain text)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from reports.texts.html import escape_short
from reports.texts.numbers import format_decimal, format_local
from storage.yclients import CompanyLink

HEADER = "<b>Связь с YCLIENTS</b>"
WEBHOOK_ON = "Вебхуки принимаются на <code>POST /v1/yclients/&lt;webhook_token&gt;</code>."
WEBHOOK_OFF = (
    "Вебхуки не принимаются: не задан <code>[yclients] webhook_token</code>. "
    "Как подключить — в README, раздел «YCLIENTS»."
)
SYNC_ON = "Сверка через API: каждые {minutes} мин."
SYNC_OFF = (
    "Сверка через API выключена: нужны <code>partner_token</code>, <code>user_token</code> "
    "и <code>company_ids</code>."
)
COMPANY = "• Компания {company}: последний вебхук — {webhook}; последняя сверка — {sync}"
COMPANY_ERROR = "  ошибка сверки: <code>{error}</code>"
NEVER = "не было"

DOCTOR_OFF = (
    "выключена (не заданы webhook_token и токены API): записи, визиты и оплаты из YCLIENTS не приходят"
)
DOCTOR_WEBHOOK_ONLY = "вебхуки принимаются; сверки через API нет (partner_token, user_token, company_ids)"
DOCTOR_PARTIAL = "для сверки через API заданы не все ключи: нужны partner_token, user_token и company_ids"
DOCTOR_ON = "вебхуки и сверка включены, компаний: {count}"
DOCTOR_SYNC_FAILED = "сверка компании {company} не удалась ({when}): {error}"


@dataclass(frozen=True, slots=True)
class YclientsSetup:
    """What the configuration turns on."""

    webhook: bool
    sync: bool
    sync_minutes: float


def status_page(links: Sequence[CompanyLink], setup: YclientsSetup, zone: tzinfo) -> list[str]:
    """The YCLIENTS lines of /crm."""
    lines = [HEADER, WEBHOOK_ON if setup.webhook else WEBHOOK_OFF]
    lines.append(SYNC_ON.format(minutes=format_decimal(setup.sync_minutes, 0)) if setup.sync else SYNC_OFF)
    for link in links:
        lines.append(
            COMPANY.format(
                company=link.company_id,
                webhook=format_local(link.last_webhook_at, zone) if link.last_webhook_at else NEVER,
                sync=format_local(link.last_sync_at, zone) if link.last_sync_at else NEVER,
            )
        )
        if link.last_error:
            lines.append(COMPANY_ERROR.format(error=escape_short(link.last_error, 200)))
    return lines
