"""``leadtrail alerts check`` as an operator runs it: a history imported with ``ingest``, judged at --now."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.processes import leadtrail, write_config

MOSCOW = ZoneInfo("Europe/Moscow")
NOW = datetime(2025, 3, 15, 14, 0, tzinfo=MOSCOW)


def day_of_dialogs(start: datetime, prefix: str, clients: int, with_lead: int) -> list[bytes]:
    lines = []
    for number in range(clients):
        at = start + timedelta(minutes=10 * number)
        lines.append(
            orjson.dumps(
                {"timestamp": at.isoformat(), "event": "message_received", "user_id": f"{prefix}_{number}"}
            )
        )
        # Every client is answered: nobody waits, so only the conversion rule speaks.
        answer_at = (at + timedelta(seconds=30)).isoformat()
        lines.append(
            orjson.dumps(
                {"timestamp": answer_at, "event": "assistant_response", "user_id": f"{prefix}_{number}"}
            )
        )
        if number < with_lead:
            lead_at = (at + timedelta(minutes=5)).isoformat()
            lines.append(
                orjson.dumps({"timestamp": lead_at, "event": "lead_created", "user_id": f"{prefix}_{number}"})
            )
    return lines


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two weeks at 40% conversion, then a day at 2 leads out of 30, imported through ``leadtrail ingest``."""
    folder = tmp_path_factory.mktemp("alerts-cli")
    path = write_config(
        folder / "c.toml",
        {"timezone": "Europe/Moscow", "database": {"url": f"sqlite+aiosqlite:///{folder / 'alerts.db'}"}},
    )
    lines: list[bytes] = []
    for days in range(1, 15):
        lines += day_of_dialogs(NOW - timedelta(days=days, hours=6), f"d{days}", clients=30, with_lead=12)
    lines += day_of_dialogs(NOW - timedelta(hours=6), "today", clients=30, with_lead=2)
    events = folder / "events.ndjson"
    events.write_bytes(b"\n".join(lines) + b"\n")
    result = leadtrail("ingest", str(events), "--config", str(path))
    assert result.returncode == 0, result.stderr
    return path


def test_check_json_lists_exactly_the_rules_that_would_fire(config: Path) -> None:
    result = leadtrail("alerts", "check", "--now", "2025-03-15T14:00", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    alerts = json.loads(result.stdout)
    assert [list(alert) for alert in alerts] == [["rule", "scope", "value", "baseline", "p_value", "text"]]
    [alert] = alerts
    assert (alert["rule"], alert["scope"]) == ("conversion_drop", "")
    assert alert["value"] == pytest.approx(2 / 30)
    assert alert["baseline"] == pytest.approx(0.4)
    assert 0 < alert["p_value"] < 0.01
    assert "Конверсия из диалога в заявку упала" in alert["text"]


def test_an_aware_now_is_the_same_moment(config: Path) -> None:
    naive = leadtrail("alerts", "check", "--now", "2025-03-15T14:00", "--json", "--config", str(config))
    aware = leadtrail("alerts", "--config", str(config), "check", "--now", "2025-03-15T11:00:00Z", "--json")
    assert aware.returncode == 0, aware.stderr
    assert json.loads(aware.stdout) == json.loads(naive.stdout)


def test_check_text_is_readable(config: Path) -> None:
    firing = leadtrail("alerts", "check", "--now", "2025-03-15T14:00", "--config", str(config))
    assert firing.returncode == 0, firing.stderr
    assert firing.stdout.startswith("На 15.03.2025 14:00 сработали бы оповещения: 1.")
    assert "📉 Конверсия из диалога в заявку упала" in firing.stdout
    assert "Что проверить первым" in firing.stdout

    # A day before, the same shop had an ordinary day.
    calm = leadtrail("alerts", "check", "--now", "2025-03-14T14:00", "--config", str(config))
    assert calm.returncode == 0, calm.stderr
    assert calm.stdout.startswith("Всё в порядке")
    calm_json = leadtrail("alerts", "check", "--now", "2025-03-14T14:00", "--json", "--config", str(config))
    assert json.loads(calm_json.stdout) == []


def test_bad_moment_is_a_usage_error(config: Path) -> None:
    result = leadtrail("alerts", "check", "--now", "yesterday", "--config", str(config))
    assert result.returncode == 2
    assert "bad moment 'yesterday'" in result.stderr
