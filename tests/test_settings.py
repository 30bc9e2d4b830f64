"""Settings: the example file documents every key, the environment wins over the file."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

from bot.settings import ConfigError, Settings, load_settings
from tests.processes import write_config

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.toml"


def test_example_config_loads_and_documents_every_key() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    settings = Settings(**tomllib.loads(text))
    parts = re.split(r"^\[(\w+)\]$", text, flags=re.M)
    sections = dict(zip(parts[1::2], parts[2::2], strict=True))
    undocumented = [
        f"{section}.{key}"
        for section, model in settings
        if isinstance(model, BaseModel)
        for key in type(model).model_fields
        if not re.search(rf"^(# )?{key} =", sections.get(section, ""), re.M)
    ]
    assert undocumented == []


def test_environment_overrides_file_with_nested_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(
        tmp_path / "c.toml", {"ingest": {"port": 9000, "host": "0.0.0.0"}, "telegram": {"owners": [1]}}
    )
    monkeypatch.setenv("LEADTRAIL_INGEST__PORT", "9100")
    monkeypatch.setenv("LEADTRAIL_TELEGRAM__OWNERS", "[5, 6]")
    settings = load_settings(path)
    assert (settings.ingest.port, settings.ingest.host) == (9100, "0.0.0.0")
    assert settings.telegram.owners == [5, 6]
    assert settings.database.url == "sqlite+aiosqlite:///leadtrail.db"


def test_invalid_toml_is_one_clear_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[ingest\nport = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"broken.toml is not valid TOML"):
        load_settings(path)


def test_token_is_secret_in_repr(tmp_path: Path) -> None:
    token = "123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    settings = load_settings(write_config(tmp_path / "c.toml", {"telegram": {"token": token}}))
    assert token not in repr(settings)
    assert settings.telegram.token is not None and settings.telegram.token.get_secret_value() == token
