"""The alert rules as pure functions on synthetic numbers: real changes fire, noise and thin data do not."""

from __future__ import annotations

import html
import math
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from reports.alerts import (
    CASE_RULES,
    RULES,
    AiBudget,
    AlertSettings,
    ai_budget,
    conversion_drop,
    evaluate_all,
    ingest_errors,
    lower_rate_p_value,
    no_show_spike,
    silence_p_value,
    slow_ai,
    source_silent,
    unanswered,
)
from reports.followup import FollowupItem
from storage.aggregates import ModelUsage
from storage.alert_inputs import (
    ALL_CHANNELS,
    AlertInputs,
    AnswerTimes,
    ChannelTraffic,
    MonthUsage,
    Proportion,
    RateComparison,
    Rejections,
)
from storage.followup_items import ListKind

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2025, 3, 15, 11, 0, tzinfo=UTC)  # 14:00 in Kazan
SETTINGS = AlertSettings()
SLA = 3.0
BUDGET = AiBudget(10_000.0, "RUB")
# March 2025 in Moscow: from 1 March 00:00 (28 Feb 21:00 UTC) to 1 April 00:00; NOW is 14 days 14 hours in.
MARCH = (datetime(2025, 2, 28, 21, 0, tzinfo=UTC), datetime(2025, 3, 31, 21, 0, tzinfo=UTC))


def spent(*costs: tuple[str | None, float]) -> MonthUsage:
    return MonthUsage(
        *MARCH,
        tuple(ModelUsage("yandexgpt-pro", currency, 10, 1000, 100, 10, cost) for currency, cost in costs),
    )


def rates(recent: tuple[int, int], baseline: tuple[int, int]) -> RateComparison:
    return RateComparison(Proportion(*recent), Proportion(*baseline), since=NOW - timedelta(days=1))


def answers(*seconds: float) -> AnswerTimes:
    return AnswerTimes(tuple(seconds), since=NOW - timedelta(hours=1))


def channel(name: str, silent_hours: float, *clients_per_day: int) -> ChannelTraffic:
    """Ten clients a day in these hours on each of 14 days unless told otherwise."""
    return ChannelTraffic(name, NOW - timedelta(hours=silent_hours), clients_per_day or (10,) * 14)


def quiet_inputs() -> AlertInputs:
    """An ordinary moment of a busy salon: nothing should fire."""
    return AlertInputs(
        now=NOW,
        zone=MOSCOW,
        conversion=rates((12, 30), (168, 420)),
        no_shows=rates((4, 40), (16, 160)),
        answers=answers(*([1.5] * 30)),
        channels=(
            channel("telegram", 0.2),
            channel("site", 5, 1, 0, 2, *[0] * 11),
            channel(ALL_CHANNELS, 0.2),
        ),
        rejections=Rejections(0, NOW - timedelta(hours=1)),
        model_calls=spent(("RUB", 3000.0)),
    )


# --- the two-proportion test -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher", "expected"),
    [
        # pooled 0.5, se = sqrt(0.25 * (1/100 + 1/100)) = 0.0707107, z = 0.10 / se = sqrt(2):
        # p = 1 - Phi(sqrt 2) = erfc(1) / 2
        ((45, 100), (55, 100), 0.0786496035),
        # pooled 0.2, se = sqrt(0.16 * 0.02) = 0.0565685, z = 0.20 / se = 2.5 * sqrt(2): p = erfc(2.5) / 2
        ((10, 100), (30, 100), 0.000203476009),
        # pooled 35/150, se = sqrt(0.233333 * 0.766667 * (1/50 + 1/100)) = 0.0732575, z = 0.2 / se = 2.73009
        ((5, 50), (30, 100), 0.00316580835),
    ],
)
def test_p_value_matches_hand_computed_z_test(
    lower: tuple[int, int], higher: tuple[int, int], expected: float
) -> None:
    assert lower_rate_p_value(Proportion(*lower), Proportion(*higher)) == pytest.approx(expected, rel=1e-6)


def test_p_value_is_one_sided() -> None:
    up = lower_rate_p_value(Proportion(55, 100), Proportion(45, 100))
    assert up == pytest.approx(1 - 0.0786496035, rel=1e-6)
    assert lower_rate_p_value(Proportion(30, 100), Proportion(30, 100)) == pytest.approx(0.5)


