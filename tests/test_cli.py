"""The command line as an operator meets it: exit codes, one-line reasons, the bulk import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.conftest import SEED_EVENT
from tests.processes import clean_env, leadtrail, write_config


@pytest.fixture
def db_env(tmp_path: Path) -> dict[str, str]:
    return {"LEADTRAIL_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


def test_ingest_reports_counts_and_line_numbers(tmp_path: Path, db_env: dict[str, str]) -> None:
    lines = [
        orjson.dumps(SEED_EVENT),
        b"",
        orjson.dumps({**SEED_EVENT, "event": "assistant_response", "intent": "booking.request"}),
        b"{broken",
        orjson.dumps({"event": "no_show", "user_id": "tg_1"}),
        orjson.dumps(SEED_EVENT),
    ]
    path = tmp_path / "events.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = leadtrail("ingest", str(path), env=db_env)
    assert result.returncode == 1
    assert "принято: 2, дубликатов: 1, отклонено: 2" in result.stdout
    assert "строка 4:" in result.stderr
    assert "строка 5: timestamp: required field is missing" in result.stderr
    assert "2 lines rejected" in result.stderr.splitlines()[-1]

    again = leadtrail("ingest", "-", env=db_env, stdin=orjson.dumps(SEED_EVENT))
    assert again.returncode == 0
    assert "принято: 0, дубликатов: 1, отклонено: 0" in again.stdout

    quarantine = leadtrail("quarantine", "--json", env=db_env)
    assert quarantine.returncode == 0
    assert json.loads(quarantine.stdout)["total"] == 2


def test_client_text_timeline_is_readable(tmp_path: Path, db_env: dict[str, str]) -> None:
    leadtrail("ingest", "-", env=db_env, stdin=orjson.dumps({**SEED_EVENT, "name": "Айдар", "utm": "vk"}))
    result = leadtrail("client", "lead_2025_001", env=db_env)
    assert result.returncode == 0, result.stderr
    assert "Айдар" in result.stdout
    assert "01.01.2025 12:34:56" in result.stdout
    assert "Здравствуйте, хочу записаться на стрижку" in result.stdout
    assert "utm=vk" in result.stdout


def test_unknown_client_is_a_failure_with_one_line(db_env: dict[str, str]) -> None:
    result = leadtrail("client", "nobody", env=db_env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "no client" in result.stderr


@pytest.mark.parametrize(
    ("config", "key"),
    [
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"database": {"url": "mysql://x"}}, "database.url"),
        ({"ingest": {"port": 70000}}, "ingest.port"),
        ({"telegram": {"token": "not-a-token"}}, "telegram.token"),
        ({"reports": {"daily_at": "25:00"}}, "reports.daily_at"),
        ({"ingest": {"colour": "red"}}, "ingest.colour"),
    ],
)
def test_wrong_setting_stops_with_one_line_naming_the_key(
    tmp_path: Path, config: dict[str, object], key: str
) -> None:
    path = write_config(tmp_path / "bad.toml", config)
    result = leadtrail("client", "x", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"leadtrail: config: {key}:")
    assert result.stderr.strip().count("\n") == 0


def test_environment_overrides_the_file_and_names_the_file_when_missing(tmp_path: Path) -> None:
    path = write_config(tmp_path / "c.toml", {"database": {"url": "sqlite+aiosqlite:///nowhere/x.db"}})
    result = leadtrail("client", "x", "--config", str(path), env={"LEADTRAIL_INGEST__PORT": "not-a-port"})
    assert result.returncode == 2
    assert "ingest.port" in result.stderr
    missing = leadtrail("client", "x", env={"LEADTRAIL_CONFIG": str(tmp_path / "absent.toml")})
    assert missing.returncode == 2
    assert "absent.toml not found" in missing.stderr


def test_bad_arguments_exit_2() -> None:
    assert leadtrail("client").returncode == 2
    assert leadtrail("no-such-command").returncode == 2


def test_database_commands_do_not_import_telegram_or_charts(db_env: dict[str, str]) -> None:
    probe = (
        "import sys; sys.argv = ['leadtrail', 'client', 'nobody'];"
        "from bot.cli.main import main; main();"
        "print(sorted(m for m in ('aiogram', 'matplotlib') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env={**clean_env(), **db_env},
        timeout=60,
    )
    assert done.stdout.strip() == "[]"
