"""The demo's Telegram dialogs go through the example assistant and LeadTrail's middleware, not around them.

The generator only writes what Telegram clients type; everything else about those dialogs must come out
of the assistant's dispatcher: the answers and intents of ``bot/demo/salon_assistant/dialog.py``, the
``response_time_ms`` the tracker measures on the replay clock, the message ids of the in-memory Bot API.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from bot.demo.assistant import NumberingSink, play_month
from bot.demo.booking_system import Webhook
from bot.demo.generator import DemoMonth, generate_demo_month
from bot.demo.salon_assistant import model
from bot.demo.salon_assistant.bot import SCENARIO
from bot.demo.salon_assistant.dialog import Outcome, answer, lead_id

ZONE = ZoneInfo("Europe/Moscow")
DIALOG_EVENTS = {"message_received", "assistant_response", "lead_created", "appointment_booked", "refusal"}


@cache
def _played() -> tuple[DemoMonth, tuple[dict[str, Any], ...]]:
    month = generate_demo_month(days=10, end=date(2025, 3, 20), seed=11, zone=ZONE)
    sink = NumberingSink()
    asyncio.run(play_month(month, sink, ignore_webhook))
    return month, tuple(sink.logged)


async def ignore_webhook(webhook: Webhook) -> None:
    """The assistant's side only: what YCLIENTS says is not the tracker's to log."""


def _by_user(events: tuple[dict[str, Any], ...]) -> dict[str, list[dict[str, Any]]]:
    grouped: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for event in events:
        if event["channel"] == "telegram" and event["event"] in DIALOG_EVENTS:
            grouped[event["user_id"]].append(event)
    return grouped


def _at(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"])


def test_the_generator_writes_no_telegram_dialog_events_itself() -> None:
    month, logged = _played()
    assert len(month.telegram) > 100
    assert [e for e in month.events if e["channel"] == "telegram" and e["event"] in DIALOG_EVENTS] == []
    kinds = Counter(event["event"] for events in _by_user(logged).values() for event in events)
    assert kinds["message_received"] == kinds["assistant_response"] == len(month.telegram)
    assert kinds["lead_created"] and kinds["appointment_booked"] and kinds["refusal"]


def test_each_message_is_answered_by_the_rules_and_timed_by_the_tracker() -> None:
    month, logged = _played()
    dialogs = _by_user(logged)
    position: Counter[str] = Counter()
    for message in month.telegram:
        user = f"tg_{message.chat_id}"
        events = dialogs[user]
        received = events[position[user]]
        # The dialog's events in the order the tracker logged them: the message, then (answers are logged
        # when the update is done) whatever the handler logged, then the answer.
        answered_at = next(
            i for i in range(position[user], len(events)) if events[i]["event"] == "assistant_response"
        )
        business, reply = events[position[user] + 1 : answered_at], events[answered_at]
        position[user] = answered_at + 1
        expected = answer(message.text)

        assert received["event"] == "message_received"
        assert (received["message"], received["message_id"]) == (message.text, message.message_id)
        assert received["name"] == f"{message.first_name} {message.last_name}"
        assert abs(_at(received) - message.at) <= timedelta(milliseconds=1)  # the replay clock, to the ms

        assert (reply["assistant_response"], reply["intent"]) == (expected.text, expected.intent)
        assert (reply["confidence"], reply["scenario"]) == (expected.confidence, SCENARIO)
        assert reply["message_id"] == message.message_id + 1  # the in-memory Bot API's answer
        assert abs(reply["response_time_ms"] - message.think_ms) <= 1
        assert abs(_at(reply) - message.at - timedelta(milliseconds=message.think_ms)) <= timedelta(
            milliseconds=2
        )

        kinds = [event["event"] for event in business]
        assert (
            kinds
            == {
                Outcome.NONE: [],
                Outcome.LEAD: ["lead_created"],
                Outcome.BOOKING: ["appointment_booked"],
                Outcome.REFUSAL: ["refusal"],
            }[expected.outcome]
        ), message.text
        if expected.outcome is Outcome.LEAD:
            assert business[0]["lead_id"] == lead_id(message.chat_id, message.message_id)
        if expected.outcome is Outcome.REFUSAL:
            assert business[0]["reason"] == expected.reason
    assert all(position[user] == len(events) for user, events in dialogs.items())


def test_answer_times_keep_a_slow_tail_over_the_sla() -> None:
    _, logged = _played()
    times = [
        event["response_time_ms"]
        for event in logged
        if event["channel"] == "telegram" and event["event"] == "assistant_response"
    ]
    assert min(times) >= 500
    assert 0 < sum(ms > 3000 for ms in times) / len(times) < 0.15


def test_replaying_the_same_month_logs_the_same_events() -> None:
    month, logged = _played()
    again = NumberingSink()
    asyncio.run(play_month(month, again, ignore_webhook))
    assert again.logged == list(logged)


def test_each_message_costs_a_classification_and_an_answer_in_model_tokens() -> None:
    month, logged = _played()
    calls = [event for event in logged if event["event"] == "llm_call"]
    answers = [
        event for event in logged if event["channel"] == "telegram" and event["event"] == "assistant_response"
    ]
    assert len(calls) == len(answers) == len(month.telegram)
    for message, call, reply in zip(month.telegram, calls, answers, strict=True):
        assert call["user_id"] == reply["user_id"] == f"tg_{message.chat_id}"
        assert (call["model"], call["input_tokens"], call["output_tokens"]) == (
            model.CLASSIFIER,
            model.CLASSIFIER_PROMPT_TOKENS + model.tokens(message.text),
            model.INTENT_TOKENS,
        )
        assert call["intent"] == reply["intent"] and "cost" not in call  # LeadTrail prices it
        assert (reply["model"], reply["output_tokens"]) == (
            model.RESPONDER,
            model.tokens(reply["assistant_response"]),
        )
