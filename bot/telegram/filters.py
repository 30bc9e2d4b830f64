"""Access checks attached to routers, so handlers never test ids themselves."""

from __future__ import annotations

from aiogram.filters import BaseFilter
from aiogram.types import CallbackQuery, Message

from bot.settings import Settings


class IsOwner(BaseFilter):
    """Passes updates from the owners listed in ``telegram.owners``."""

    async def __call__(self, event: Message | CallbackQuery, settings: Settings) -> bool:
        user = event.from_user
        return user is not None and user.id in settings.telegram.owners
