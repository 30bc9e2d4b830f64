"""A believable month of a Kazan barbershop's AI assistant, as the events its sources would POST.

The demo must show what LeadTrail finds in real data — evening demand the shop cannot serve (the seed's
case: 38% of refusals were missing evening slots), a better v2 scenario, slow answers, no-shows, repeat
clients — so the numbers are shaped on purpose, and the output depends only on the arguments: the same
seed and days always give the same events and the same ``event_id``s, so a re-run is idempotent.

Telegram clients write to the example salon assistant (``bot/demo/salon_assistant``): for them the month
holds only what the clients type (:class:`TelegramMessage`); ``bot.demo.assistant`` feeds those messages
to the assistant's real aiogram bot, whose answers, intents, leads, bookings and refusals reach LeadTrail
through the SDK's middleware. The client's words are picked so that the assistant's rules lead to the
story's outcome (a phone number makes the lead, "да" the booking, a named reason the refusal). What no
Telegram bot can know — the other channels, CRM ids, payments, no-shows, managers' messages — stays
events made here.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from random import Random
from typing import Any

from bot.demo.booking_system import CAME, FINANCES, MASTERS, NO_SHOW, DemoYclients, Webhook
from bot.demo.salon_assistant import dialog as assistant
from storage.event_types import EventType
from storage.phones import normalize_phone

LOCATIONS = ("Баумана", "Ямашева")
LOCATION_WEIGHTS = (55, 45)

# channel, user_id prefix, share of new clients (%)
CHANNELS = (
    ("telegram", "tg_", 45),
    ("whatsapp", "wa_", 25),
    ("instagram", "ig_", 15),
    ("site", "site_", 10),
    ("call_center", "call_", 5),
)
USER_NUMBER_DIGITS = {"tg_": (9, 10), "wa_": (7, 8), "ig_": (8, 9), "site_": (5, 6), "call_": (4, 5)}
UTM_SOURCES = ("vk", "yandex", "2gis", "avito")
UTM_CHANNELS = frozenset({"site", "instagram"})
UTM_SHARE = 0.35
# These channels show the client's number with the very first message.
PHONE_CHANNELS = frozenset({"whatsapp", "call_center"})

MALE_NAMES = (
    "Айдар", "Тимур", "Руслан", "Ильнур", "Азат", "Марат", "Рамиль", "Булат", "Ильдар", "Алмаз",
    "Камиль", "Артём", "Дмитрий", "Никита", "Эмиль", "Радик",
)  # fmt: skip
# Women mostly book for their sons or husbands, hence the children's haircut below.
FEMALE_NAMES = ("Гульнара", "Алсу", "Диана", "Лилия", "Айгуль", "Регина", "Эльвира", "Анна")
FEMALE_SHARE = 0.2
# All end in a consonant, so the feminine form is the same word + "а".
SURNAMES = (
    "Хабибуллин", "Сафин", "Галиев", "Зарипов", "Ахметов", "Мингазов", "Гарипов", "Нуриев", "Валиев",
    "Шарипов", "Фахрутдинов", "Исмагилов", "Иванов", "Смирнов", "Кузнецов", "Лебедев",
)  # fmt: skip
PHONE_PREFIXES = ("917", "927", "937", "987", "960", "965", "903", "950", "996", "999")

MANAGERS = ("mgr_alina", "mgr_ilsur")

# service, price range in RUB, minutes in the chair
SERVICES = (
    ("Мужская стрижка", 1200, 1800, 60),
    ("Стрижка + борода", 1900, 2600, 90),
    ("Детская стрижка", 900, 1200, 45),
    ("Королевское бритьё", 1500, 2200, 60),
    ("Камуфляж седины", 1300, 1900, 45),
)
MALE_SERVICE_WEIGHTS = (45, 30, 5, 10, 10)
FEMALE_SERVICE_WEIGHTS = (25, 10, 60, 0, 5)
EXTRAS = (("укладка", 300), ("оформление бровей", 400), ("воск (нос/уши)", 300))
EXTRA_SHARE = 0.25

# Client messages that open a dialog and fitting first answers.
Texts = tuple[tuple[str, ...], tuple[str, ...]]
OPENINGS: dict[str, Texts] = {
    "booking.request": (
        (
            "Здравствуйте, хочу записаться на стрижку",
            "Добрый день! Можно записаться на завтра?",
            "Привет, есть окно в субботу на стрижку?",
            "Здравствуйте, запишите меня, пожалуйста, к Артуру",
            "Нужна стрижка на этой неделе, когда можно?",
            "Здравствуйте! Хочу стрижку и бороду подровнять",
        ),
        (
            "Когда вам удобно? Сегодня в 18:00 свободно.",
            "Есть окна завтра в 11:00, 14:30 и 16:00. Какое время удобно?",
            "Конечно! На какой филиал записать — Баумана или Ямашева?",
            "С радостью запишу. Есть время в субботу в 12:00 и 15:30.",
        ),
    ),
    "booking.evening": (
        (
            "Есть время сегодня после 19?",
            "Можно вечером, часов в 18:30?",
            "Хочу записаться после работы, к 20:00",
            "Есть окно завтра в 19:00?",
            "Вы до 21 работаете? Успею после работы?",
        ),
        (
            "Сегодня вечером всё занято, ближайшее вечернее окно — послезавтра в 19:30. Подойдёт?",
            "Есть окно в 18:30 на Ямашева. Записать?",
            "К сожалению, после 18:00 на этой неделе мест нет. Могу предложить 16:00.",
            "Работаем до 21:00. Сегодня свободно только 20:00 на Баумана.",
        ),
    ),
    "price.question": (
        (
            "Сколько стоит стрижка с бородой?",
            "Какие цены на мужскую стрижку?",
            "Сколько стоит детская стрижка?",
            "Почём королевское бритьё?",
        ),
        (
            "Мужская стрижка — от 1 200 ₽, стрижка + борода — от 1 900 ₽. Записать вас?",
            "Детская стрижка — от 900 ₽, до 12 лет. Подобрать время?",
            "Королевское бритьё с горячим полотенцем — от 1 500 ₽. Есть окна завтра.",
        ),
    ),
    "address.question": (
        (
            "Где вы находитесь?",
            "Какой адрес на Ямашева?",
            "Как к вам добраться от метро?",
            "Есть парковка рядом?",
        ),
        (
            "У нас два филиала: на Баумана (5 минут от метро «Кремлёвская») и на Ямашева. Какой ближе?",
            "На Ямашева — вход со двора, парковка у входа бесплатная.",
        ),
    ),
    "services.question": (
        (
            "Делаете камуфляж седины?",
            "А бороду отдельно оформляете?",
            "Стрижёте детей?",
        ),
        (
            "Да, камуфляж седины занимает около 45 минут, от 1 300 ₽.",
            "Да, оформление бороды — отдельная услуга, или вместе со стрижкой выгоднее.",
            "Да, стрижём детей с 3 лет, мастера терпеливые 🙂",
        ),
    ),
    "smalltalk": (
        ("Привет", "А вы бот?", "Добрый вечер", "Спасибо!"),
        (
            "Здравствуйте! Я помощник барбершопа «Усы». Подсказать цены или записать вас?",
            "Я виртуальный помощник, но запись настоящая 🙂 Чем помочь?",
        ),
    ),
}
OPENING_WEIGHTS = {
    "booking.request": 36,
    "booking.evening": 8,
    "price.question": 20,
    "address.question": 9,
    "services.question": 7,
    "smalltalk": 7,
}
# People writing after work mostly want to come after work too.
EVENING_OPENING_BONUS = 26
RETURNING_OPENINGS: Texts = (
    (
        "Снова здравствуйте! Хочу к тому же мастеру",
        "Добрый день, пора подстричься, есть время на выходных?",
        "Привет! Запишите как в прошлый раз",
    ),
    ("Рады снова видеть! Есть время в четверг в 17:00 и в субботу в 11:30.",),
)
RESCHEDULE_TURN: Texts = (
    ("Можно перенести мою запись на другой день?", "Не успеваю к назначенному, можно на час позже?"),
    ("Конечно, перенесу. Какой день удобен?", "Да, на час позже свободно, переношу."),
)

# client message, intent, assistant answer: the middle of a dialog
FOLLOW_UPS = (
    ("А завтра в 19:00 можно?", "booking.evening", "Завтра в 19:00 занято, есть 17:30. Записать?"),
    ("А к какому мастеру лучше?", "masters.question", "С бородой лучше к Ренату, классика — к Артуру."),
    ("Сколько по времени?", "service.duration", "Стрижка — около часа, с бородой — полтора."),
    ("Картой можно оплатить?", "payment.question", "Да, принимаем карты и СБП."),
    ("А в выходные работаете?", "schedule.question", "Да, без выходных с 10:00 до 21:00."),
)
CONTACT_ANSWERS = (
    "Отлично, {first}! Записал вас, напомним за 2 часа до визита.",
    "Спасибо, {first}! Администратор подтвердит запись.",
)
GIVE_UP_MESSAGES = ("Понятно, тогда не надо", "Ладно, подумаю", "Спасибо, неудобно")
# What a Telegram client types to accept the offered slot, and to give up for each reason: the
# assistant's rules turn these into the booking and the refusal with that reason.
CONFIRM_MESSAGES = ("Да, давайте", "Подходит", "Хорошо, давайте в 12:00")

EVENING_SLOTS_REASON = assistant.EVENING_SLOTS_REASON
SLOW_ANSWER_REASON = assistant.SLOW_ANSWER_REASON
OTHER_REASONS = ("дорого", "далеко", "передумал", "записался в другое место", SLOW_ANSWER_REASON)
OTHER_REASON_WEIGHTS = (30, 15, 25, 22, 8)
CANCEL_MESSAGE = "Извините, заболел, отмените запись, пожалуйста"
YCLIENTS_CLIENT_BASE = 40_000_000
# The CRM taking a lead the Telegram assistant created: the event that links the client to the CRM id.
CRM_LINK_EVENT = "crm_lead_linked"
TELEGRAM_GIVE_UPS = {
    EVENING_SLOTS_REASON: ("Мне только вечером удобно, тогда не надо", "Вечером никак? Тогда не буду"),
    "дорого": ("Дорого, не буду", "Что-то дороговато, не надо"),
    "далеко": ("Далеко от меня, не поеду, не надо",),
    "передумал": ("Передумал, не надо", "Ладно, не буду"),
    "записался в другое место": ("Уже записался в другое место, спасибо",),
    SLOW_ANSWER_REASON: ("Долго отвечаете, не надо",),
}

MANAGER_TAKEOVER_TEXTS = (
    "Здравствуйте! Это администратор {manager}, помогу с записью.",
    "Добрый день! Подключился администратор, уточню у мастера и отвечу.",
)
MANAGER_NO_SHOW_TEXTS = (
    "{first}, вы сегодня не пришли на запись. Перенесём на другой день?",
    "{first}, мы вас ждали 🙂 Если планы поменялись, напишите — подберём время.",
)
MANAGER_NAMES = {"mgr_alina": "Алина", "mgr_ilsur": "Ильсур"}

# Local hour of a dialog start (0–23): the shop is busiest to write to after work.
HOUR_WEIGHTS = (1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 6, 6, 6, 7, 10, 12, 12, 11, 9, 5, 2)
EVENING_HOURS = range(17, 22)
# People call only while the administrators are at work.
CALL_CENTER_HOURS = range(10, 21)
# Monday is quiet, Friday and Saturday are the busy days.
WEEKDAY_FACTORS = (0.7, 0.85, 0.9, 0.95, 1.3, 1.35, 1.05)
DIALOGS_PER_DAY = 16.5
MIN_DIALOGS, MAX_DIALOGS = 10, 25

LEAD_BASE = {
    "booking.request": 0.64,
    "booking.evening": 0.55,
    "price.question": 0.45,
    "address.question": 0.38,
    "services.question": 0.45,
    "smalltalk": 0.15,
    "returning": 0.9,
}
SCENARIO_LEAD_SHIFT = {"v1": -0.04, "v2": 0.04}
SLOW_LEAD_PENALTY = 0.15
SLA_MS = 3000
SLOW_ANSWER_SHARE = 0.06
BOOK_AFTER_LEAD = {"day": 0.72, "evening": 0.5, "returning": 0.9}
CRM_SHARE = 0.7
NO_SHOW_SHARE = 0.12
PAID_SHARE = 0.95
RETURN_SHARE = 0.35
REFUSAL_AFTER_SILENCE = {"day": 0.45, "evening": 0.7}
REFUSAL_AFTER_LEAD = 0.75
EVENING_REASON_CHANCE = {"booking.evening": 0.95, "evening_booking": 0.55, "other": 0.14}
CANCELLED_BOOKING_NUMBER = (8, 20)
FOLLOW_UP_COUNT_WEIGHTS = (50, 35, 15)
RESCHEDULE_SHARE = 0.15
# Below this the assistant is unsure, and an administrator often steps in.
LOW_CONFIDENCE = 0.65
MANAGER_TAKEOVER_SHARE = 0.6
MANAGER_NO_SHOW_SHARE = 0.5
GIVE_UP_MESSAGE_SHARE = 0.4
# A returning client is often recognised and not asked for the phone again.
REPEAT_CONTACT_SHARE = 0.5


@dataclass(slots=True)
class _Client:
    """Who writes: fixed per user_id so every event of one person links into one timeline."""

    user_id: str
    channel: str
    first_name: str
    full_name: str
    female: bool
    phone: str
    location: str
    scenario: str
    crm_id: str | None = None
    last_lead_id: str | None = None
    messages_in_chat: int = 0  # Telegram numbers a private chat's messages, both sides, from 1
    yclients_id: int | None = None  # the client card in YCLIENTS, made at the first booking


@dataclass(frozen=True, slots=True)
class TelegramMessage:
    """A Telegram client's message to the salon's bot, and how long the assistant thinks before answering."""

    at: datetime  # UTC
    chat_id: int
    message_id: int
    first_name: str
    last_name: str
    text: str
    think_ms: int


@dataclass(frozen=True, slots=True)
class DemoMonth:
    """The month, oldest first: events exactly as POSTed, Telegram clients' messages for the assistant,
    and the webhooks of the shop's YCLIENTS."""

    history: tuple[dict[str, Any] | TelegramMessage | Webhook, ...]

    @property
    def events(self) -> list[dict[str, Any]]:
        return [item for item in self.history if isinstance(item, dict)]

    @property
    def telegram(self) -> list[TelegramMessage]:
        return [item for item in self.history if isinstance(item, TelegramMessage)]

    @property
    def webhooks(self) -> list[Webhook]:
        return [item for item in self.history if isinstance(item, Webhook)]


