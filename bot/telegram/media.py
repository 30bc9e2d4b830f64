"""Charts as a Telegram album: at most 10 pictures per album, uploaded from memory."""

from __future__ import annotations

from collections.abc import Sequence

from aiogram.types import BufferedInputFile, InputMediaPhoto
from aiogram.types.media_union import MediaUnion

from storage.outbox import Attachment

ALBUM_LIMIT = 10


def photo_albums(attachments: Sequence[Attachment], caption: str | None = None) -> list[list[MediaUnion]]:
    """Albums of the pictures in order; ``caption`` (≤ 1024 characters) goes under the first one."""
    photos: list[MediaUnion] = [
        InputMediaPhoto(media=BufferedInputFile(item.content, filename=item.filename)) for item in attachments
    ]
    if photos and caption:
        photos[0] = InputMediaPhoto(media=photos[0].media, caption=caption)
    return [photos[start : start + ALBUM_LIMIT] for start in range(0, len(photos), ALBUM_LIMIT)]
