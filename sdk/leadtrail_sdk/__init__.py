"""LeadTrail's SDK for event sources: an async client and the aiogram middleware.

Importing it loads only the standard library and aiohttp; ``LeadTrailTracker`` loads aiogram on first use,
so plain code that only sends events never pays for it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from leadtrail_sdk.client import ClientStats, EventClient

if TYPE_CHECKING:
    from leadtrail_sdk.middleware import LeadTrailTracker

__all__ = ["ClientStats", "EventClient", "LeadTrailTracker"]


def __getattr__(name: str) -> Any:
    if name == "LeadTrailTracker":
        from leadtrail_sdk.middleware import LeadTrailTracker

        return LeadTrailTracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
