"""Which report the owner asks for (/report's and /export's arguments, a button's period), and the A/B
samples of /report's section."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from bot.settings import Settings
from reports.ab_test import ScenarioSample
from reports.periods import Period, default_period, parse_period
from storage.database import Database
from storage.scenario_queries import scenario_conversions

# The period code of a plain /report: yesterday and the 7 days before.
DEFAULT_PERIOD = "default"


@dataclass(frozen=True, slots=True)
class ReportRequest:
    """``code`` is what the buttons carry to ask for the same period again."""

    period: Period
    code: str
    location: str | None


def parse_request(args: str, settings: Settings, now: datetime | None = None) -> ReportRequest:
    """``[period] [@location]``; ValueError names what was not understood."""
    moment = now or datetime.now(UTC)
    words = args.split()
    places = [word[1:] for word in words if word.startswith("@") and len(word) > 1]
    rest = [word for word in words if not word.startswith("@")]
    if len(rest) > 1 or len(places) > 1:
        raise ValueError(" ".join(words))
    location = places[0] if places else None
    return period_request(rest[0] if rest else DEFAULT_PERIOD, settings, location, moment)


def period_request(
    code: str, settings: Settings, location: str | None, now: datetime | None = None
) -> ReportRequest:
    moment = now or datetime.now(UTC)
    if code == DEFAULT_PERIOD:
        return ReportRequest(default_period(moment, settings.tz), code, location)
    return ReportRequest(parse_period(code, moment, settings.tz), code, location)


async def scenario_samples(db: Database, settings: Settings, request: ReportRequest) -> list[ScenarioSample]:
    start, end = request.period.utc_bounds(settings.tz)
    async with db.sessions() as session:
        rows = await scenario_conversions(session, start, end, request.location)
    return [ScenarioSample(scenario, dialogs, leads) for scenario, dialogs, leads in rows]