def test_p_value_without_data_or_variance() -> None:
    assert lower_rate_p_value(Proportion(0, 0), Proportion(5, 10)) is None
    assert lower_rate_p_value(Proportion(0, 10), Proportion(0, 40)) == 1.0
    # More no-shows than bookings in a window (they belong to earlier bookings) still give a valid test.
    capped = lower_rate_p_value(Proportion(16, 160), Proportion(25, 20))
    assert capped is not None and 0 < capped < 1e-15


# --- conversion_drop ---------------------------------------------------------------------------------


def test_conversion_drop_fires_on_a_real_drop() -> None:
    verdict = conversion_drop(rates((3, 30), (168, 420)), SETTINGS, MOSCOW)
    assert verdict.firing
    assert (verdict.rule, verdict.scope) == ("conversion_drop", "")
    assert verdict.value == pytest.approx(0.1)
    assert verdict.baseline == pytest.approx(0.4)
    # pooled 171/450 = 0.38, se = sqrt(0.38 * 0.62 * (1/30 + 1/420)) = 0.0917, z = 3.2705
    assert verdict.p_value == pytest.approx(0.000536810, rel=1e-5)
    assert verdict.numbers == {
        "clients": 30,
        "clients_with_lead": 3,
        "baseline_clients": 420,
        "baseline_clients_with_lead": 168,
    }
    assert verdict.since == NOW - timedelta(days=1)
    assert "10,0\u00a0% за последние 24 часа против 40,0\u00a0%" in verdict.text
    assert "(−75,0\u00a0%)" in verdict.text
    assert (
        "Клиентов за сутки: 30, из них с заявкой: 3; в те же часы 14 дней до этого: 420 и 168" in verdict.text
    )
    assert "Период: с 14.03.2025 14:00 по сейчас." in verdict.text
    assert verdict.check in verdict.text and verdict.check.startswith("Что проверить первым")


def test_conversion_noise_of_a_small_salon_stays_silent() -> None:
    """3 dialogs a day, usually one lead; today none: a 100% drop that proves nothing."""
    verdict = conversion_drop(rates((0, 3), (14, 42)), SETTINGS, MOSCOW)
    assert not verdict.firing
    assert verdict.value == 0.0
    assert "мало данных" in verdict.text


def test_conversion_drop_needs_both_samples_at_the_minimum() -> None:
    at_minimum = conversion_drop(rates((0, 20), (100, 200)), SETTINGS, MOSCOW)
    assert at_minimum.firing
    assert not conversion_drop(rates((0, 19), (100, 200)), SETTINGS, MOSCOW).firing
    assert not conversion_drop(rates((0, 40), (8, 19)), SETTINGS, MOSCOW).firing
    assert conversion_drop(rates((0, 19), (100, 200)), AlertSettings(min_clients=19), MOSCOW).firing


def test_conversion_drop_needs_significance() -> None:
    """20 clients with 6 leads against 45%: a 33% drop, but p = 0.096 is chance at this size."""
    verdict = conversion_drop(rates((6, 20), (126, 280)), SETTINGS, MOSCOW)
    assert not verdict.firing
    assert verdict.p_value == pytest.approx(0.0958473, rel=1e-5)
    assert "без значимых изменений" in verdict.text


def test_conversion_drop_needs_a_large_enough_drop() -> None:
    """Significant (p = 0.0009) but only 12.5% lower: not worth waking the owner."""
    verdict = conversion_drop(rates((350, 1000), (5600, 14000)), SETTINGS, MOSCOW)
    assert verdict.p_value is not None and verdict.p_value < SETTINGS.p_value
    assert not verdict.firing
    assert conversion_drop(
        rates((350, 1000), (5600, 14000)), AlertSettings(conversion_drop=0.1), MOSCOW
    ).firing


def test_conversion_rise_never_fires() -> None:
    assert not conversion_drop(rates((28, 30), (168, 420)), SETTINGS, MOSCOW).firing


# --- no_show_spike -----------------------------------------------------------------------------------


def test_no_show_spike_fires_on_a_real_rise() -> None:
    verdict = no_show_spike(rates((14, 40), (16, 160)), SETTINGS, MOSCOW)
    assert verdict.firing
    assert (verdict.value, verdict.baseline) == (pytest.approx(0.35), pytest.approx(0.1))
    # pooled 30/200 = 0.15, se = sqrt(0.15 * 0.85 * (1/160 + 1/40)) = 0.06313, z = 3.9606
    assert verdict.p_value == pytest.approx(3.73824e-05, rel=1e-4)
    assert verdict.numbers["no_shows"] == 14 and verdict.numbers["baseline_bookings"] == 160
    assert (
        "35,0\u00a0% за последние 7 дней против 10,0\u00a0% за 28 дней до этого (+250,0\u00a0%)"
        in verdict.text
    )
    assert "Записей за 7 дней: 40, неявок: 14" in verdict.text


