"""Background loops of ``leadtrail run`` (delivery, alarm, CRM worker, leadership) stop the same way."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    """Cancel the loop and wait until it has really stopped, so nothing runs on after its owner closed."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
