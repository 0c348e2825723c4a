"""What the console's live parts ask for: the alert counts and a cheap version of the queue.

Service functions (the caller owns the session), so the routes hold no SQL and another front end
(a phone app, a test) asks the same questions the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from handoff._enums import Priority, Status
from handoff._policy import Actor
from handoff.tables import Ticket, TicketMessage

__all__ = ["AlertCounts", "LiveVersion", "alert_counts", "live_version"]


@dataclass(frozen=True, slots=True)
class AlertCounts:
    """The console header's numbers: open tickets, unclaimed crises (and the newest), mine."""

    open: int
    crisis: int
    newest_crisis: int
    mine: int


@dataclass(frozen=True, slots=True)
class LiveVersion:
    """Changes whenever something an open console shows changes; compared, never shown."""

    active: int
    newest_ticket: int
    last_user_message: int
    crisis: int
    newest_crisis: int
    ticket_message: int


def _active_scope(actor: Actor) -> list[ColumnElement[bool]]:
    scope: list[ColumnElement[bool]] = [Ticket.status.in_(Status.active())]
    if actor.mrc_id is not None:
        scope.append(Ticket.mrc_id == actor.mrc_id)
    return scope


def _unclaimed_crises(scope: list[ColumnElement[bool]]) -> tuple[ColumnElement[bool], ...]:
    # Only crisis tickets nobody has picked up yet call for everyone's attention.
    return (*scope, Ticket.status == Status.OPEN, Ticket.priority == int(Priority.CRISIS))


async def alert_counts(*, session: AsyncSession, actor: Actor) -> AlertCounts:
    """The counts in the actor's scope (their MRC, or all for an account without one)."""
    scope = _active_scope(actor)
    open_count = await session.scalar(select(func.count()).where(*scope, Ticket.status == Status.OPEN))
    crisis = (await session.execute(select(func.count(), func.max(Ticket.id)).where(*_unclaimed_crises(scope)))).one()
    mine = await session.scalar(
        select(func.count()).where(Ticket.status == Status.CLAIMED, Ticket.claimed_by_id == actor.id)
    )
    return AlertCounts(int(open_count or 0), int(crisis[0] or 0), int(crisis[1] or 0), int(mine or 0))


async def live_version(*, session: AsyncSession, actor: Actor, ticket_id: int | None = None) -> LiveVersion:
    """A small row that changes with the queue, a new crisis, or (given ``ticket_id``) its transcript."""
    scope = _active_scope(actor)
    columns = (func.count(), func.max(Ticket.id), func.max(Ticket.last_user_message_at))
    queue = (await session.execute(select(*columns).where(*scope))).one()
    crisis = (await session.execute(select(func.count(), func.max(Ticket.id)).where(*_unclaimed_crises(scope)))).one()
    last = 0
    if ticket_id is not None:
        last = int(await session.scalar(select(func.max(TicketMessage.id))
                                        .where(TicketMessage.ticket_id == ticket_id)) or 0)
    stamp = int(queue[2].timestamp()) if queue[2] is not None else 0
    return LiveVersion(int(queue[0] or 0), int(queue[1] or 0), stamp, int(crisis[0] or 0), int(crisis[1] or 0), last)
