"""The one thread that draws every chart: the report's album, a client's journey, the demo's files.

Drawing is CPU-bound and holds the GIL, so a second drawing thread would gain nothing, and one thread
means matplotlib is imported (fonts loaded) exactly once, never by two threads racing each other.
The event loop and the database work go on meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

_DRAWING = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leadtrail-charts")


async def drawn(draw: Callable[..., T], *args: object) -> T:
    """``draw(*args)`` in the drawing thread."""
    return await asyncio.get_running_loop().run_in_executor(_DRAWING, draw, *args)