@dataclass(slots=True)
class _Dialog:
    """What the outcome of a dialog depends on."""

    client: _Client
    intent: str
    hour: int
    slow: bool
    at: datetime


class _Month:
    """Builds the events day by day; scheduled return visits are why this is stateful."""

    def __init__(self, *, days: int, end: date, seed: int, zone: tzinfo) -> None:
        self.rng = Random(seed)
        self.zone = zone
        self.first_day = end - timedelta(days=days - 1)
        self.days = days
        self.horizon = self._local(end + timedelta(days=1), time())
        self.raw: list[tuple[datetime, int, dict[str, Any]]] = []
        self.telegram: list[tuple[datetime, int, TelegramMessage]] = []
        self.webhooks: list[tuple[datetime, int, Webhook]] = []
        self.yclients = DemoYclients(zone)
        self.yclients_clients = 0
        self.sequence = itertools.count()
        self.used_numbers: set[str] = set()
        self.used_crm: set[int] = set()
        self.returns: defaultdict[date, list[_Client]] = defaultdict(list)
        self.lead_count = 0
        self.booking_count = 0
        self.cancel_at_booking = self.rng.randint(*CANCELLED_BOOKING_NUMBER)
        self.cancelled = False

    def _local(self, day: date, at: time) -> datetime:
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)

    def _emit(self, at: datetime, fields: dict[str, Any]) -> None:
        if at < self.horizon:
            self.raw.append((at, next(self.sequence), fields))

    def _webhook(self, webhook: Webhook) -> None:
        if webhook.at < self.horizon:
            self.webhooks.append((webhook.at, next(self.sequence), webhook))

    def _say(self, dialog: _Dialog, text: str, think_ms: int) -> int:
        """A Telegram client's message to the assistant; returns its number in the chat (answer: the next)."""
        client = dialog.client
        client.messages_in_chat += 2
        message_id = client.messages_in_chat - 1
        if dialog.at + timedelta(milliseconds=think_ms) < self.horizon:
            first, _, last = client.full_name.partition(" ")
            message = TelegramMessage(
                dialog.at, int(client.user_id.removeprefix("tg_")), message_id, first, last, text, think_ms
            )
            self.telegram.append((dialog.at, next(self.sequence), message))
        return message_id

    def _pause(self, low_s: float, high_s: float) -> timedelta:
        return timedelta(milliseconds=round(self.rng.uniform(low_s, high_s) * 1000))

    def _new_client(self) -> _Client:
        rng = self.rng
        channel, prefix, _ = rng.choices(CHANNELS, weights=[share for _, _, share in CHANNELS])[0]
        low, high = USER_NUMBER_DIGITS[prefix]
        while True:
            user_id = f"{prefix}{rng.randrange(10 ** (low - 1), 10**high)}"
            if user_id not in self.used_numbers:
                self.used_numbers.add(user_id)
                break
        female = rng.random() < FEMALE_SHARE
        first = rng.choice(FEMALE_NAMES if female else MALE_NAMES)
        surname = rng.choice(SURNAMES) + ("а" if female else "")
        phone = (
            f"+7 {rng.choice(PHONE_PREFIXES)} {rng.randrange(1000):03d}-"
            f"{rng.randrange(100):02d}-{rng.randrange(100):02d}"
        )
        return _Client(
            user_id=user_id,
            channel=channel,
            first_name=first,
            full_name=f"{first} {surname}",
            female=female,
            phone=phone,
            location=rng.choices(LOCATIONS, weights=LOCATION_WEIGHTS)[0],
            scenario=rng.choice(("v1", "v2")),
        )

    def _response_ms(self) -> int:
        rng = self.rng
        if rng.random() < SLOW_ANSWER_SHARE:
            return rng.randint(3100, 9000)
        return round(rng.triangular(800, 2500, 1300))

    def build(self) -> None:
        for offset in range(self.days):
            day = self.first_day + timedelta(days=offset)
            returning = self.returns.pop(day, [])
            wanted = DIALOGS_PER_DAY * WEEKDAY_FACTORS[day.weekday()] * self.rng.uniform(0.85, 1.15)
            count = max(MIN_DIALOGS, min(MAX_DIALOGS, round(wanted)))
            clients = [(client, True) for client in returning]
            clients += [(self._new_client(), False) for _ in range(max(0, count - len(returning)))]
            for client, is_return in clients:
                hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
                if client.channel == "call_center" and hour not in CALL_CENTER_HOURS:
                    hour = self.rng.choice(CALL_CENTER_HOURS)
                start = self._local(day, time(hour)) + self._pause(0, 3599.999)
                self._dialog(client, start, hour, is_return)

    def _opening(self, hour: int, is_return: bool) -> tuple[str, str, str]:
        rng = self.rng
        if is_return:
            messages, answers = RETURNING_OPENINGS
            return "booking.request", rng.choice(messages), rng.choice(answers)
        weights = dict(OPENING_WEIGHTS)
        if hour in EVENING_HOURS or hour == 16:
            weights["booking.evening"] += EVENING_OPENING_BONUS
        intent = rng.choices(list(weights), weights=list(weights.values()))[0]
        messages, answers = OPENINGS[intent]
        return intent, rng.choice(messages), rng.choice(answers)

    def _turn(
        self, dialog: _Dialog, message: str, intent: str, answer: str, extra: dict[str, Any] | None = None
    ) -> int:
        """One client message and the assistant's answer, which arrives response_time_ms later.

        In Telegram the assistant itself answers (``intent`` and ``answer`` are then its business); returns
        the message's number in the Telegram chat, else 0.
        """
        rng, client = self.rng, dialog.client
        response_ms = self._response_ms()
        dialog.slow = dialog.slow or response_ms > SLA_MS
        if client.channel == "telegram":
            message_id = self._say(dialog, message, response_ms)
            dialog.at += timedelta(milliseconds=response_ms)
            if (
                assistant.answer(message).confidence < LOW_CONFIDENCE
                and rng.random() < MANAGER_TAKEOVER_SHARE
            ):
                self._takeover(dialog)
            dialog.at += self._pause(15, 240)
            return message_id
        self._emit(dialog.at, self._incoming(client, message) | (extra or {}))
        low = 0.55 if intent == "smalltalk" else 0.72
        dialog.at += timedelta(milliseconds=response_ms)
        outgoing: dict[str, Any] = {
            "channel": client.channel,
            "user_id": client.user_id,
            "event": EventType.ASSISTANT_RESPONSE,
            "assistant_response": answer,
            "intent": intent,
            "confidence": round(rng.uniform(low, 0.99), 2),
            "response_time_ms": response_ms,
            "scenario": client.scenario,
            "location": client.location,
        }
        self._emit(dialog.at, outgoing)
        if outgoing["confidence"] < LOW_CONFIDENCE and rng.random() < MANAGER_TAKEOVER_SHARE:
            self._takeover(dialog)
        dialog.at += self._pause(15, 240)
        return 0

    def _takeover(self, dialog: _Dialog) -> None:
        """An administrator steps in after an answer the assistant was unsure of."""
        rng = self.rng
        manager = rng.choice(MANAGERS)
        dialog.at += self._pause(60, 900)
        text = rng.choice(MANAGER_TAKEOVER_TEXTS).format(manager=MANAGER_NAMES[manager])
        self._manager_message(dialog.at, dialog.client, manager, text)

    @staticmethod
    def _incoming(client: _Client, message: str) -> dict[str, Any]:
        incoming: dict[str, Any] = {
            "channel": client.channel,
            "user_id": client.user_id,
            "event": EventType.MESSAGE_RECEIVED,
            "message": message,
        }
        if client.crm_id is not None:
            incoming["crm_id"] = client.crm_id
        return incoming

    def _manager_message(self, at: datetime, client: _Client, manager: str, text: str) -> None:
        fields = {
            "event": EventType.MANAGER_MESSAGE,
            "actor": "manager",
            "manager_id": manager,
            "message": text,
        }
        self._emit(at, self._business(client, fields))

    def _business(self, client: _Client, fields: dict[str, Any]) -> dict[str, Any]:
        """The identifiers every business event repeats, so the timeline links without guessing."""
        event: dict[str, Any] = {"channel": client.channel, "user_id": client.user_id}
        if client.crm_id is not None:
            event["crm_id"] = client.crm_id
        if client.last_lead_id is not None:
            event["lead_id"] = client.last_lead_id
        event["location"] = client.location
        event.update(fields)
        return event

    def _dialog(self, client: _Client, start: datetime, hour: int, is_return: bool) -> None:
        rng = self.rng
        intent, message, answer = self._opening(hour, is_return)
        dialog = _Dialog(client=client, intent=intent, hour=hour, slow=False, at=start)
        extra: dict[str, Any] = {}
        if not is_return:
            if client.channel in UTM_CHANNELS and rng.random() < UTM_SHARE:
                extra["utm_source"] = rng.choice(UTM_SOURCES)
            if client.channel in PHONE_CHANNELS:
                extra["phone"] = client.phone
            if client.channel == "telegram" and rng.random() < 0.5:
                extra["name"] = client.first_name
            if intent == "address.question" and client.channel == "telegram" and rng.random() < 0.5:
                extra["lat"] = f"{55.79 + rng.uniform(-0.06, 0.06):.4f}"
                extra["lon"] = f"{49.12 + rng.uniform(-0.08, 0.08):.4f}"
        self._turn(dialog, message, intent, answer, extra)
        if is_return and rng.random() < RESCHEDULE_SHARE:
            messages, answers = RESCHEDULE_TURN
            self._turn(dialog, rng.choice(messages), "booking.reschedule", rng.choice(answers))
        for _ in range(rng.choices(range(len(FOLLOW_UP_COUNT_WEIGHTS)), weights=FOLLOW_UP_COUNT_WEIGHTS)[0]):
            self._turn(dialog, *rng.choice(FOLLOW_UPS))

        kind = "returning" if is_return else intent
        lead_chance = LEAD_BASE[kind] + SCENARIO_LEAD_SHIFT[client.scenario]
        if dialog.slow:
            lead_chance -= SLOW_LEAD_PENALTY
        if rng.random() >= lead_chance:
            self._maybe_refuse(dialog, REFUSAL_AFTER_SILENCE["evening" if hour in EVENING_HOURS else "day"])
            return
        self._lead(dialog)
        evening = intent == "booking.evening" or (hour in EVENING_HOURS and rng.random() < 0.3)
        book_chance = BOOK_AFTER_LEAD["returning" if is_return else "evening" if evening else "day"]
        if rng.random() < book_chance:
            self._booking(dialog, evening)
        else:
            self._maybe_refuse(dialog, REFUSAL_AFTER_LEAD)

    def _lead(self, dialog: _Dialog) -> None:
        rng, client = self.rng, dialog.client
        telegram = client.channel == "telegram"
        message_id = 0
        # In Telegram the phone number is what makes the assistant create the lead.
        if client.last_lead_id is None or rng.random() < REPEAT_CONTACT_SHARE or telegram:
            message = f"{client.first_name}, {client.phone}"
            answer = rng.choice(CONTACT_ANSWERS).format(first=client.first_name)
            message_id = self._turn(dialog, message, "contact.provided", answer, {"phone": client.phone})
        # The CRM knows the client once the contact is given; the id then stays on all later events.
        if client.crm_id is None and rng.random() < CRM_SHARE:
            while True:
                number = rng.randint(10000, 99999)
                if number not in self.used_crm:
                    self.used_crm.add(number)
                    break
            client.crm_id = f"BX_{number}"
        self.lead_count += 1
        if telegram:
            # The assistant logged the lead; the CRM, which the bot knows nothing of, picks it up.
            client.last_lead_id = assistant.lead_id(int(client.user_id.removeprefix("tg_")), message_id)
            if client.crm_id is not None:
                fields = {"event": CRM_LINK_EVENT, "actor": "system", "phone": client.phone}
                self._emit(dialog.at + self._pause(2, 60), self._business(client, fields))
            return
        local_year = dialog.at.astimezone(self.zone).year
        client.last_lead_id = f"lead_{local_year}_{self.lead_count:04d}"
        dialog.at += self._pause(2, 60)
        fields = {
            "event": EventType.LEAD_CREATED,
            "phone": client.phone,
            "name": client.full_name,
            "scenario": client.scenario,
            "intent": dialog.intent,
        }
        self._emit(dialog.at, self._business(client, fields))

    def _appointment_time(self, booked_at: datetime, evening: bool) -> datetime:
        rng = self.rng
        local_day = booked_at.astimezone(self.zone).date()
        while True:
            day = local_day + timedelta(days=rng.choices(range(5), weights=(3, 4, 2, 1, 1))[0])
            if evening:
                slot = time(rng.randint(18, 20), rng.choice((0, 30)))
            else:
                slot = time(rng.randint(10, 20), rng.choice((0, 30)))
            moment = self._local(day, slot)
            if moment >= booked_at + timedelta(hours=2):
                return moment

    def _booking(self, dialog: _Dialog, evening: bool) -> None:
        """The booking is made in YCLIENTS (by the assistant through its API in Telegram, else by an
        administrator); the visit or no-show and the payment are YCLIENTS' to say, by webhook."""
        rng, client = self.rng, dialog.client
        dialog.at += self._pause(5, 600)
        weights = FEMALE_SERVICE_WEIGHTS if client.female else MALE_SERVICE_WEIGHTS
        service, low, high, minutes = rng.choices(SERVICES, weights=weights)[0]
        booked_at, record_id = dialog.at, None
        if client.channel == "telegram":
            # The assistant books its one service into the slot it offered (the evenings are full).
            service, low, high, minutes = next(
                entry for entry in SERVICES if entry[0] == assistant.BOOKED_SERVICE
            )
            appointment = assistant.booked_slot(dialog.at.replace(microsecond=0))
            message_id = self._turn(dialog, rng.choice(CONFIRM_MESSAGES), "booking.confirm", "")
            record_id = assistant.record_id(int(client.user_id.removeprefix("tg_")), message_id)
            booked_at += timedelta(milliseconds=500)  # the API call, before the answer goes out
        else:
            appointment = self._appointment_time(dialog.at, evening)
        if client.yclients_id is None:
            self.yclients_clients += 1
            client.yclients_id = YCLIENTS_CLIENT_BASE + self.yclients_clients
        booked = self.yclients.book(
            at=booked_at,
            location=client.location,
            client_id=client.yclients_id,
            name=client.full_name,
            phone=client.phone,
            service=service,
            price=float(low),
            appointment=appointment,
            master=rng.choice(MASTERS),
            record_id=record_id,
        )
        self._webhook(booked)
        record = int(booked.body["resource_id"])
        self.booking_count += 1

        if not self.cancelled and self.booking_count >= self.cancel_at_booking and appointment < self.horizon:
            self.cancelled = True
            cancel_at = dialog.at + (appointment - dialog.at) / 2
            self._emit(cancel_at, self._incoming(client, CANCEL_MESSAGE))
            self._webhook(self.yclients.cancel(record, cancel_at + self._pause(60, 600)))
            return
        if rng.random() < NO_SHOW_SHARE:
            self._webhook(self.yclients.attendance(record, appointment + self._pause(900, 1800), NO_SHOW))
            if rng.random() < MANAGER_NO_SHOW_SHARE:
                text = rng.choice(MANAGER_NO_SHOW_TEXTS).format(first=client.first_name)
                self._manager_message(
                    appointment + self._pause(2400, 7200), client, rng.choice(MANAGERS), text
                )
            return
        self._webhook(self.yclients.attendance(record, appointment + self._pause(60, 600), CAME))
        if rng.random() >= PAID_SHARE:
            return
        amount = round(rng.uniform(low, high) / 50) * 50
        if rng.random() < EXTRA_SHARE:
            amount += rng.choice(EXTRAS)[1]
        paid_at = appointment + timedelta(minutes=minutes) + self._pause(0, 600)
        self._webhook(self.yclients.pay(record, paid_at, float(amount)))
        if rng.random() < RETURN_SHARE:
            return_day = paid_at.astimezone(self.zone).date() + timedelta(days=rng.randint(10, 24))
            self.returns[return_day].append(client)

    def _maybe_refuse(self, dialog: _Dialog, chance: float) -> None:
        rng, client = self.rng, dialog.client
        if rng.random() >= chance:
            return
        if client.channel == "telegram":
            # The client says why, and the assistant logs the refusal with that reason.
            reason = self._refusal_reason(dialog)
            self._turn(dialog, rng.choice(TELEGRAM_GIVE_UPS[reason]), EventType.REFUSAL, "")
            return
        if rng.random() < GIVE_UP_MESSAGE_SHARE:
            self._emit(dialog.at, self._incoming(client, rng.choice(GIVE_UP_MESSAGES)))
        dialog.at += self._pause(30, 900)
        fields = {"event": EventType.REFUSAL, "reason": self._refusal_reason(dialog), "intent": dialog.intent}
        self._emit(dialog.at, self._business(client, fields))

    def _refusal_reason(self, dialog: _Dialog) -> str:
        """Most missing-evening-slot refusals come from clients who asked for the evening."""
        rng = self.rng
        if dialog.slow and rng.random() < 0.4:
            return SLOW_ANSWER_REASON
        if dialog.intent == "booking.evening":
            chance = EVENING_REASON_CHANCE["booking.evening"]
        elif dialog.intent == "booking.request" and dialog.hour in EVENING_HOURS:
            chance = EVENING_REASON_CHANCE["evening_booking"]
        else:
            chance = EVENING_REASON_CHANCE["other"]
        if rng.random() < chance:
            return EVENING_SLOTS_REASON
        return rng.choices(OTHER_REASONS, weights=OTHER_REASON_WEIGHTS)[0]


