"""What the command line prints for people (plain text): import results, queued jobs, the quarantine.

Errors are English one-liners on stderr (``leadtrail: …``), for the engineer's scripts and logs."""

from __future__ import annotations

INGEST_LINE_ERROR = "строка {line}: {field}: {message}"
INGEST_MORE_ERRORS = "… и ещё {count} ошибок (все — в leadtrail quarantine)"
INGEST_SUMMARY = "принято: {accepted}, дубликатов: {duplicates}, отклонено: {rejected}"
QUARANTINE_HEADER = "В карантине: {total} (показаны последние {shown})"
JOB_REPORT_QUEUED = "Отчёт за {day:%d.%m.%Y} поставлен в очередь: получателей {recipients}."
JOB_ALERTS_QUEUED = "Оповещений поставлено в очередь: {count}."
JOB_ANONYMIZED = "Обезличено событий: {events}, клиентов: {clients}."
JOB_IDENTITIES_QUEUED = "Владельцам сообщено о новых общих значениях: {count}."
