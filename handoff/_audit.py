"""The audit log: who viewed, replied, noted, transferred or exported what, and when.

Entries are only ever added (the database refuses updates and deletes). Details never include
message text or user identifiers, so the log itself holds no personal data and survives /delete.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff._enums import AuditAction
from handoff._policy import Actor
from handoff.tables import AuditEntry
from storage import utcnow

__all__ = ["SYSTEM", "audit", "audit_denied", "list_audit"]

SYSTEM = "system"


async def audit(
    session: AsyncSession,
    actor: Actor | None,
    action: AuditAction,
    *,
    ticket_id: int | None = None,
    mrc_id: str | None = None,
    detail: str = "",
    at: datetime | None = None,
    username: str | None = None,
) -> AuditEntry:
    """Add one entry in the caller's transaction (so it commits or rolls back with the action)."""
    entry = AuditEntry(
        at=at or utcnow(),
        actor_id=actor.id if actor else None,
        actor_username=(actor.username if actor else username or SYSTEM)[:64],
        action=action.value,
        mrc_id=mrc_id,
        ticket_id=ticket_id,
        detail=detail[:300],
    )
    session.add(entry)
    return entry


async def list_audit(
    session: AsyncSession,
    *,
    mrc_ids: Sequence[str] | None,
    ticket_id: int | None = None,
    limit: int = 200,
    before_id: int | None = None,
) -> list[AuditEntry]:
    """Newest first. ``mrc_ids=None`` means every MRC (and entries bound to none)."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if mrc_ids is not None:
        query = query.where(AuditEntry.mrc_id.in_(list(mrc_ids)))
    if ticket_id is not None:
        query = query.where(AuditEntry.ticket_id == ticket_id)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    return list((await session.scalars(query)).all())


def audit_denied(session: AsyncSession, denied: tuple[int, str, int, str], *, detail: str) -> AuditEntry:
    """Record a try at another MRC's ticket (``TicketNotFound.denied``: actor id, username, ticket
    id, the ticket's MRC), in the caller's transaction: a fresh one, since the request's rolled back."""
    actor_id, username, ticket_id, mrc_id = denied
    entry = AuditEntry(at=utcnow(), actor_id=actor_id, actor_username=username[:64],
                       action=AuditAction.VIEW_DENIED.value, ticket_id=ticket_id, mrc_id=mrc_id, detail=detail[:300])
    session.add(entry)
    return entry
