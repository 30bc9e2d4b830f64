"""What ``leadtrail demo`` prints about the month it played (plain text, for the terminal)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from reports.texts.numbers import format_decimal, format_int


def heading(first_day: date, last_day: date) -> str:
    return f"LeadTrail — демо: барбершоп «Усы», Казань, {first_day:%d.%m.%Y}–{last_day:%d.%m.%Y}"


def dialogs(messages: int) -> str:
    return (
        f"Клиенты в Telegram написали ассистенту-примеру {format_int(messages)} сообщений; его ответы, "
        "заявки, записи и отказы записал middleware LeadTrail."
    )


def delivery(events: int, sent: int, webhooks: int, seconds: float, stored: int, clients: int) -> str:
    return (
        f"Отправлено через EventClient и HTTP: {format_int(events)} событий, "
        f"доставлено {format_int(sent)}; вебхуков YCLIENTS (записи, визиты, неявки, оплаты): "
        f"{format_int(webhooks)}; за {format_decimal(seconds)} с. В базе {format_int(stored)} событий, "
        f"клиентов: {format_int(clients)}\n"
    )


def showcase(user_id: str) -> str:
    return f"\nЛента одного клиента ({user_id}):\n"


FILES = "\nФайлы демо:"


def another_client(url: str) -> str:
    return f"\nДругой клиент: LEADTRAIL_DATABASE__URL={url} leadtrail client <user_id|crm_id|телефон>"


def file_line(path: Path) -> str:
    return f"  {path}"