def generate_demo_month(*, days: int = 30, end: date, seed: int = 2025, zone: tzinfo) -> DemoMonth:
    """``days`` local days ending with ``end``: JSON-ready events exactly as POSTed, and Telegram messages.

    Nothing happens after the end of ``end``: visits booked beyond it have no payment or no-show yet.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    month = _Month(days=days, end=end, seed=seed, zone=zone)
    month.build()
    month.raw.sort(key=lambda item: (item[0], item[1]))
    events = {
        n: {
            "event_id": f"demo-{number:06d}",
            "timestamp": moment.astimezone(zone).isoformat(timespec="milliseconds"),
        }
        | fields
        for number, (moment, n, fields) in enumerate(month.raw, start=1)
    }
    others: dict[int, TelegramMessage | Webhook] = {n: message for _, n, message in month.telegram}
    others.update((n, webhook) for _, n, webhook in month.webhooks)
    moments = [(at, n) for at, n, _ in (*month.raw, *month.telegram, *month.webhooks)]
    return DemoMonth(tuple(events[n] if n in events else others[n] for _, n in sorted(moments)))


def pick_showcase_user(events: list[dict[str, Any]], webhooks: list[Webhook]) -> str:
    """A client whose timeline tells the whole story — message, lead, booking, payment, best a repeat
    visit — told by the assistant's events and YCLIENTS' webhooks together, joined by phone as LeadTrail
    links them; returned as the user id of their dialog."""
    phone_of: dict[str, str] = {}
    for event in events:
        if event.get("phone") and (phone := normalize_phone(event["phone"])):
            phone_of.setdefault(event["user_id"], phone)
    kinds: defaultdict[str, set[str]] = defaultdict(set)
    bookings: Counter[str] = Counter()
    sizes: Counter[str] = Counter()
    dialog_user: dict[str, str] = {}
    for event in events:
        person = phone_of.get(event["user_id"], event["user_id"])
        dialog_user.setdefault(person, event["user_id"])
        kinds[person].add(event["event"])
        sizes[person] += 1
    for webhook in webhooks:
        data, body = webhook.body["data"], webhook.body
        person = normalize_phone(data["client"]["phone"]) or ""
        if body["resource"] == FINANCES:
            kinds[person].add(EventType.PAYMENT_STATUS)
        elif body["status"] == "create":
            kinds[person].add(EventType.APPOINTMENT_BOOKED)
            bookings[person] += 1
        sizes[person] += 1
    people = [person for person in kinds if person in dialog_user]
    if not people:
        raise ValueError("no events to pick a client from")
    story = {
        EventType.MESSAGE_RECEIVED,
        EventType.LEAD_CREATED,
        EventType.APPOINTMENT_BOOKED,
        EventType.PAYMENT_STATUS,
    }

    def score(person: str) -> tuple[bool, bool, int, int]:
        # A complete, repeated story first; then the richest; then the shortest to read.
        return story <= kinds[person], bookings[person] > 1, len(kinds[person]), -sizes[person]

    return dialog_user[max(people, key=score)]
