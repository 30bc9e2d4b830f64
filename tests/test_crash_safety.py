"""Crash safety (issue 7.1): SIGKILL at random moments under load loses nothing that was acknowledged."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench.crash import run_crash

pytestmark = pytest.mark.slow


async def test_five_sigkills_under_load_lose_no_acknowledged_event(tmp_path: Path) -> None:
    outcome = await run_crash(tmp_path, kills=5, senders=6, load_before_kill=60, max_extra_seconds=0.4)
    print(outcome.line())
    assert outcome.kills == 5
    assert len(outcome.acknowledged) >= 6 * 60
    assert outcome.lost == 0, sorted(set(outcome.acknowledged) - set(outcome.copies))[:10]
    assert outcome.duplicated == 0
    # Nothing but what the senders sent is stored, and nothing but 202/503/connection errors was answered.
    assert all(re.fullmatch(r"c[0-5]-\d+-[0-4]", event_id) for event_id in outcome.copies)
    assert outcome.unexpected == []
