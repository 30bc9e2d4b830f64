"""Who is sending: bearer tokens (plain ``ingest.tokens`` and scoped ``[[ingest.sources]]``) and rate limits.

Every known token is compared on every request, without an early exit, so the time taken tells nothing
about how close a guess was. Limits live in memory: a restart forgives, which is fine for a burst guard.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class SourceToken:
    """A token and what it may do; ``channels`` None means any channel, ``rate_per_second`` None no limit."""

    name: str
    token: bytes
    channels: frozenset[str] | None = None
    rate_per_second: float | None = None


@dataclass(slots=True)
class TokenBucket:
    """Requests per second with a burst of one second's worth (at least one request)."""

    rate: float
    clock: Callable[[], float] = time.monotonic
    level: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.level = self.capacity
        self.updated = self.clock()

    @property
    def capacity(self) -> float:
        return max(self.rate, 1.0)

    def take(self) -> int:
        """0 when the request may pass, else the whole seconds to wait (for ``Retry-After``)."""
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now
        if self.level >= 1.0:
            self.level -= 1.0
            return 0
        return max(1, math.ceil((1.0 - self.level) / self.rate))


class IngestAuth:
    """Finds the source behind an ``Authorization`` header and keeps its rate limit."""

    def __init__(self, sources: tuple[SourceToken, ...], clock: Callable[[], float] = time.monotonic) -> None:
        self._sources = sources
        self._buckets = {
            source.token: TokenBucket(source.rate_per_second, clock)
            for source in sources
            if source.rate_per_second is not None
        }

    @classmethod
    def from_tokens(cls, plain: tuple[bytes, ...], scoped: tuple[SourceToken, ...] = ()) -> IngestAuth:
        """Plain tokens may send any channel at any rate, as before sources existed."""
        return cls(tuple(SourceToken("token", token) for token in plain) + scoped)

    def identify(self, header: str | None) -> SourceToken | None:
        if not header or not header.startswith("Bearer "):
            return None
        # aiohttp hands non-UTF-8 header bytes over as surrogates; they must give 401, not a 500.
        offered = header[len("Bearer ") :].strip().encode("utf-8", "surrogateescape")
        found: SourceToken | None = None
        for source in self._sources:  # no early exit: see the module docstring
            if hmac.compare_digest(offered, source.token) and found is None:
                found = source
        return found

    def retry_after(self, source: SourceToken) -> int:
        """0 when this request is within the source's rate, else seconds until it would be."""
        bucket = self._buckets.get(source.token)
        return bucket.take() if bucket is not None else 0
