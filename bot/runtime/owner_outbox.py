"""Telling every owner something through the outbox: each owner in ``telegram.owners`` and each address
in ``email.owners`` gets a message row that ``leadtrail run`` delivers (and retries) when it can; for what
the staff must act on too (a waiting client), each of ``telegram.staff`` as well."""

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
    keyboard: str | None = None,
    client_id: int | None = None,
    staff: bool = False,
) -> int:
    """Queue ``text`` (HTML, with its pictures and buttons) for every owner, and with ``staff`` for every
    staff member in Telegram, in the caller's transaction; returns how many messages were queued.
    ``subject`` is the e-mail's; ``client_id`` the client the message is about, if one."""
    chats = settings.telegram.owners + [user for user in settings.telegram.staff if staff]
    recipients = [("telegram", str(chat)) for chat in dict.fromkeys(chats)]
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
            keyboard=keyboard,
            client_id=client_id,
        )
    return len(recipients)
