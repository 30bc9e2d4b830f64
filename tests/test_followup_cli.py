"""``leadtrail followup`` and the ``unanswered`` alert as an operator runs them: the issue's dataset
imported with ``leadtrail ingest``, the lists read at ``--now``."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import orjson
import pytest

from tests.followup_data import EXPECTED, followup_events
from tests.processes import leadtrail, write_config

NOW = datetime(2025, 3, 15, 14, 0, tzinfo=ZoneInfo("Europe/Moscow"))
ITEM_KEYS = ["client_id", "user_ids", "name", "phone", "channel", "since", "reason"]


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("followup-cli")
    path = write_config(
        folder / "c.toml",
        {"timezone": "Europe/Moscow", "database": {"url": f"sqlite+aiosqlite:///{folder / 'f.db'}"}},
    )
    events = folder / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(item) for item in followup_events(NOW)) + b"\n")
    result = leadtrail("ingest", str(events), "--config", str(path))
    assert result.returncode == 0, result.stderr
    return path


def followup(config: Path, *args: str) -> dict[str, list[dict[str, object]]]:
    result = leadtrail("followup", "--now", "2025-03-15T14:00", "--json", *args, "--config", str(config))
    assert result.returncode == 0, result.stderr
    data: dict[str, list[dict[str, object]]] = json.loads(result.stdout)
    return data


def test_json_holds_exactly_each_lists_clients(config: Path) -> None:
    data = followup(config)
    assert list(data) == ["now", "unanswered", "leads_without_booking", "no_shows", "repeat_due"]
    assert data["now"] == "2025-03-15T14:00:00.000+03:00"
    assert {kind: [item["user_ids"][0] for item in data[kind]] for kind in EXPECTED} == EXPECTED
    [waiting] = data["unanswered"]
    assert list(waiting) == ITEM_KEYS
    assert waiting["user_ids"] == ["tg_wait"] and waiting["name"] == "Алсу Ждущая"
    assert (waiting["phone"], waiting["channel"]) == ("+79171000001", "telegram")
    assert waiting["since"] == "2025-03-15T13:00:00.000+03:00"
    assert waiting["reason"] == "ждёт ответа 1\xa0ч (сообщение 15.03 13:00)"
    assert data["no_shows"][0]["reason"] == "не пришёл(ла) 12.03 14:00, новой записи нет"


def test_text_lists_every_list_with_its_count(config: Path) -> None:
    result = leadtrail("followup", "--now", "2025-03-15T14:00", "--config", str(config))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith("Кому ответить и позвонить — на 15.03.2025 14:00")
    assert (
        "💬 Без ответа: 1\n  1. Алсу Ждущая · tg_wait · +79171000001 · telegram — ждёт ответа 1\xa0ч" in text
    )
    assert "🔁 Пора позвать снова: 2\n  1. Регина Постоянная · yc_regular · yclients" in text


def test_location_limits_the_lists(config: Path) -> None:
    data = followup(config, "--location", "Баумана")
    assert [item["user_ids"] for item in data["leads_without_booking"]] == [["tg_lead"]]
    assert data["unanswered"] == data["no_shows"] == data["repeat_due"] == []


def test_bad_arguments_are_usage_errors(config: Path) -> None:
    empty = leadtrail("followup", "--location", " ", "--config", str(config))
    assert empty.returncode == 2 and "--location must name a location" in empty.stderr
    moment = leadtrail("followup", "--now", "вчера", "--config", str(config))
    assert moment.returncode == 2 and "bad moment" in moment.stderr


def test_alerts_check_lists_the_waiting_client_under_unanswered(config: Path) -> None:
    result = leadtrail("alerts", "check", "--now", "2025-03-15T14:00", "--json", "--config", str(config))
    assert result.returncode == 0, result.stderr
    [waiting] = [alert for alert in json.loads(result.stdout) if alert["rule"] == "unanswered"]
    assert waiting["scope"] == str(followup(config)["unanswered"][0]["client_id"])
    assert "Алсу Ждущая (tg_wait), канал telegram" in waiting["text"]
    assert waiting["value"] == pytest.approx(60)

    evening = leadtrail("alerts", "check", "--now", "2025-03-15T21:30", "--json", "--config", str(config))
    assert [alert["rule"] for alert in json.loads(evening.stdout)] == []  # outside working hours