def test_no_show_noise_and_thin_data_stay_silent() -> None:
    assert not no_show_spike(rates((3, 5), (16, 160)), SETTINGS, MOSCOW).firing
    assert not no_show_spike(rates((6, 40), (16, 160)), SETTINGS, MOSCOW).firing
    assert not no_show_spike(rates((2, 40), (16, 160)), SETTINGS, MOSCOW).firing


def test_no_show_spike_from_zero() -> None:
    """No no-shows for four weeks, then a third of the week's visits: an infinite rise, left to the test."""
    assert no_show_spike(rates((10, 30), (0, 120)), SETTINGS, MOSCOW).firing
    assert not no_show_spike(rates((1, 30), (0, 120)), SETTINGS, MOSCOW).firing


# --- slow_ai -----------------------------------------------------------------------------------------


def test_slow_ai_fires_when_p95_is_over_the_sla() -> None:
    verdict = slow_ai(answers(*([1.0] * 94), *([10.0] * 6)), SETTINGS, SLA, MOSCOW)
    assert verdict.firing
    assert verdict.numbers["over_sla_share"] == pytest.approx(0.06)
    assert verdict.value == pytest.approx(10.0)
    assert verdict.baseline == SLA
    assert (
        "p95 времени ответа 10,0\u00a0с при норме 3,0\u00a0с; дольше нормы 6 из 100 ответов" in verdict.text
    )


def test_slow_ai_fires_when_too_many_answers_are_slow() -> None:
    verdict = slow_ai(answers(*([1.0] * 17), *([2.9] * 1), *([3.5] * 3)), SETTINGS, SLA, MOSCOW)
    assert verdict.numbers["over_sla_share"] == pytest.approx(3 / 21)
    assert verdict.firing
    lenient = AlertSettings(slow_ai_over_sla_share=0.2)
    assert slow_ai(answers(*([1.0] * 90), *([3.5] * 10)), lenient, SLA, MOSCOW).firing


def test_slow_ai_stays_silent_on_a_few_slow_answers_and_thin_data() -> None:
    few = slow_ai(answers(*([1.0] * 95), *([10.0] * 5)), SETTINGS, SLA, MOSCOW)
    assert not few.firing
    assert few.value == pytest.approx(1.45)
    thin = slow_ai(answers(*([9.0] * 19)), SETTINGS, SLA, MOSCOW)
    assert not thin.firing
    assert "мало для вывода" in thin.text
    assert slow_ai(answers(*([9.0] * 20)), SETTINGS, SLA, MOSCOW).firing


# --- source_silent -----------------------------------------------------------------------------------


def test_silence_p_value_mixes_the_days_it_learnt_from() -> None:
    # Today like one of the busy days: e^−10 each.
    assert silence_p_value([10] * 14) == pytest.approx(math.exp(-10))
    # One slow day among busy ones: (13·e^−10 + e^−1) / 14 = 0.026319, far above e^−mean = 8.6e-5.
    assert silence_p_value([10] * 13 + [1]) == pytest.approx(0.0263193, rel=1e-5)
    # Days off are not learnt from (silence_min_days judges them); without any day: no evidence.
    assert silence_p_value([10, 0, 0]) == pytest.approx(math.exp(-10))
    assert silence_p_value([0, 0]) == 1.0


def test_source_silent_fires_for_a_busy_channel_that_usually_speaks_now() -> None:
    verdict = source_silent(channel("telegram", 3), SETTINGS, NOW, MOSCOW)
    assert verdict.firing
    assert (verdict.rule, verdict.scope) == ("source_silent", "telegram")
    assert verdict.value == pytest.approx(3.0)
    assert verdict.p_value == pytest.approx(math.exp(-10))
    assert verdict.since == NOW - timedelta(hours=3)
    assert verdict.numbers["usual_clients"] == 10.0 and verdict.numbers["active_days"] == 14
    assert "Канал telegram: тишина 3,0\u00a0ч, последнее событие 15.03.2025 11:00." in verdict.text
    assert "в эти часы клиентов в среднем 10,0, события были в 14 из 14 предыдущих дней" in verdict.text
    assert "p менее 0,0001" in verdict.text


