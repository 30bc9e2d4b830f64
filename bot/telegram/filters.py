"""Access checks attached to routers, so handlers never test ids themselves.

Owners (``telegram.owners``) get everything; staff (``telegram.staff``, the administrators who answer
and call clients) get the follow-up lists, client cards and search only. An owner listed as staff too is
an owner.
"""

from __future__ import annotations

from aiogram.filters import BaseFilter
from aiogram.types import CallbackQuery, Message

from bot.settings import Settings

# Event fields staff do not see in a client's details: what the client paid is the owners' business.
STAFF_HIDDEN_FIELDS = frozenset({"amount"})


def is_owner(user_id: int, settings: Settings) -> bool:
    return user_id in settings.telegram.owners


def is_staff(user_id: int, settings: Settings) -> bool:
    """Staff and not an owner: what staff may not see (revenue) is hidden from them."""
    return user_id in settings.telegram.staff and not is_owner(user_id, settings)


class IsOwner(BaseFilter):
    """Passes updates from the owners listed in ``telegram.owners``."""

    async def __call__(self, event: Message | CallbackQuery, settings: Settings) -> bool:
        user = event.from_user
        return user is not None and is_owner(user.id, settings)


class IsStaff(BaseFilter):
    """Passes updates from staff who are not owners."""

    async def __call__(self, event: Message | CallbackQuery, settings: Settings) -> bool:
        user = event.from_user
        return user is not None and is_staff(user.id, settings)


class IsTeam(BaseFilter):
    """Passes updates from owners and staff: the routers staff may use (follow-ups, clients, search)."""

    async def __call__(self, event: Message | CallbackQuery, settings: Settings) -> bool:
        user = event.from_user
        return user is not None and (is_owner(user.id, settings) or is_staff(user.id, settings))
