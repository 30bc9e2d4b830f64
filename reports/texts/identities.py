"""What people read about identities: values that stopped linking (``leadtrail identities``, the doctor,
the owners' notice), ``leadtrail client unlink``, and why a client's ids are one person.

A shared value is shown masked: it may be a real person's phone, and the operator needs only to
recognise which integration sends it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from reports.texts.html import escape
from reports.texts.numbers import format_int, format_local
from storage.identity_policy import FIELD_OF_KIND
from storage.shared_identities import SharedValue

MASK = "*"
# "joined by …": why a client's user ids are one person (the card).
JOINED_BY = {"crm": "по CRM", "lead": "по заявке", "phone": "по телефону"}


def mask(value: str) -> str:
    """Enough of a value to recognise it, not enough to use it: ``BX_67890`` → ``BX****90``."""
    shown = 2 if len(value) >= 8 else 1 if len(value) >= 4 else 0
    if not shown:
        return MASK * len(value)
    return value[:shown] + MASK * (len(value) - 2 * shown) + value[-shown:]


def field_of(kind: str) -> str:
    return FIELD_OF_KIND.get(kind, kind)


def as_json(values: Sequence[SharedValue], limit: int) -> dict[str, object]:
    return {
        "max_users_per_value": limit,
        "values": [
            {
                "field": field_of(item.kind),
                "value": mask(item.value),
                "users": item.users,
                "since": item.since,
            }
            for item in values
        ],
    }


def _line(item: SharedValue, zone: tzinfo) -> str:
    since = format_local(item.since, zone)
    return f"{field_of(item.kind)} {mask(item.value)}: {format_int(item.users)} id, с {since}"


NONE_SHARED = (
    "Общих значений нет: ни один crm_id, lead_id или телефон не встречается больше чем у {limit} id."
)
SHARED_HEADER = (
    "Значения, которые встречаются больше чем у {limit} id и потому не связывают клиентов "
    "(обычно интеграция шлёт тестовые данные):"
)


def terminal_list(values: Sequence[SharedValue], limit: int, zone: tzinfo) -> str:
    if not values:
        return NONE_SHARED.format(limit=limit)
    return "\n".join([SHARED_HEADER.format(limit=limit), *(f"  {_line(item, zone)}" for item in values)])


def doctor_summary(values: Sequence[SharedValue], limit: int, zone: tzinfo, shown: int = 3) -> str:
    """One line for the doctor: how many, the first few, where to see them all."""
    first = "; ".join(_line(item, zone) for item in values[:shown])
    more = f" и ещё {len(values) - shown}" if len(values) > shown else ""
    return (
        f"значений, общих больше чем у {limit} id, — {len(values)}; они не связывают клиентов: "
        f"{first}{more}. Проверьте интеграцию, которая их шлёт (все: leadtrail identities)"
    )


DOCTOR_NONE = "общих значений нет: клиентов связывают только их собственные id"
DOCTOR_UNREAD = "общие значения не прочитаны ({error}): leadtrail identities покажет их"

NOTICE_SUBJECT = "LeadTrail: общие id у разных клиентов"


def owner_notice(values: Sequence[SharedValue], limit: int, zone: tzinfo) -> str:
    """Telegram HTML: what was found, what LeadTrail did, what to do."""
    lines = [
        "⚠️ <b>Источник шлёт одинаковые id для разных клиентов</b>",
        f"Эти значения встречаются больше чем у {limit} id, поэтому LeadTrail больше не связывает по ним "
        "клиентов и разделил тех, кого они объединили:",
        *(f"• {escape(_line(item, zone))}" for item in values[:20]),
    ]
    if len(values) > 20:
        lines.append(f"… и ещё {len(values) - 20}")
    lines.append(
        "Проверьте интеграцию (CRM, бот): обычно это тестовые значения. Список: leadtrail identities."
    )
    return "\n".join(lines)


UNLINKED = "{user_id} отделён от клиента #{old}: теперь это клиент #{new}."
UNLINKED_BY = "Больше не связывают его с ними: {values}."
AUDIT_UNLINK = "{user_id}: #{old} → #{new}"


def unlinked(user_id: str, old: int, new: int, undone: Sequence[tuple[str, str]]) -> str:
    lines = [UNLINKED.format(user_id=user_id, old=old, new=new)]
    if undone:
        lines.append(
            UNLINKED_BY.format(values=", ".join(f"{field_of(kind)} {value}" for kind, value in undone))
        )
    return "\n".join(lines)
