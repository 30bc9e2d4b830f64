"""``leadtrail forget ID`` and ``leadtrail anonymize``: the operator's side of 152-FZ.

A running ``leadtrail run`` keeps an identity cache these commands cannot reach: after ``forget`` it may
answer one retried request with 503 (sources retry); the nightly job in ``run`` drops its cache itself.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from bot.cli.common import opened_database
from bot.cli.errors import EXIT_USAGE, CommandFailed
from bot.privacy import CLI_OWNER_ID, forget
from bot.retention_key import RetentionKeyError, retention_secret
from bot.settings import Settings
from reports.periods import period_between
from reports.texts import privacy as texts
from storage.database import Database
from storage.retention import anonymize_before
from storage.timeline import find_client_ids, load_card

_YES = frozenset({"y", "yes", "д", "да"})


def _usage_error(message: str) -> int:
    print(f"leadtrail: {message}", file=sys.stderr)
    return EXIT_USAGE


async def _describe_client(db: Database, query: str, region: str) -> str:
    """Who would be erased, for the confirmation; CommandFailed when nobody has this id."""
    async with db.sessions() as session:
        client_ids = await find_client_ids(session, query, region)
        cards = [card for client_id in client_ids if (card := await load_card(session, client_id))]
    if not cards:
        raise CommandFailed(f"no client with user_id, crm_id, lead_id or phone {query!r}")
    return texts.cli_who(cards)


def _confirmed(query: str, who: str) -> bool:
    try:
        answer = input(texts.CLI_CONFIRM.format(query=query, who=who))
    except EOFError:
        return False
    return answer.strip().casefold() in _YES


async def run_forget(settings: Settings, args: argparse.Namespace) -> int:
    query = args.id.strip()
    if not query:
        return _usage_error("forget needs the client's id")
    if not args.yes and not sys.stdin.isatty():
        return _usage_error("forget asks for confirmation on a terminal; add --yes to erase without asking")
    region = settings.identity.default_region
    async with opened_database(settings) as db:
        try:
            if not args.yes and not _confirmed(query, await _describe_client(db, query, region)):
                raise CommandFailed("cancelled: nothing was erased")
            report = await forget(db, query, owner_id=CLI_OWNER_ID, region=region)
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot erase the client: {type(exc).__name__}") from None
    if not report.clients:
        raise CommandFailed(f"no client with user_id, crm_id, lead_id or phone {query!r}")
    print(
        texts.CLI_DONE.format(
            events=report.events, identities=report.identities, quarantined=report.quarantined
        )
    )
    return 0


def anonymization_cutoff(before: str | None, settings: Settings, now: datetime) -> datetime:
    """The local midnight that opens ``before``, else ``retention.days`` ago; ValueError when wrong."""
    if before is None:
        return now - timedelta(days=settings.retention.days)
    cutoff = period_between(before, before).utc_bounds(settings.tz)[0]
    if cutoff > now:
        raise ValueError(f"--before {before} is in the future: that would anonymise today's events")
    return cutoff


async def run_anonymize(settings: Settings, args: argparse.Namespace) -> int:
    try:
        cutoff = anonymization_cutoff(args.before, settings, datetime.now(UTC))
    except ValueError as exc:
        return _usage_error(str(exc))
    async with opened_database(settings) as db:
        try:
            secret = retention_secret(settings, create=not args.dry_run)
        except RetentionKeyError as exc:
            raise CommandFailed(str(exc)) from None
        try:
            report = await anonymize_before(
                db, cutoff, secret, dry_run=args.dry_run, batch_size=settings.retention.batch_size
            )
        except SQLAlchemyError as exc:
            raise CommandFailed(f"cannot anonymise: {type(exc).__name__}") from None
    print(texts.anonymization_summary(report, settings.tz, settings.timezone))
    return 0
