"""The delivery outbox: what must reach the owners, kept until it did (or cannot, for a stated reason)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import OutboxAttachment, OutboxMessage

ERROR_LIMIT = 256


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content: bytes


@dataclass(frozen=True, slots=True)
class Delivery:
    """One message to send now, with its pictures."""

    id: int
    kind: str
    channel: str
    recipient: str
    subject: str | None
    text: str
    attempts: int
    attachments: tuple[Attachment, ...]
    keyboard: str | None = None
    client_id: int | None = None


async def enqueue(
    session: AsyncSession,
    *,
    kind: str,
    channel: str,
    recipient: str,
    text: str,
    subject: str | None = None,
    attachments: Sequence[Attachment] = (),
    keyboard: str | None = None,
    client_id: int | None = None,
) -> OutboxMessage:
    """Add a message to the caller's transaction: it is delivered only if that transaction commits.

    ``keyboard`` names the buttons Telegram shows under it; ``client_id`` is the client it is about.
    """
    message = OutboxMessage(
        created_at=datetime.now(UTC),
        kind=kind,
        channel=channel,
        recipient=recipient,
        subject=subject,
        text=text,
        attempts=0,
        next_attempt_at=datetime.now(UTC),
        keyboard=keyboard,
        client_id=client_id,
    )
    session.add(message)
    await session.flush()
    for position, attachment in enumerate(attachments):
        session.add(
            OutboxAttachment(
                message_id=message.id,
                position=position,
                filename=attachment.filename,
                content=attachment.content,
            )
        )
    return message


async def due_deliveries(session: AsyncSession, now: datetime, limit: int = 20) -> list[Delivery]:
    pending = await session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
        .where(OutboxMessage.next_attempt_at <= now)
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    messages = list(pending.scalars())
    if not messages:
        return []
    files = await session.execute(
        select(OutboxAttachment)
        .where(OutboxAttachment.message_id.in_([message.id for message in messages]))
        .order_by(OutboxAttachment.message_id, OutboxAttachment.position)
    )
    by_message: dict[int, list[Attachment]] = {}
    for item in files.scalars():
        by_message.setdefault(item.message_id, []).append(Attachment(item.filename, item.content))
    return [
        Delivery(
            m.id,
            m.kind,
            m.channel,
            m.recipient,
            m.subject,
            m.text,
            m.attempts,
            tuple(by_message.get(m.id, ())),
            m.keyboard,
            m.client_id,
        )
        for m in messages
    ]


# A message about one client keeps its text (the client's name and words) only until it is settled:
# afterwards those live only in the events, where retention and /forget reach them.
_SETTLED_TEXT = case((OutboxMessage.client_id.is_(None), OutboxMessage.text), else_="")


async def mark_sent(session: AsyncSession, message_id: int) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(sent_at=datetime.now(UTC), text=_SETTLED_TEXT)
    )


async def mark_retry(session: AsyncSession, message_id: int, delay: timedelta, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            attempts=OutboxMessage.attempts + 1,
            next_attempt_at=datetime.now(UTC) + delay,
            last_error=error[:ERROR_LIMIT],
        )
    )


async def mark_failed(session: AsyncSession, message_id: int, error: str) -> None:
    await session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            attempts=OutboxMessage.attempts + 1,
            failed_at=datetime.now(UTC),
            last_error=error[:ERROR_LIMIT],
            text=_SETTLED_TEXT,
        )
    )


async def pending_count(session: AsyncSession) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.sent_at.is_(None), OutboxMessage.failed_at.is_(None))
    )
    return int(result.scalar_one())
