"""Retention for handoff's tables: tickets past the period, and the records of failed sign-ins.

Why by last activity and whatever the status: a ticket nobody touched for the whole retention
period (left open, or claimed and forgotten) holds a person's transcript just the same, and the
privacy notice promises a period, not "until someone resolves it". Failed sign-ins are kept
briefly: their throttle rows and audit rows hold whatever was typed as a username (a colleague's
name, or a password typed into the wrong box).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from handoff._audit import audit
from handoff._enums import AuditAction, Status
from handoff._tickets import _delete_tickets
from handoff.tables import AuditEntry, ConsoleSession, LoginThrottle, Ticket, TicketMessage, TicketNote

__all__ = ["HandoffPurge", "purge_handoff", "users_waiting"]


@dataclass(frozen=True, slots=True)
class HandoffPurge:
    """What a purge removed (or, in a dry run, would remove)."""

    tickets: int = 0
    transcript_lines: int = 0
    notes: int = 0
    login_throttles: int = 0
    failed_login_audit: int = 0
    expired_sessions: int = 0


def _quiet_since(cutoff: datetime) -> ColumnElement[bool]:
    """No activity of any kind on the ticket at or after ``cutoff``."""
    optional = (Ticket.last_user_message_at, Ticket.claim_activity_at, Ticket.first_reply_at, Ticket.resolved_at,
                Ticket.transferred_at)
    return and_(Ticket.created_at < cutoff, *(or_(column.is_(None), column < cutoff) for column in optional))


def users_waiting(tickets_before: datetime) -> Select[str]:
    """User keys with an active ticket the purge keeps: a counsellor's reply still needs them."""
    return select(Ticket.user_key).where(Ticket.status.in_([s.value for s in Status.active()]),
                                         ~_quiet_since(tickets_before))


async def _count(session: AsyncSession, model: Any, *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def purge_handoff(
    *,
    session: AsyncSession,
    tickets_before: datetime,
    login_records_before: datetime,
    now: datetime,
    dry_run: bool = False,
) -> HandoffPurge:
    """Erase tickets quiet since ``tickets_before`` (with transcripts, notes and transfers), and
    sign-in throttles and failed-sign-in audit rows older than ``login_records_before``.

    The caller owns the transaction. A dry run counts and changes nothing.
    """
    ids = list((await session.scalars(select(Ticket.id).where(_quiet_since(tickets_before)))).all())
    lines = await _count(session, TicketMessage, TicketMessage.ticket_id.in_(ids)) if ids else 0
    notes = await _count(session, TicketNote, TicketNote.ticket_id.in_(ids)) if ids else 0
    throttled = (LoginThrottle.window_started_at < login_records_before,
                 or_(LoginThrottle.blocked_until.is_(None), LoginThrottle.blocked_until < now))
    failed = (AuditEntry.action == AuditAction.LOGIN_FAILED.value, AuditEntry.at < login_records_before)
    expired = (ConsoleSession.expires_at < now,)
    report = HandoffPurge(
        tickets=len(ids), transcript_lines=lines, notes=notes,
        login_throttles=await _count(session, LoginThrottle, *throttled),
        failed_login_audit=await _count(session, AuditEntry, *failed),
        expired_sessions=await _count(session, ConsoleSession, *expired),
    )
    if dry_run:
        return report
    await _delete_tickets(session, ids)
    await session.execute(delete(LoginThrottle).where(*throttled))
    await session.execute(delete(AuditEntry).where(*failed))
    await session.execute(delete(ConsoleSession).where(*expired))
    if ids:
        await audit(session, None, AuditAction.USER_DATA_DELETED, detail=f"{len(ids)} ticket(s) past retention")
    await session.flush()
    session.expunge_all()
    return report
