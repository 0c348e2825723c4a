"""The outbox: replies stored with the message that caused them, handed to the channels to send.

Why apart from the conversation: delivery has its own life (a Telegram send can take seconds, a
replica can die mid-send, a web visitor can close the tab), and its rules — at-least-once, leases
instead of locks, only connected visitors' replies — are the same whoever wrote the reply (the
engine, a counsellor in the console). Channels read and acknowledge here; they decide nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Sequence

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage import autocommit

from ..tables import OutboxItem
from ._port import Outgoing
from ._repository import unsent

__all__ = ["Outbox"]


class Outbox:
    """Implements :class:`bot.engine.OutboxPort` on the bot's ``outbox`` table."""

    def __init__(self, *, sessions: async_sessionmaker[AsyncSession], clock: Callable[[], dt.datetime]) -> None:
        self._sessions = sessions
        self._clock = clock

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        ids = [i for i in outbox_ids if i is not None]
        if not ids:
            return
        async with self._sessions() as session:  # one UPDATE is the whole unit of work
            await autocommit(session)
            await session.execute(update(OutboxItem).where(OutboxItem.id.in_(ids), OutboxItem.sent_at.is_(None))
                                  .values(sent_at=self._clock()).execution_options(synchronize_session=False))

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        where = [OutboxItem.channel == channel]
        if user_keys is not None:
            # replies that web visitors never acknowledged (they closed the tab) pile up until the
            # retention purge; without this filter they would fill ``limit`` and hide the reply a
            # connected person is waiting for
            if not user_keys:
                return []
            where.append(OutboxItem.user_key.in_(list(user_keys)))
        async with self._sessions() as session:
            await autocommit(session)
            return await unsent(session=session, where=where, order_by=OutboxItem.id, limit=limit)

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        """Unsent replies for ``channel`` that no other delivery loop holds, now leased to this one.

        Why a lease and not a lock: the sending happens outside any transaction (Telegram may take
        seconds), and a replica that dies mid-send must not hold its rows forever; an expired lease
        makes the row deliverable again, so a crash costs at most one duplicate, never a loss.
        """
        now = self._clock()
        free = or_(OutboxItem.lease_until.is_(None), OutboxItem.lease_until < now)
        async with self._sessions() as session:
            query = (select(OutboxItem.id).where(OutboxItem.channel == channel, OutboxItem.sent_at.is_(None), free)
                     .order_by(OutboxItem.id).limit(limit).with_for_update(skip_locked=True))
            if exclude:
                query = query.where(OutboxItem.id.not_in(list(exclude)))
            candidates = list((await session.execute(query)).scalars())
            if not candidates:
                await session.rollback()
                return []
            # the same condition again: on SQLite (no SKIP LOCKED) two claimers may pick the same ids,
            # and only the first UPDATE still finds them free
            claimed = set((await session.execute(
                update(OutboxItem).where(OutboxItem.id.in_(candidates), free)
                .values(lease_until=now + dt.timedelta(seconds=lease_seconds))
                .returning(OutboxItem.id).execution_options(synchronize_session=False))).scalars())
            await session.commit()
        if not claimed:
            return []
        async with self._sessions() as session:
            await autocommit(session)
            found = await unsent(session=session, where=[OutboxItem.channel == channel,
                                                         OutboxItem.id.in_(sorted(claimed))], order_by=OutboxItem.id)
        return [out for out in found if out.id in claimed]
