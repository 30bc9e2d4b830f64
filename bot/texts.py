"""Every text the bot and the CLI show to people, in Russian, in one place."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from storage.event_types import EventType

if TYPE_CHECKING:
    from reports.alerts import AlertSettings

START = (
    "👋 <b>LeadTrail</b> — журнал всего, что ваш ИИ-ассистент делает с клиентами.\n\n"
    "Сюда попадают все события: сообщения клиентов, ответы ассистента, заявки, записи, оплаты, неявки "
    "и отказы с причинами — в одну ленту на каждого клиента.\n\n"
    "Команды — /help."
)
HELP = (
    "<b>Что умеет бот</b>\n"
    "/client <i>id, телефон или имя</i> — карточка клиента и вся его лента событий\n"
    "/search <i>слова</i> — поиск по сообщениям клиентов и ответам ассистента\n"
    "/report <i>[период] [@точка]</i> — отчёт и графики: <code>/report</code>, <code>/report 7d</code>, "
    "<code>/report 2025-01-01..2025-01-31</code>\n"
    "/alerts — оповещения: правила, пороги, последние срабатывания\n"
    "/forget <i>id или телефон</i> — удалить клиента по его просьбе (152-ФЗ)\n"
    "/audit — кто из владельцев что смотрел\n"
    "/export <i>[период] [csv]</i> — все события за период файлом Excel (или CSV)\n"
    "/crm — связь с Битрикс24: последний обмен, очередь, ошибки\n"
    "/start — о боте\n"
    "/help — эта справка"
)
UNKNOWN_COMMAND = "Не знаю такой команды. Список команд — /help."
STRANGER_REFUSAL = "Этот бот доступен только владельцам бизнеса, которые его настроили."

COMMANDS = {
    "report": "Отчёт и графики за период",
    "client": "Карточка и лента клиента",
    "search": "Поиск по переписке",
    "alerts": "Оповещения и их пороги",
    "forget": "Удалить клиента по его просьбе",
    "audit": "Журнал действий владельцев",
    "export": "Выгрузка событий в Excel",
    "crm": "Связь с Битрикс24",
    "help": "Справка по командам",
    "start": "О боте",
}

EVENT_LABELS: dict[str, str] = {
    EventType.MESSAGE_RECEIVED: "💬 Сообщение клиента",
    EventType.ASSISTANT_RESPONSE: "🤖 Ответ ассистента",
    EventType.LEAD_CREATED: "📝 Заявка",
    EventType.APPOINTMENT_BOOKED: "📅 Запись",
    EventType.PAYMENT_STATUS: "💳 Оплата",
    EventType.NO_SHOW: "🚫 Неявка",
    EventType.REFUSAL: "↩️ Отказ",
    EventType.MANAGER_MESSAGE: "👩‍💼 Сообщение менеджера",
    EventType.APPOINTMENT_CANCELLED: "❌ Отмена записи",
    EventType.CRM_LEAD_LINKED: "🔗 Заявка в CRM",
}


def source_rejected_notice(accepted: int, rejected: int, held_back: int) -> str:
    """Short notice to owners when a Telegram source sent something that could not be stored."""
    text = (
        "⚠️ <b>Источник событий в Telegram прислал данные с ошибками.</b>\n"
        f"Принято событий: {accepted}, отклонено: {rejected}.\n"
    )
    if held_back:
        text += f"Ещё сообщений с ошибками с прошлого уведомления: {held_back}.\n"
    return text + "Отклонённое сохранено: <code>leadtrail quarantine</code> покажет, что не так."


CLIENT_USAGE = (
    "Укажите, кого искать: <code>/client tg_12345</code>, id в CRM, номер заявки, телефон или часть имени."
)
CLIENT_NOT_FOUND = "Клиент не найден. Проверьте id или телефон, или попробуйте часть имени."
CLIENT_CHOOSE = "Нашлось несколько клиентов ({count}), выберите:"
CLIENT_GONE = "Этого клиента больше нет в журнале."
CLIENT_NO_NAME = "Без имени"
IDENTITY_LABELS = {"user": "ID в каналах", "crm": "CRM", "lead": "Заявки", "phone": "Телефоны"}
CARD_CHANNELS = "Каналы"
CARD_FIRST_CONTACT = "Первое обращение"
CARD_STATUS = "Статус"
CARD_PAID = "Оплачено"
CARD_EVENTS = "Событий в ленте"
STAGE_LABELS = {
    "dialog": "💬 диалог, заявки нет",
    "lead": "📝 заявка, записи нет",
    "booked": "📅 записан",
    "paid": "✅ пришёл и оплатил",
    "no_show": "🚫 не пришёл",
    "refused": "↩️ отказался",
    "cancelled": "❌ отменил запись",
}
TIMELINE_HEADER = "🗂 <b>Лента событий</b> — страница {page} из {pages}"
TIMELINE_EMPTY = "Событий нет."
MORE_FIELDS = "ещё полей: {count}"
BUTTON_DETAILS = "🔎 Подробнее"
BUTTON_JOURNEY = "📈 Путь клиента"
ACCESS_DENIED_BUTTON = "Недоступно"

AUDIT_HEADER = "🧾 <b>Журнал действий владельцев</b> (последние)"
AUDIT_EMPTY = "Пока пусто."

SEARCH_USAGE = (
    "Что найти в переписке? Например: <code>/search стрижка вечером</code> — покажу клиентов, "
    "в чьих сообщениях или ответах ассистента есть все эти слова."
)
SEARCH_NOT_FOUND = "По запросу «{query}» ничего не нашлось. Попробуйте другие слова или только их начало."
SEARCH_FOUND = "🔎 «{query}» — клиентов: {count}, свежие совпадения сверху:"
SEARCH_MORE = "Показаны первые {count}. Уточните запрос, чтобы увидеть остальных."

REPORT_USAGE = (
    "Не понял период «{value}». Примеры: <code>/report</code>, <code>/report 7d</code>, "
    "<code>/report 2025-01-01..2025-01-31</code>, <code>/report 30d @Баумана</code>."
)
REPORT_WORKING = "Считаю отчёт…"
REPORT_SECTIONS = {"ch": "📡 Каналы", "in": "🎯 Интенты", "rr": "↩️ Причины отказов", "ab": "🧪 A/B сценариев"}
SECTION_TITLES = {
    "ch": "<b>📡 По каналам</b>",
    "in": "<b>🎯 Топ интентов ответов ИИ</b>",
    "rr": "<b>↩️ Причины отказов</b>",
    "ab": "<b>🧪 A/B сценариев ассистента</b> (конверсия диалог → заявка)",
}
BY_LOCATION = "<b>📍 По точкам</b>"
SECTION_EMPTY = "Данных за период нет."
AB_NEED_TWO = "Нужно хотя бы два сценария с диалогами: события должны нести поле scenario."
AB_BETTER = "✅ {better} лучше на {points}, и это вряд ли случайность."
AB_SAME = "Сценарии конвертируют одинаково."
AB_NOT_ENOUGH = "⏳ Пока данных мало: нужно ещё примерно {more} диалогов, чтобы разница стала надёжной."

ALERT_SUBJECT = "LeadTrail: тревога"


def alert_resolved(rule_title: str, scope: str) -> str:
    """The short all-clear after an alert; ``scope`` (a channel) is escaped here."""
    where = f" ({html.escape(scope)})" if scope else ""
    return f"✅ <b>Снова в норме:</b> {html.escape(rule_title)}{where}."


ALERTS_HEADER = "🚨 <b>Оповещения</b>: правила, пороги и что сейчас"
ALERTS_RECENT = "<b>Последние оповещения</b>"
ALERTS_NONE_YET = "Пока не было."
ALERT_MUTED = "«{rule}» заглушено до {until}"


def _percent(share: float) -> str:
    return f"{share * 100:.0f}\u00a0%"


def alert_thresholds(settings: AlertSettings, sla_seconds: float) -> dict[str, str]:
    """Each rule's condition in plain words, for /alerts."""
    return {
        "conversion_drop": f"падение ≥ {_percent(settings.conversion_drop)} к тем же часам за 14 дней, "
        f"от {settings.min_clients} клиентов, p < {settings.p_value}",
        "no_show_spike": f"рост ≥ {_percent(settings.no_show_rise)} за 7 дней к 28 дням до, "
        f"от {settings.no_show_min_bookings} записей",
        "slow_ai": f"за час p95 > {sla_seconds:g} с или больше {_percent(settings.slow_ai_over_sla_share)} "
        f"ответов дольше SLA, от {settings.slow_ai_min_answers} ответов",
        "source_silent": f"канал (или все вместе) молчит {settings.silence_hours:g} ч, хотя в эти часы "
        f"писали в {settings.silence_min_days} из 14 дней, а шанс такой тишины < {settings.silence_p_value}",
        "ingest_errors": f"от {settings.ingest_errors_per_hour} отклонённых событий за час",
    }


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
