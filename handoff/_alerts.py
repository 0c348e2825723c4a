"""Crisis alerts to the counsellors' Telegram group.

Each crisis ticket is announced once, across any number of app processes: the ticket is marked
with a conditional update before the message goes out. The alert carries no user text (the
group is outside the MRC's systems), only what a counsellor needs to open the console.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handoff._console_tickets import router as ticket_routes
from handoff._enums import Status
from handoff._ports import Notifier
from handoff._settings import ConsoleSettings
from handoff.tables import Ticket
from storage import utcnow

__all__ = ["crisis_alert_text", "notify_pending_crises", "ticket_link"]

log = logging.getLogger(__name__)


def ticket_link(settings: ConsoleSettings, ticket_id: int) -> str:
    """The ticket's page as an absolute URL, for a message outside the console (no request to ask):
    ``public_url`` is where the console is served (``https://mrc.example/console``), the rest is the
    console's route called ``ticket``."""
    path = str(ticket_routes.url_path_for("ticket", ticket_id=ticket_id))
    return (settings.public_url or "").rstrip("/") + path


def crisis_alert_text(ticket: Ticket, settings: ConsoleSettings) -> str:
    mrc = settings.mrc(ticket.mrc_id)
    where = mrc.name if mrc else ticket.mrc_id
    kind = f" — {ticket.crisis_kind}" if ticket.crisis_kind else ""
    link = f"\n{ticket_link(settings, ticket.id)}" if settings.public_url else ""
    return f"🚨 Crisis ticket #{ticket.id} — {where} — language {ticket.lang}{kind}. Open the console now.{link}"


async def notify_pending_crises(
    *, session: AsyncSession, settings: ConsoleSettings, notifier: Notifier, now: datetime | None = None
) -> list[int]:
    """Announce every active crisis ticket not yet announced; returns the ticket ids announced.

    Call it right after committing a crisis ticket and, as a safety net, now and then.
    A failed send is un-marked so the next call tries again.
    """
    chat_id = settings.telegram_group_chat_id
    if not chat_id:
        return []
    now = now or utcnow()
    pending = (
        await session.scalars(
            select(Ticket)
            .where(Ticket.priority == 0, Ticket.status.in_(Status.active()), Ticket.crisis_notified_at.is_(None))
            .order_by(Ticket.id)
        )
    ).all()
    sent: list[int] = []
    for ticket in pending:
        won = await session.execute(
            update(Ticket)
            .where(Ticket.id == ticket.id, Ticket.crisis_notified_at.is_(None))
            .values(crisis_notified_at=now)
            .returning(Ticket.id)
            .execution_options(synchronize_session=False)
        )
        if won.scalar_one_or_none() is None:
            continue
        try:
            await notifier.send_group_message(chat_id, crisis_alert_text(ticket, settings))
        except Exception as exc:
            log.warning("crisis alert for ticket %s failed: %s", ticket.id, type(exc).__name__)
            await session.execute(
                update(Ticket)
                .where(Ticket.id == ticket.id)
                .values(crisis_notified_at=None)
                .execution_options(synchronize_session=False)
            )
            continue
        sent.append(ticket.id)
    return sent