@pytest.mark.parametrize(
    ("silent_hours", "clients_per_day"),
    [
        (1.9, (10,) * 14),  # not quiet for long enough yet
        (30, (10,) * 12 + (0, 0)),  # quiet on two of the 14 days in these hours: a day off, not an outage
        (5, (6,) * 14),  # six clients usually: none by chance has p = e^−6 = 0.0025
        (5, (10,) * 13 + (1,)),  # busy, but one day brought a single client
    ],
)
def test_source_silent_stays_silent_when_the_quiet_can_be_usual(
    silent_hours: float, clients_per_day: tuple[int, ...]
) -> None:
    assert not source_silent(channel("site", silent_hours, *clients_per_day), SETTINGS, NOW, MOSCOW).firing


def test_source_silent_thresholds_come_from_settings() -> None:
    lenient = AlertSettings(silence_hours=1.5, silence_min_days=12, silence_p_value=0.03)
    for traffic in (
        channel("a", 1.9),
        channel("b", 30, *(10,) * 12, 0, 0),
        channel("c", 5, *(6,) * 14),
        channel("d", 5, *(10,) * 13, 1),
    ):
        assert source_silent(traffic, lenient, NOW, MOSCOW).firing


def test_source_silent_for_all_channels_together() -> None:
    verdict = source_silent(channel(ALL_CHANNELS, 4), SETTINGS, NOW, MOSCOW)
    assert verdict.firing
    assert verdict.scope == ""
    assert verdict.text.startswith(
        "🔇 Все каналы вместе: тишина 4,0\u00a0ч, последнее событие 15.03.2025 10:00."
    )
    assert "работает ли ассистент (его процесс и сервер)" in verdict.check


def test_channel_names_are_escaped() -> None:
    verdict = source_silent(channel("<b>bot & co</b>", 3), SETTINGS, NOW, MOSCOW)
    assert "&lt;b&gt;bot &amp; co&lt;/b&gt;" in verdict.text
    assert "<b>" not in verdict.text and "<b>" not in verdict.check
    assert verdict.scope == "<b>bot & co</b>"


# --- ingest_errors -----------------------------------------------------------------------------------


def test_ingest_errors_fire_at_the_threshold() -> None:
    since = NOW - timedelta(hours=1)
    rejections = Rejections(10, since, NOW - timedelta(minutes=40), "http", "timestamp: <bad>")
    verdict = ingest_errors(rejections, SETTINGS, MOSCOW)
    assert verdict.firing
    assert (verdict.value, verdict.baseline) == (10, 10)
    assert "отклонено событий: 10 (порог 10)" in verdict.text
    assert "Первое из них: 15.03.2025 13:20." in verdict.text
    assert "(источник http): timestamp: &lt;bad&gt;" in verdict.text
    assert not ingest_errors(replace(rejections, count=9), SETTINGS, MOSCOW).firing


# --- unanswered ---------------------------------------------------------------------------------------


def waiting(
    client_id: int, minutes: float, name: str | None = "Алсу <b>", message: str | None = None
) -> FollowupItem:
    return FollowupItem(
        kind=ListKind.UNANSWERED,
        client_id=client_id,
        user_ids=(f"tg_{client_id}",),
        name=name,
        phone=None,
        channel="telegram",
        since=NOW - timedelta(minutes=minutes),
        event="message_received",
        message=message,
    )


def test_unanswered_is_one_verdict_per_waiting_client_in_working_hours_only() -> None:
    message = "Здравствуйте <script>" + "я" * 300
    first, second = unanswered(
        [waiting(7, 65, message=message), waiting(8, 12, name=None)], SETTINGS, NOW, MOSCOW
    )
    assert (first.rule, first.scope, first.client_id, first.firing) == ("unanswered", "7", 7, True)
    assert first.value == pytest.approx(65) and first.since == NOW - timedelta(minutes=65)
    assert "ждёт ответа 1\xa0ч 5\xa0мин: Алсу &lt;b&gt; (tg_7), канал telegram" in first.text
    preview = first.text.split("«")[1].split("»")[0]
    assert preview.startswith("Здравствуйте &lt;script&gt;") and len(html.unescape(preview)) == 200
    assert "ждёт ответа 12\xa0мин: tg_8, канал telegram" in second.text  # no name: the id

    night = NOW.replace(hour=19)  # 22:00 in Kazan
    assert not any(verdict.firing for verdict in unanswered([waiting(7, 65)], SETTINGS, night, MOSCOW))
    overnight = AlertSettings(working_hours="21:00-09:00")
    assert unanswered([waiting(7, 65)], overnight, night, MOSCOW)[0].firing
    assert not unanswered([waiting(7, 65)], overnight, NOW, MOSCOW)[0].firing


