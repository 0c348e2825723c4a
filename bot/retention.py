"""One retention purge for everything about people: what the privacy notice promises.

Why one function: the daily job used to delete only the bot's messages and sent replies, so
tickets, transcripts, user rows (with their last question), unsent replies, sign-in throttles and
failed-sign-in audit rows outlived the period. ``hamroh db purge`` and the daily loop of ``hamroh
serve`` both call :func:`purge`; ``dry_run`` counts what would go and changes nothing.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from handoff import purge_handoff, users_waiting
from storage import checkpoint_after_erasure, purge_expired_counters

from .settings import RetentionConfig
from .tables import BotUser, ConversationMessage, OutboxItem

__all__ = ["PurgeReport", "purge"]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """Rows removed (or that a dry run would remove), per kind of data."""

    conversation_messages: int
    outbox: int
    users: int
    tickets: int
    transcript_lines: int
    notes: int
    login_throttles: int
    failed_login_audit: int
    expired_sessions: int
    rate_limit_counters: int
    dry_run: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def total(self) -> int:
        return sum(v for k, v in asdict(self).items() if k != "dry_run")


async def _count(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def purge(sessions: async_sessionmaker[AsyncSession], periods: RetentionConfig, *,
                now: dt.datetime | None = None, dry_run: bool = False, engine: AsyncEngine | None = None,
                ) -> PurgeReport:
    """Apply every retention period in one transaction; on SQLite, checkpoint the WAL afterwards.

    A user row goes when the person was not seen for ``users_days`` and has no active ticket that
    stays (a counsellor's reply still needs their address); their messages and replies go with it.
    """
    now = now or dt.datetime.now(dt.UTC)

    def before(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    waiting = users_waiting(before(periods.tickets_days))
    gone_users = (BotUser.last_seen_at < before(periods.users_days), BotUser.user_key.not_in(waiting))
    gone_user_keys = select(BotUser.user_key).where(*gone_users)
    old_messages = (ConversationMessage.created_at < before(periods.conversations_days),)
    old_outbox = (OutboxItem.created_at < before(periods.outbox_days),)
    async with sessions() as session, session.begin():
        users = await _count(session, BotUser, *gone_users)
        # rows of departing users count once, under their own kind, whatever their age
        messages = await _count(session, ConversationMessage, *old_messages) + await _count(
            session, ConversationMessage, ConversationMessage.user_key.in_(gone_user_keys),
            ConversationMessage.created_at >= before(periods.conversations_days))
        outbox = await _count(session, OutboxItem, *old_outbox) + await _count(
            session, OutboxItem, OutboxItem.user_key.in_(gone_user_keys),
            OutboxItem.created_at >= before(periods.outbox_days))
        handoff = await purge_handoff(session=session, tickets_before=before(periods.tickets_days),
                                      login_records_before=before(periods.login_records_days), now=now,
                                      dry_run=dry_run)
        counters = await purge_expired_counters(session=session, now=now, dry_run=dry_run)
        if not dry_run:
            await session.execute(delete(ConversationMessage).where(*old_messages))
            await session.execute(delete(OutboxItem).where(*old_outbox))
            await session.execute(delete(ConversationMessage).where(ConversationMessage.user_key.in_(gone_user_keys)))
            await session.execute(delete(OutboxItem).where(OutboxItem.user_key.in_(gone_user_keys)))
            await session.execute(delete(BotUser).where(*gone_users))
    report = PurgeReport(conversation_messages=messages, outbox=outbox, users=users, tickets=handoff.tickets,
                         transcript_lines=handoff.transcript_lines, notes=handoff.notes,
                         login_throttles=handoff.login_throttles, failed_login_audit=handoff.failed_login_audit,
                         expired_sessions=handoff.expired_sessions, rate_limit_counters=counters, dry_run=dry_run)
    if engine is not None and not dry_run and report.total:
        await checkpoint_after_erasure(engine)
    return report
