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
    "/start — о боте\n"
    "/help — эта справка\n\n"
    "Отчёты (/report), карточка клиента (/client) и оповещения появятся в следующих версиях. "
    "Уже сейчас их можно посмотреть в командной строке: <code>leadtrail client ID</code>."
)
UNKNOWN_COMMAND = "Не знаю такой команды. Список команд — /help."
STRANGER_REFUSAL = "Этот бот доступен только владельцам бизнеса, которые его настроили."

COMMANDS = {"start": "О боте", "help": "Справка по командам"}

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
