"""E-mail as a second delivery: the same text (HTML) and charts as in Telegram, over SMTP."""

from __future__ import annotations

import html
import re
from email.message import EmailMessage

from bot.settings import EmailSettings
from storage.outbox import Delivery


def build_email(settings: EmailSettings, delivery: Delivery) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.sender
    message["To"] = delivery.recipient
    message["Subject"] = delivery.subject or "LeadTrail"
    plain = _strip_tags(delivery.text)
    message.set_content(plain)
    body = delivery.text.replace("\n", "<br>\n")
    message.add_alternative(
        f"<html><body style='font-family: sans-serif'>{body}</body></html>", subtype="html"
    )
    for item in delivery.attachments:
        message.add_attachment(item.content, maintype="image", subtype="png", filename=item.filename)
    return message


class EmailSender:
    """Sends outbox deliveries of the e-mail channel; SMTP errors propagate so the outbox retries."""

    def __init__(self, settings: EmailSettings) -> None:
        self._settings = settings

    async def __call__(self, delivery: Delivery) -> None:
        import aiosmtplib

        settings = self._settings
        await aiosmtplib.send(
            build_email(settings, delivery),
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.username,
            password=settings.password.get_secret_value() if settings.password else None,
            start_tls=settings.starttls and not settings.use_tls,
            use_tls=settings.use_tls,
            timeout=settings.timeout_seconds,
        )


def _strip_tags(text: str) -> str:
    # The text is our own Telegram HTML (b, i, code), so dropping tags and unescaping gives plain text.
    return html.unescape(re.sub(r"<[^>]+>", "", text))
