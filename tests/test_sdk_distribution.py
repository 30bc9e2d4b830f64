"""The SDK as a salon installs it: a distribution of its own, next to a bot that has its own ``bot/``
package; and the server installing only its own packages."""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SALON_BOT = ROOT / "examples" / "salon_bot"
SERVER_ONLY = ("sqlalchemy", "matplotlib", "pydantic_settings", "alembic", "pyarrow", "apscheduler")
PROBE = """
import importlib.util, json, sys
from leadtrail_sdk import EventClient
import bot  # the salon's own bot package, not LeadTrail's
installed = [name for name in {names} if importlib.util.find_spec(name) is not None]
print(json.dumps({{"bot": bot.__file__, "installed": installed}}))
"""


def _pip(python: Path, *args: str) -> None:
    subprocess.run([str(python), "-m", "pip", "install", "-q", *args], check=True, timeout=600)


def _probe(python: Path, names: tuple[str, ...]) -> dict[str, object]:
    result = subprocess.run(
        [str(python), "-c", PROBE.format(names=names)],
        cwd=SALON_BOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


@pytest.mark.slow
def test_a_salon_bot_with_its_own_bot_package_installs_the_sdk_alone(tmp_path: Path) -> None:
    venv.create(tmp_path / "venv", with_pip=True)
    python = tmp_path / "venv" / "bin" / "python"
    _pip(python, str(ROOT / "sdk"))
    without_aiogram = _probe(python, (*SERVER_ONLY, "aiogram", "storage", "reports"))
    assert without_aiogram["installed"] == []
    assert Path(str(without_aiogram["bot"])).is_relative_to(SALON_BOT)

    _pip(python, f"{ROOT / 'sdk'}[aiogram]")
    tracker = subprocess.run(
        [
            str(python),
            "-c",
            "from leadtrail_sdk import LeadTrailTracker; import bot.__main__, bot.handlers",
        ],
        cwd=SALON_BOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tracker.returncode == 0, tracker.stderr
    assert _probe(python, (*SERVER_ONLY, "storage", "reports"))["installed"] == []


@pytest.mark.slow
def test_the_server_installs_only_its_own_packages(tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        timeout=600,
    )
    top_level = {path.name for path in target.iterdir()}
    metadata = {name for name in top_level if name.endswith(".dist-info") or name == "bin"}
    assert top_level - metadata == {"bot", "storage", "reports", "leadtrail_sdk"}
    assert (target / "storage" / "migrations" / "script.py.mako").is_file()
    assert (target / "storage" / "migrations" / "versions" / "0001_initial.py").is_file()