@pytest.mark.parametrize("hours", ["9:00-21:00", "09:00-25:00", "09:00", "09:00-24:30", "утро"])
def test_working_hours_must_be_a_range_of_times(hours: str) -> None:
    with pytest.raises(ValidationError, match="working_hours"):
        AlertSettings(working_hours=hours)


def test_working_hours_ends_are_start_included_end_excluded() -> None:
    day = AlertSettings()
    assert [day.is_working_time(time(h, m)) for h, m in ((8, 59), (9, 0), (20, 59), (21, 0))] == [
        False,
        True,
        True,
        False,
    ]
    assert AlertSettings(working_hours="10:00-24:00").is_working_time(time(23, 59))
    assert AlertSettings(working_hours="00:00-00:00").is_working_time(time(3, 0))


# --- all rules together ------------------------------------------------------------------------------


def test_quiet_moment_gives_a_non_firing_verdict_for_every_rule_and_channel() -> None:
    verdicts = evaluate_all(quiet_inputs(), SETTINGS, SLA, budget=BUDGET)
    assert [(v.rule, v.scope) for v in verdicts] == [
        ("conversion_drop", ""),
        ("no_show_spike", ""),
        ("slow_ai", ""),
        ("source_silent", ""),
        ("source_silent", "site"),
        ("source_silent", "telegram"),
        ("ingest_errors", ""),
        ("ai_budget", "2025-03 80%"),
        ("ai_budget", "2025-03 100%"),
    ]
    # A case rule has a verdict per waiting client, and nobody waits.
    assert {v.rule for v in verdicts} == set(RULES) - set(CASE_RULES)
    assert "ai_budget" not in {v.rule for v in evaluate_all(quiet_inputs(), SETTINGS, SLA)}  # no budget set
    assert not any(v.firing for v in verdicts)
    assert all(v.text.startswith("✅") for v in verdicts)


def test_every_rule_fires_with_its_numbers() -> None:
    broken = replace(
        quiet_inputs(),
        conversion=rates((3, 30), (168, 420)),
        no_shows=rates((14, 40), (16, 160)),
        answers=answers(*([6.0] * 25)),
        channels=(channel("telegram", 4),),
        rejections=Rejections(25, NOW - timedelta(hours=1), NOW - timedelta(minutes=50), "http", "x: y"),
        model_calls=spent(("RUB", 12_000.0)),
    )
    verdicts = evaluate_all(broken, SETTINGS, SLA, [waiting(7, 30)], BUDGET)
    firing = [v.rule for v in verdicts if v.firing]
    assert firing == [*RULES[:-1], "ai_budget", "unanswered"]  # both budget levels
    for verdict in verdicts:
        assert verdict.numbers and verdict.since is not None
        assert verdict.check in verdict.text
        assert html.escape(html.unescape(verdict.text), quote=False) == verdict.text


# --- ai_budget ---------------------------------------------------------------------------------------


def test_the_budget_levels_say_the_spend_and_the_forecast_once_each() -> None:
    # 8,100 ₽ in roubles (and a cost in dollars that is not counted) after 14 days 14 hours of March's 31.
    low, high = ai_budget(spent(("RUB", 8000.0), (None, 100.0), ("USD", 50.0)), BUDGET, NOW, MOSCOW)
    assert (low.firing, high.firing) == (True, False)
    assert low.repeats is False and high.repeats is False
    assert low.value == pytest.approx(0.81) and low.numbers["forecast"] == pytest.approx(
        8100 * 31 / (14 + 14 / 24)
    )
    assert low.text.startswith(
        "💸 Расходы на ИИ за март 2025 дошли до 80\xa0% бюджета: 8\xa0100\xa0₽ из 10\xa0000\xa0₽ (81\xa0%)."
    )
    assert "Прогноз на месяц при нынешнем темпе: 17\xa0218,29\xa0₽." in low.text
    assert high.text.startswith("✅ Расходы на ИИ за март 2025: 8\xa0100\xa0₽")
    over = ai_budget(spent(("RUB", 10_000.0)), BUDGET, NOW, MOSCOW)[1]
    assert over.firing and over.text.startswith(
        "⛔ Бюджет на ИИ за март 2025 исчерпан: 10\xa0000\xa0₽ из 10\xa0000\xa0₽"
    )
