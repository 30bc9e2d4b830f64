"""``leadtrail anonymize`` and ``leadtrail forget`` as an operator runs them, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from tests.processes import clean_env, leadtrail, write_config

SECRET = "cli-test-secret-0123456789abcdef"
OLD = {
    "timestamp": "2025-01-10T10:00:00+03:00",
    "event": "message_received",
    "user_id": "tg_old_1",
    "phone": "+7 917 000-11-22",
    "message": "Старое сообщение",
}
OLD_ANSWER = {**OLD, "event": "assistant_response", "message": None, "assistant_response": "Старый ответ"}
RECENT = {
    "timestamp": "2025-03-10T10:00:00+03:00",
    "event": "message_received",
    "user_id": "tg_new_2",
    "message": "Новое сообщение",
}


def sqlite_url(tmp_path: Path) -> dict[str, str]:
    return {"url": f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"}


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = write_config(
        tmp_path / "c.toml", {"database": sqlite_url(tmp_path), "retention": {"hash_secret": SECRET}}
    )
    events = tmp_path / "events.ndjson"
    events.write_bytes(b"\n".join(orjson.dumps(item) for item in (OLD, OLD_ANSWER, RECENT)) + b"\n")
    result = leadtrail("ingest", str(events), "--config", str(path))
    assert result.returncode == 0, result.stderr
    return str(path)


def client_json(config: str, query: str) -> dict[str, object] | None:
    result = leadtrail("client", query, "--json", "--config", config)
    return json.loads(result.stdout) if result.returncode == 0 else None


def on_terminal(*args: str, answer: str) -> subprocess.CompletedProcess[str]:
    """Run with stdin on a pseudo-terminal, as an operator typing ``answer``."""
    controller, terminal = os.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", *args],
            stdin=terminal,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=clean_env(),
        )
        os.close(terminal)
        os.write(controller, answer.encode())
        stdout, stderr = process.communicate(timeout=120)
    finally:
        os.close(controller)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def test_anonymize_dry_run_shows_what_the_run_then_does(config: str) -> None:
    dry = leadtrail("anonymize", "--dry-run", "--before", "2025-03-01", "--config", config)
    assert dry.returncode == 0, dry.stderr
    assert "Будет обезличено событий: 2, клиентов: 1" in dry.stdout
    assert client_json(config, "tg_old_1") is not None

    done = leadtrail("anonymize", "--before", "2025-03-01", "--config", config)
    assert done.returncode == 0, done.stderr
    assert "Обезличено событий: 2, клиентов: 1" in done.stdout
    assert client_json(config, "tg_old_1") is None
    assert "Новое сообщение" in json.dumps(client_json(config, "tg_new_2"), ensure_ascii=False)

    again = leadtrail("anonymize", "--before", "2025-03-01", "--config", config)
    assert "Обезличено событий: 0, клиентов: 0" in again.stdout


@pytest.mark.parametrize("before", ["2025-13-01", "01.03.2025", "2999-01-01"])
def test_anonymize_refuses_a_wrong_day(config: str, before: str) -> None:
    result = leadtrail("anonymize", "--before", before, "--config", config)
    assert result.returncode == 2
    assert result.stderr.startswith("leadtrail: ")


def test_forget_without_a_terminal_needs_yes(config: str) -> None:
    refused = leadtrail("forget", "tg_old_1", "--config", config)
    assert refused.returncode == 2
    assert "--yes" in refused.stderr
    assert client_json(config, "tg_old_1") is not None

    done = leadtrail("forget", "+7 917 000-11-22", "--yes", "--config", config)
    assert done.returncode == 0, done.stderr
    assert "Клиент удалён: событий — 2" in done.stdout
    assert client_json(config, "tg_old_1") is None
    assert client_json(config, "tg_new_2") is not None


def test_forget_asks_on_a_terminal_and_a_no_keeps_everything(config: str) -> None:
    kept = on_terminal("forget", "tg_old_1", "--config", config, answer="n\n")
    assert kept.returncode == 1
    assert "Удалить всё о клиенте tg_old_1" in kept.stdout
    assert "nothing was erased" in kept.stderr
    assert client_json(config, "tg_old_1") is not None

    erased = on_terminal("forget", "tg_old_1", "--config", config, answer="да\n")
    assert erased.returncode == 0, erased.stderr
    assert client_json(config, "tg_old_1") is None


def test_forget_of_an_unknown_id_fails_with_one_line(config: str) -> None:
    result = leadtrail("forget", "tg_nobody", "--yes", "--config", config)
    assert result.returncode == 1
    assert result.stderr.strip() == "leadtrail: no client with user_id, crm_id, lead_id or phone 'tg_nobody'"
