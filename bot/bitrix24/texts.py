"""Russian texts of /crm (HTML; every value from outside is escaped by the caller)."""

from __future__ import annotations

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
