"""The follow-up dataset of issue 19, placed around any moment: clients each list must hold, and clients
next to them that it must not (answered, booked, refused, too fresh, rebooked, seen lately)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

WAITING_TEXT = "Здравствуйте! Можно записаться на <b>маникюр</b> & педикюр завтра? " + "очень жду " * 40

# The user id each list must hold, and nobody else.
EXPECTED = {
    "unanswered": ["tg_wait"],
    "leads_without_booking": ["tg_lead"],
    "no_shows": ["yc_noshow"],
    "repeat_due": ["yc_regular", "yc_payer"],  # the freshest first: 51 days, then 60
}


def _event(user: str, at: datetime, event: str, **fields: Any) -> dict[str, Any]:
    return {"timestamp": at.isoformat(), "event": event, "user_id": user, **fields}


def followup_events(now: datetime) -> list[dict[str, Any]]:
    """Events of every case, relative to ``now`` (aware)."""

    def minutes(count: int) -> datetime:
        return now - timedelta(minutes=count)

    def days(count: int) -> datetime:
        return now - timedelta(days=count)

    return [
        # unanswered: waiting an hour; answered by the assistant; answered by a manager.
        _event("tg_wait", minutes(60), "message_received", channel="telegram", name="Алсу Ждущая",
               phone="+7 917 100-00-01", message=WAITING_TEXT),
        _event("tg_ai", minutes(60), "message_received", channel="telegram", message="Сколько стоит?"),
        _event("tg_ai", minutes(59), "assistant_response", channel="telegram", assistant_response="1500 ₽"),
        _event("wa_mgr", minutes(60), "message_received", channel="whatsapp", message="Позвоните мне"),
        _event("wa_mgr", minutes(50), "manager_message", channel="whatsapp", message="Звоню!"),
        # leads: two days old without booking; booked; refused; 30 minutes old.
        _event("tg_lead", days(2), "message_received", channel="telegram", name="Лейла Заявкина",
               message="Хочу на стрижку"),
        _event("tg_lead", days(2) + timedelta(seconds=5), "assistant_response", channel="telegram",
               assistant_response="Оставьте телефон"),
        _event("tg_lead", days(2) + timedelta(minutes=1), "lead_created", channel="telegram", lead_id="L-1",
               phone="+7 917 100-00-02", location="Баумана"),
        _event("tg_booked", days(2), "lead_created", channel="telegram", lead_id="L-2"),
        _event("tg_booked", days(1), "appointment_booked", channel="telegram"),
        _event("tg_refused", days(2), "lead_created", channel="telegram", lead_id="L-3"),
        _event("tg_refused", days(1), "refusal", channel="telegram", reason="дорого"),
        _event("tg_fresh", minutes(35), "message_received", channel="telegram", message="Запишите"),
        _event("tg_fresh", minutes(34), "assistant_response", channel="telegram", assistant_response="Да"),
        _event("tg_fresh", minutes(30), "lead_created", channel="telegram", lead_id="L-4"),
        # no-shows: not rebooked; rebooked.
        _event("yc_noshow", days(5), "appointment_booked", channel="yclients", name="Нина Непришедшая"),
        _event("yc_noshow", days(3), "no_show", channel="yclients"),
        _event("yc_rebooked", days(5), "appointment_booked", channel="yclients"),
        _event("yc_rebooked", days(3), "no_show", channel="yclients"),
        _event("yc_rebooked", days(1), "appointment_booked", channel="yclients"),
        # repeat: last visit 51 days ago; 9 days ago; 51 days ago but booked again; paid 60 days ago and
        # never a visit; paid 60 days ago but visited 9 days ago (a visit beats a payment).
        _event("yc_regular", days(51), "visit", channel="yclients", name="Регина Постоянная"),
        _event("yc_recent", days(9), "visit", channel="yclients"),
        _event("yc_returning", days(51), "visit", channel="yclients"),
        _event("yc_returning", days(2), "appointment_booked", channel="yclients"),
        _event("yc_payer", days(60), "payment_status", channel="yclients", status="paid", amount=2500),
        _event("yc_visitor", days(60), "payment_status", channel="yclients", status="paid", amount=1800),
        _event("yc_visitor", days(9), "visit", channel="yclients"),
    ]  # fmt: skip
