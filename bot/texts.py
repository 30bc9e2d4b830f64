"""Every text the bot and the CLI show to people, in Russian, in one place."""

from __future__ import annotations

START = (
    "👋 <b>LeadTrail</b> — журнал всего, что ваш ИИ-ассистент делает с клиентами.\n\n"
    "Сюда попадают все события: сообщения клиентов, ответы ассистента, заявки, записи, оплаты, неявки "
    "и отказы с причинами — в одну ленту на каждого клиента.\n\n"
    "Команды — /help."
)
HELP = (
    "<b>Что умеет бот</b>\n"
    "/client <i>id, телефон или имя</i> — карточка клиента и вся его лента событий\n"
    "/audit — кто из владельцев что смотрел\n"
    "/start — о боте\n"
    "/help — эта справка"
)
UNKNOWN_COMMAND = "Не знаю такой команды. Список команд — /help."
STRANGER_REFUSAL = "Этот бот доступен только владельцам бизнеса, которые его настроили."

COMMANDS = {
    "client": "Карточка и лента клиента",
    "audit": "Журнал действий владельцев",
    "help": "Справка по командам",
    "start": "О боте",
}

EVENT_LABELS = {
    "message_received": "💬 Сообщение клиента",
    "assistant_response": "🤖 Ответ ассистента",
    "lead_created": "📝 Заявка",
    "appointment_booked": "📅 Запись",
    "payment_status": "💳 Оплата",
    "no_show": "🚫 Неявка",
    "refusal": "↩️ Отказ",
    "manager_message": "👩‍💼 Сообщение менеджера",
    "appointment_cancelled": "❌ Отмена записи",
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
