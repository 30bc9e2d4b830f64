"""The demo salon's Telegram assistant: answers with the rule-based dialog and logs everything to
LeadTrail through ``leadtrail_sdk``, wired the way a salon's own aiogram bot would be."""

from __future__ import annotations

from collections.abc import Callable

from aiogram import Bot, Dispatcher, F, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import Message

from bot.demo.salon_assistant import model
from bot.demo.salon_assistant.dialog import (
    BOOKED_SERVICE,
    Outcome,
    answer,
    booked_slot,
    lead_id,
    phone_in,
    record_id,
)
from leadtrail_sdk import LeadTrailTracker
from leadtrail_sdk.middleware import EventSink

SCENARIO = "rules-v1"


async def on_text(message: Message, tracker: LeadTrailTracker, state: FSMContext) -> None:
    """Answer, tell LeadTrail what the assistant understood and what its model calls took, and log the
    business outcome.

    The chat's last lead id is kept in aiogram's FSM data, so its booking or refusal links to it.
    """
    text = message.text or ""
    reply = answer(text)
    tracker.log_event("llm_call", intent=reply.intent, **model.classification(text).fields())
    tracker.annotate(
        intent=reply.intent,
        confidence=reply.confidence,
        scenario=SCENARIO,
        **model.reply(text, reply.text).fields(),
    )
    if reply.outcome is Outcome.LEAD:
        lead = lead_id(message.chat.id, message.message_id)
        await state.update_data(lead_id=lead)
        contact = {"lead_id": lead}
        if (phone := phone_in(text)) is not None:
            contact["phone"] = phone
        if message.from_user is not None:
            contact["name"] = message.from_user.full_name
        tracker.log_event("lead_created", **contact)
    elif reply.outcome is not Outcome.NONE:
        known: str | None = (await state.get_data()).get("lead_id")
        linked = {"lead_id": known} if known else {}
        if reply.outcome is Outcome.BOOKING:
            visit = booked_slot(message.date).isoformat(timespec="seconds")
            record = record_id(message.chat.id, message.message_id)  # booked through YCLIENTS' API
            tracker.log_event(
                "appointment_booked",
                service=BOOKED_SERVICE,
                appointment_at=visit,
                appointment_id=str(record),
                **linked,
            )
        else:
            tracker.log_event("refusal", reason=reply.reason, **linked)
    await message.answer(reply.text)


def create_router() -> Router:
    router = Router(name="salon-assistant")
    router.message.register(on_text, F.text)
    return router


def create_dispatcher(bot: Bot, sink: EventSink, clock: Callable[[], float] | None = None) -> Dispatcher:
    """The assistant's dispatcher with LeadTrail's tracker registered, as a salon registers it.

    ``clock`` is for replaying history (the demo); a live bot leaves it to the real time.
    """
    tracker = LeadTrailTracker(sink, clock=clock)
    dispatcher = Dispatcher(tracker=tracker)
    dispatcher.include_router(create_router())
    tracker.setup(dispatcher, bot)
    return dispatcher
