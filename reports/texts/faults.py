"""LeadTrail's own trouble and its sources' errors, told to the owners (HTML; no personal data inside)."""

from __future__ import annotations

STORAGE_FAILING = (
    "⚠️ <b>LeadTrail не может сохранять события</b>\n"
    "База данных не принимает записи: закончилось место на диске, файл базы доступен только для чтения "
    "или занят другой программой. Источники получают ответ «повторите позже» (503) и отправят события "
    "снова — уже принятые события сохранены.\n"
    "Что сделать: освободите место на диске или проверьте права на файл базы. "
    "Когда запись заработает, я напишу."
)
STORAGE_RECOVERED = (
    "✅ <b>LeadTrail снова сохраняет события</b>\n"
    "База данных принимает записи; источники дошлют то, что не удалось сохранить во время сбоя."
)


def source_rejected_notice(accepted: int, rejected: int, held_back: int) -> str:
    """Short notice to owners when a Telegram source sent something that could not be stored."""
    text = (
        "⚠️ <b>Источник событий в Telegram прислал данные с ошибками.</b>\n"
        f"Принято событий: {accepted}, отклонено: {rejected}.\n"
    )
    if held_back:
        text += f"Ещё сообщений с ошибками с прошлого уведомления: {held_back}.\n"
    return text + "Отклонённое сохранено: <code>leadtrail quarantine</code> покажет, что не так."
