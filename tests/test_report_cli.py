"""``leadtrail report`` as an operator runs it: the JSON contract, the owner's text, exit codes."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import orjson
import pytest

from tests.processes import free_port, leadtrail, write_config
from tests.test_metrics import EXPECTED, EXPECTED_PREVIOUS, FIXTURE, MOSCOW


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding the metrics fixture, loaded with ``leadtrail ingest`` like real data."""
    folder = tmp_path_factory.mktemp("report-cli")
    path = write_config(
        folder / "c.toml",
        {
            "timezone": "Europe/Moscow",
            "database": {"url": f"sqlite+aiosqlite:///{folder / 'report.db'}"},
            "reports": {"sla_seconds": 3},
        },
    )
    events = folder / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(item) for item in FIXTURE) + b"\n")
    loaded = leadtrail("ingest", str(events), "--config", str(path))
    assert loaded.returncode == 0, loaded.stderr
    return path


def test_json_follows_the_contract(config: Path) -> None:
    result = leadtrail(
        "report", "--from", "2025-03-10", "--to", "2025-03-11", "--json", "--config", str(config)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    previous = data.pop("previous")
    assert data == EXPECTED
    assert previous == EXPECTED_PREVIOUS


def test_config_may_come_first_and_location_limits_the_report(config: Path) -> None:
    result = leadtrail(
        "report",
        "--config",
        str(config),
        "--period",
        "2025-03-10..2025-03-11",
        "--location",
        "Ямашева",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["by_location"] == {"Ямашева": {"clients": 0, "leads": 1, "bookings": 0}}
    assert data["ai_responses"] == 2
    assert data["previous"]["clients"] == 1


def test_text_is_the_owners_summary_without_tags(config: Path) -> None:
    result = leadtrail("report", "--from", "2025-03-10", "--to", "2025-03-11", "--config", str(config))
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "📊 Отчёт за 10.03.2025 — 11.03.2025" in text
    assert "Диалог → заявка: 50,0\u00a0% ▲ +50,0\u00a0п.п." in text
    assert "Заявка → запись: 50,0\u00a0%" in text
    assert "Выручка: 3\u00a0500,50\u00a0₽ ▲ +3\u00a0500,50\u00a0₽" in text
    assert "Ответ ИИ, медиана: 2,5\u00a0с" in text
    assert "1. нет вечерних слотов — 2 (50,0\u00a0%)" in text
    assert "<b>" not in text and "&amp;" not in text


def test_relative_period_is_counted_in_the_configured_zone(config: Path) -> None:
    before = datetime.now(MOSCOW).date().isoformat()
    result = leadtrail("report", "--period", "today", "--json", "--config", str(config))
    after = datetime.now(MOSCOW).date().isoformat()
    assert result.returncode == 0, result.stderr
    period = json.loads(result.stdout)["period"]
    assert period["from"] == period["to"]
    assert period["from"] in {before, after}


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        (["--period", "7d", "--from", "2025-03-01", "--to", "2025-03-02"], "either --from/--to or --period"),
        (["--from", "2025-03-01"], "--from and --to go together"),
        (["--period", "week"], "'week'"),
        (["--from", "2025-03-05", "--to", "2025-03-01"], "the end is before the start"),
        (["--from", "2025-02-30", "--to", "2025-03-01"], "'2025-02-30'"),
        (["--location", " ", "--period", "7d"], "--location"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(config: Path, arguments: list[str], reason: str) -> None:
    result = leadtrail("report", *arguments, "--config", str(config))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("leadtrail: ")
    assert reason in lines[0]


def test_unreachable_database_exits_1_with_one_line(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://nobody@127.0.0.1:{free_port()}/none"
    path = write_config(tmp_path / "c.toml", {"database": {"url": url}})
    result = leadtrail("report", "--period", "yesterday", "--config", str(path))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("leadtrail: cannot open the database")
