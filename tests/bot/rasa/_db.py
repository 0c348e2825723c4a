"""What the Rasa tests read back from the database: tickets with their messages, oldest first."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from handoff.tables import Ticket, TicketMessage
from storage import create_engine, session_factory


def stored_tickets(url: str) -> list[tuple[Ticket, list[TicketMessage]]]:
    async def load() -> list[tuple[Ticket, list[TicketMessage]]]:
        engine = create_engine(url)
        try:
            async with session_factory(engine)() as session:
                tickets = (await session.scalars(select(Ticket).order_by(Ticket.id))).all()
                return [(t, list((await session.scalars(select(TicketMessage).where(
                    TicketMessage.ticket_id == t.id).order_by(TicketMessage.id))).all())) for t in tickets]
        finally:
            await engine.dispose()

    return asyncio.run(load())
