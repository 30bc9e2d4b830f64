"""Telling every owner something through the outbox: each owner in ``telegram.owners`` and each address
in ``email.owners`` gets a message row that ``leadtrail run`` delivers (and retries) when it can."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from storage.outbox import Attachment, enqueue


async def enqueue_for_owners(
    session: AsyncSession,
    settings: Settings,
    *,
    kind: str,
    text: str,
    subject: str,
    attachments: Sequence[Attachment] = (),
) -> int:
    """Queue ``text`` (HTML, with its pictures) for every owner in the caller's transaction; returns how
    many messages were queued. ``subject`` is the e-mail's."""
    recipients = [("telegram", str(owner)) for owner in settings.telegram.owners]
    recipients += [("email", address) for address in settings.email.owners]
    for channel, recipient in recipients:
        await enqueue(
            session,
            kind=kind,
            channel=channel,
            recipient=recipient,
            text=text,
            subject=subject,
            attachments=attachments,
        )
    return len(recipients)
