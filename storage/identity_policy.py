"""Which values an event reveals that join user ids into one client, and which never do.

A crm_id, lead_id or phone joins every user id that carries it (design.md, "Identities"). Real sources
fill those fields with stand-ins for "unknown": ``0``, ``null``, ``-``, ``test``, ``0000``, a phone of
zeros. Linking through them merged strangers, so such values never link: they stay on the event as
given, they only do not join clients. Values that are real but shared by too many user ids (an
integration sending its test values for everyone) are a matter of counting, in ``storage.clients``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from storage.event_row import EventRow
from storage.phones import DEFAULT_REGION, normalize_phone

Identity = tuple[str, str]  # (kind, value): ("user", "tg_1"), ("crm", "BX_1"), ("phone", "+79171234567")
USER = "user"
# The kinds of identity that join user ids, and the event field each comes from.
LINKING_FIELDS = (("crm", "crm_id"), ("lead", "lead_id"), ("phone", "phone"))
FIELD_OF_KIND = dict(LINKING_FIELDS)
DEFAULT_MAX_USERS_PER_VALUE = 5

# Compared trimmed and case-folded. A single character is not "one repeated character": "0" and "-"
# are listed, and a lone digit or letter may be a small CRM's real id.
PLACEHOLDERS = frozenset(
    {"0", "-", "—", "null", "none", "nil", "undefined", "nan", "n/a", "na", "unknown", "test"}
)


def is_filler(raw: str) -> bool:
    """Blank, a placeholder, or one character repeated (``0000``, ``xxx``)."""
    folded = raw.strip().casefold()
    return not folded or folded in PLACEHOLDERS or (len(folded) > 1 and len(set(folded)) == 1)


@dataclass(frozen=True, slots=True)
class IdentityPolicy:
    """The ``[identity]`` settings as plain values, for the writer and the commands that find clients."""

    default_region: str = DEFAULT_REGION
    ignore_values: frozenset[str] = frozenset()  # trimmed and case-folded; phones also as E.164
    max_users_per_value: int = DEFAULT_MAX_USERS_PER_VALUE

    @classmethod
    def of(
        cls,
        default_region: str = DEFAULT_REGION,
        ignore_values: Iterable[str] = (),
        max_users_per_value: int = DEFAULT_MAX_USERS_PER_VALUE,
    ) -> IdentityPolicy:
        """From the settings' values: an ignored phone matches however the event writes it."""
        ignored: set[str] = set()
        for value in ignore_values:
            ignored.add(value.strip().casefold())
            if phone := normalize_phone(value, default_region):
                ignored.add(phone)
        return cls(default_region, frozenset(ignored), max_users_per_value)

    def value_of(self, kind: str, raw: str | None) -> str | None:
        """The identity a crm_id, lead_id or phone gives (a phone as E.164), or None: it never links."""
        if raw is None or is_filler(raw) or raw.strip().casefold() in self.ignore_values:
            return None
        if kind != "phone":
            return raw
        phone = normalize_phone(raw, self.default_region)
        return None if phone is None or phone in self.ignore_values else phone

    def values_of(self, row: EventRow) -> tuple[Identity, ...]:
        """The values of an event that may join its user id to others (before counting how widely shared)."""
        return _values_of(self, row["crm_id"], row["lead_id"], row["phone"])


@lru_cache(maxsize=65_536)  # on the writer's hot path; a user's events carry the same ids again and again
def _values_of(
    policy: IdentityPolicy, crm_id: str | None, lead_id: str | None, phone: str | None
) -> tuple[Identity, ...]:
    given = (("crm", crm_id), ("lead", lead_id), ("phone", phone))
    return tuple((kind, value) for kind, raw in given if (value := policy.value_of(kind, raw)))
