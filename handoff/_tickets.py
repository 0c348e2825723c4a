"""The ticket lifecycle: open, append, claim, reply, note, resolve, transfer, release, erase.

Every function takes a keyword-only ``session``; the caller owns the transaction and commits.
Actions by console users take an :class:`Actor` and check it against :mod:`handoff._policy`
here, not only in the console, so no caller can skip the MRC and role checks.

Claims are atomic on both databases: a conditional ``UPDATE ... WHERE status = 'open'`` decides
the winner; on PostgreSQL the next ticket is picked with ``FOR UPDATE SKIP LOCKED`` so twenty
counsellors pressing "next" at once each get a different ticket without waiting on each other.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff._audit import audit
from handoff._enums import AuditAction, Author, DeliveryStatus, Priority, Reason, Status
from handoff._errors import AlreadyClaimed, HandoffError, InvalidState, NotAllowed, TicketNotFound
from handoff._hours import due_at
from handoff._policy import (
    Actor,
    can_claim,
    can_note,
    can_take_over,
    can_transfer,
    can_view_ticket,
    can_work_queue,
    can_write,
)
from handoff._ports import MediaRef, OutboundMessage, OutboundPort
from handoff._settings import ConsoleSettings, MrcSettings
from handoff.tables import AuditEntry, Ticket, TicketMessage, TicketNote, TicketTransfer
from storage import utcnow

log = logging.getLogger("hamroh.handoff")

__all__ = [
    "MAX_REPLY_CHARS",
    "QueueFilter",
    "ReplyResult",
    "TicketDetail",
    "TranscriptLine",
    "active_ticket_for_user",
    "active_ticket_id",
    "add_note",
    "append_user_message",
    "claim",
    "claim_next",
    "close_by_user",
    "delete_user_data",
    "deliver_reply",
    "export_transcript",
    "finish_delivery",
    "get_ticket",
    "list_queue",
    "open_ticket",
    "outbound_message_for",
    "purge_closed_before",
    "record_reply",
    "release",
    "release_idle_claims",
    "reply",
    "resolve",
    "retryable_reply",
    "send_outside_transaction",
    "start_delivery",
    "tell_user",
    "transfer",
    "view_ticket",
]

# Telegram's limit is 4,096 characters a message; keep a margin for the channel's own frame.
MAX_REPLY_CHARS = 3800
MAX_NOTE_CHARS = 4000
MAX_USER_TEXT_CHARS = 8000


@dataclass(frozen=True, slots=True)
class TranscriptLine:
    """One line of the conversation before the hand-off, as the bot recorded it."""

    author: Author
    text: str
    at: datetime | None = None
    attachment_kind: str | None = None


@dataclass(frozen=True, slots=True)
class ReplyResult:
    """What happened to a reply: stored, and whether it reached the outbound port."""

    message: TicketMessage
    delivered: bool
    duplicate: bool = False
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueFilter:
    """Filters of the queue page; all optional."""

    lang: str | None = None
    priority: Priority | None = None
    reason: Reason | None = None
    min_age_minutes: int | None = None
    view: str = "active"  # active | open | claimed | mine | closed
    mrc_id: str | None = None
    limit: int = 200


@dataclass(slots=True)
class TicketDetail:
    """Everything the ticket page shows."""

    ticket: Ticket
    messages: list[TicketMessage] = field(default_factory=list)
    notes: list[TicketNote] = field(default_factory=list)
    transfers: list[TicketTransfer] = field(default_factory=list)


def _mrc(settings: ConsoleSettings, mrc_id: str) -> MrcSettings:
    mrc = settings.mrc(mrc_id)
    if mrc is None:
        raise HandoffError(f"unknown MRC {mrc_id!r}; configured: {', '.join(settings.mrc_ids)}")
    return mrc


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- opened by the bot -------------------------------------------------------------------------


async def open_ticket(
    *,
    session: AsyncSession,
    settings: ConsoleSettings,
    user_key: str,
    mrc_id: str,
    reason: Reason | str,
    lang: str,
    profile: Mapping[str, Any] | None = None,
    transcript: Sequence[TranscriptLine] = (),
    first_message: str | None = None,
    crisis_kind: str | None = None,
    question_text: str | None = None,
    topic: str | None = None,
    priority: Priority | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Open a ticket, or return the user's active one (escalated if this request is more urgent).

    One active ticket per user: a second "talk to a counsellor" while waiting must not put the
    person in the queue twice. A crisis on an existing ticket raises its priority, resets its due
    time and re-arms the crisis alert.

    After committing a crisis ticket, call :func:`handoff.notify_pending_crises`.
    """
    now = now or utcnow()
    reason = Reason(reason)
    mrc = _mrc(settings, mrc_id)
    prio = priority if priority is not None else Priority.for_reason(reason)
    if reason is Reason.CRISIS:
        prio = Priority.CRISIS
    lines = list(transcript)
    if first_message:
        lines.append(TranscriptLine(Author.USER, first_message, now))

    existing = await active_ticket_for_user(session=session, user_key=user_key)
    if existing is None:
        ticket = Ticket(
            id=await _fresh_ticket_id(session),
            user_key=user_key,
            mrc_id=mrc.id,
            reason=reason.value,
            priority=int(prio),
            crisis_kind=crisis_kind,
            lang=lang,
            profile=dict(profile or {}),
            question_text=_clip(question_text, MAX_USER_TEXT_CHARS) if question_text else None,
            topic=topic,
            status=Status.OPEN.value,
            created_at=now,
            due_at=due_at(now, mrc, prio),
            last_user_message_at=now,
        )
        try:
            async with session.begin_nested():
                session.add(ticket)
                await session.flush()
        except IntegrityError:
            # Another request opened the user's ticket a moment ago: join it.
            existing = await active_ticket_for_user(session=session, user_key=user_key)
            if existing is None:
                raise
        else:
            _add_lines(session, ticket.id, lines, now)
            await session.flush()
            return ticket

    ticket = existing
    if int(prio) < ticket.priority:
        ticket.priority = int(prio)
        ticket.due_at = min(ticket.due_at, due_at(now, _mrc(settings, ticket.mrc_id), prio))
        if prio is Priority.CRISIS:
            ticket.crisis_kind = crisis_kind or ticket.crisis_kind
            ticket.crisis_notified_at = None
    if question_text and not ticket.question_text:
        ticket.question_text = _clip(question_text, MAX_USER_TEXT_CHARS)
    since = await _last_message_at(session, ticket.id)
    fresh = [line for line in lines if line.at is None or since is None or line.at > since]
    session.add(
        TicketMessage(
            ticket_id=ticket.id,
            author=Author.SYSTEM.value,
            text=f"Escalated again: {reason.label}" + (f" ({crisis_kind})" if crisis_kind else ""),
            created_at=now,
        )
    )
    _add_lines(session, ticket.id, fresh, now)
    ticket.last_user_message_at = now
    await session.flush()
    return ticket


def _add_lines(session: AsyncSession, ticket_id: int, lines: Sequence[TranscriptLine], now: datetime) -> None:
    for line in lines:
        session.add(
            TicketMessage(
                ticket_id=ticket_id,
                author=Author(line.author).value,
                text=_clip(line.text, MAX_USER_TEXT_CHARS),
                attachment_kind=line.attachment_kind,
                created_at=line.at or now,
            )
        )


async def _last_message_at(session: AsyncSession, ticket_id: int) -> datetime | None:
    return await session.scalar(select(func.max(TicketMessage.created_at)).where(TicketMessage.ticket_id == ticket_id))


async def append_user_message(
    *,
    session: AsyncSession,
    ticket_id: int,
    text: str,
    attachment_kind: str | None = None,
    attachment: MediaRef | None = None,
    client_key: str | None = None,
    author: Author = Author.USER,
    now: datetime | None = None,
) -> TicketMessage:
    """Add what the user (or the bot) wrote while a counsellor has the conversation.

    ``client_key`` (e.g. the channel's message id) makes a redelivered update a no-op.
    ``attachment`` is the channel's handle of a voice note, photo or file (never the file), for
    the console to fetch when a counsellor opens it.
    """
    now = now or utcnow()
    ticket = await session.get(Ticket, ticket_id)
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} does not exist")
    if client_key is not None:
        found = await _message_by_key(session, ticket_id, client_key)
        if found is not None:
            return found
    if not ticket.is_active:
        raise InvalidState(f"ticket {ticket_id} is {ticket.status}; open a new ticket instead")
    message = TicketMessage(
        ticket_id=ticket_id,
        author=Author(author).value,
        text=_clip(text, MAX_USER_TEXT_CHARS),
        attachment_kind=attachment_kind,
        attachment_file_id=attachment.file_id if attachment else None,
        attachment_mime=attachment.mime if attachment else None,
        attachment_seconds=attachment.seconds if attachment else None,
        created_at=now,
        client_key=client_key,
    )
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()
    except IntegrityError:
        found = await _message_by_key(session, ticket_id, client_key) if client_key else None
        if found is None:
            raise
        return found
    if author is Author.USER:
        ticket.last_user_message_at = now
    await session.flush()
    return message


async def _message_by_key(session: AsyncSession, ticket_id: int, client_key: str) -> TicketMessage | None:
    found: TicketMessage | None = await session.scalar(
        select(TicketMessage).where(TicketMessage.ticket_id == ticket_id, TicketMessage.client_key == client_key)
    )
    return found


def _active_for(user_key: str) -> tuple[Any, ...]:
    return (Ticket.user_key == user_key, Ticket.status.in_(Status.active()))


async def active_ticket_for_user(*, session: AsyncSession, user_key: str) -> Ticket | None:
    """The user's open or claimed ticket, loaded whole (opening a ticket joins it)."""
    found: Ticket | None = await session.scalar(select(Ticket).where(*_active_for(user_key)))
    return found


async def active_ticket_id(*, session: AsyncSession, user_key: str) -> int | None:
    """The id of the user's open or claimed ticket: the bot stays quiet while a counsellor has it.

    Why an id and no autoflush: the conversation engine asks this for every message, inside a
    transaction holding the message it has not flushed yet. One column and no flush keep it to one
    cheap statement (loading the whole ticket, with a flush first, cost about as much as the rest
    of the message's database work).
    """
    with session.no_autoflush:
        found: int | None = await session.scalar(
            select(Ticket.id).where(*_active_for(user_key)))
    return found


# --- reading -----------------------------------------------------------------------------------


async def get_ticket(*, session: AsyncSession, ticket_id: int, actor: Actor) -> Ticket:
    """The ticket if the actor may see it; another MRC's ticket is reported as not found."""
    ticket = await session.get(Ticket, ticket_id, populate_existing=True)
    if ticket is None:
        raise TicketNotFound(f"ticket {ticket_id} not found")
    if not can_view_ticket(actor, ticket):
        raise TicketNotFound(f"ticket {ticket_id} not found",
                             denied=(actor.id, actor.username, int(ticket.id), ticket.mrc_id))
    return ticket


async def view_ticket(*, session: AsyncSession, ticket_id: int, actor: Actor) -> TicketDetail:
    """Load a ticket for display and record the view in the audit log."""
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    detail = TicketDetail(ticket=ticket)
    detail.messages = list(
        (
            await session.scalars(
                select(TicketMessage)
                .where(TicketMessage.ticket_id == ticket.id)
                .order_by(TicketMessage.created_at, TicketMessage.id)
            )
        ).all()
    )
    detail.notes = list(
        (
            await session.scalars(select(TicketNote).where(TicketNote.ticket_id == ticket.id).order_by(TicketNote.id))
        ).all()
    )
    detail.transfers = list(
        (
            await session.scalars(
                select(TicketTransfer)
                .where(or_(TicketTransfer.from_ticket_id == ticket.id, TicketTransfer.to_ticket_id == ticket.id))
                .order_by(TicketTransfer.id)
            )
        ).all()
    )
    await audit(session, actor, AuditAction.VIEW, ticket_id=ticket.id, mrc_id=ticket.mrc_id)
    return detail


async def export_transcript(*, session: AsyncSession, ticket_id: int, actor: Actor) -> str:
    """Plain-text transcript for the MRC's case file; audited as an export."""
    detail = await view_ticket(session=session, ticket_id=ticket_id, actor=actor)
    ticket = detail.ticket
    lines = [
        f"Ticket {ticket.id} — MRC {ticket.mrc_id} — language {ticket.lang}",
        f"Reason: {Reason(ticket.reason).label}" + (f" ({ticket.crisis_kind})" if ticket.crisis_kind else ""),
        f"Opened: {ticket.created_at:%Y-%m-%d %H:%M} UTC — status: {ticket.status}",
        "",
    ]
    for message in detail.messages:
        who = message.counsellor.display_name if message.counsellor else message.author
        lines.append(f"[{message.created_at:%Y-%m-%d %H:%M}] {who}: {message.text}")
    if detail.notes:
        lines += ["", "Private notes:"]
        lines += [f"[{n.created_at:%Y-%m-%d %H:%M}] {n.counsellor.display_name}: {n.text}" for n in detail.notes]
    await audit(session, actor, AuditAction.EXPORT, ticket_id=ticket.id, mrc_id=ticket.mrc_id)
    return "\n".join(lines) + "\n"


async def list_queue(
    *, session: AsyncSession, actor: Actor, filters: QueueFilter, now: datetime | None = None
) -> list[Ticket]:
    """The queue the actor may see: crisis first, then oldest first."""
    if not can_work_queue(actor):
        raise NotAllowed("this account does not work the queue")
    now = now or utcnow()
    query = select(Ticket)
    if actor.mrc_id is not None:
        query = query.where(Ticket.mrc_id == actor.mrc_id)
    elif filters.mrc_id:
        query = query.where(Ticket.mrc_id == filters.mrc_id)
    view = filters.view
    if view == "open":
        query = query.where(Ticket.status == Status.OPEN)
    elif view == "claimed":
        query = query.where(Ticket.status == Status.CLAIMED)
    elif view == "mine":
        query = query.where(Ticket.status == Status.CLAIMED, Ticket.claimed_by_id == actor.id)
    elif view == "closed":
        query = query.where(Ticket.status.in_((Status.RESOLVED, Status.TRANSFERRED)))
    else:
        query = query.where(Ticket.status.in_(Status.active()))
    if filters.lang:
        query = query.where(Ticket.lang == filters.lang)
    if filters.priority is not None:
        query = query.where(Ticket.priority == int(filters.priority))
    if filters.reason is not None:
        query = query.where(Ticket.reason == filters.reason.value)
    if filters.min_age_minutes:
        query = query.where(Ticket.created_at <= now - timedelta(minutes=filters.min_age_minutes))
    if view == "closed":
        query = query.order_by(Ticket.id.desc())
    else:
        query = query.order_by(Ticket.priority, Ticket.created_at, Ticket.id)
    return list((await session.scalars(query.limit(filters.limit))).unique().all())


# --- claiming ----------------------------------------------------------------------------------


def _claim_values(actor: Actor, now: datetime) -> dict[str, Any]:
    return {
        "status": Status.CLAIMED.value,
        "claimed_by_id": actor.id,
        "claimed_at": now,
        "claim_activity_at": now,
    }


async def claim(*, session: AsyncSession, ticket_id: int, actor: Actor, now: datetime | None = None) -> Ticket:
    """Take one ticket. Exactly one of several simultaneous claimers wins; the others get
    :class:`AlreadyClaimed` naming who has it."""
    now = now or utcnow()
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if ticket.status == Status.CLAIMED and ticket.claimed_by_id == actor.id:
        return ticket
    if not can_claim(actor, ticket) and ticket.status == Status.OPEN:
        raise NotAllowed("this account cannot claim tickets")
    result = await session.execute(
        update(Ticket)
        .where(Ticket.id == ticket_id, Ticket.status == Status.OPEN)
        .values(**_claim_values(actor, now))
        .returning(Ticket.id)
        .execution_options(synchronize_session=False)
    )
    won = result.scalar_one_or_none() is not None
    await session.refresh(ticket)
    if not won:
        if ticket.status == Status.CLAIMED:
            holder = ticket.claimed_by.display_name if ticket.claimed_by else "someone else"
            raise AlreadyClaimed(f"ticket {ticket_id} is already claimed by {holder}")
        raise InvalidState(f"ticket {ticket_id} is {ticket.status}")
    await audit(session, actor, AuditAction.CLAIM, ticket_id=ticket.id, mrc_id=ticket.mrc_id)
    return ticket


async def claim_next(
    *,
    session: AsyncSession,
    actor: Actor,
    lang: str | None = None,
    mrc_id: str | None = None,
    now: datetime | None = None,
) -> Ticket | None:
    """Claim the most urgent open ticket in the actor's scope, or return ``None`` if none is left."""
    if not can_work_queue(actor):
        raise NotAllowed("this account does not work the queue")
    now = now or utcnow()
    scope_mrc = actor.mrc_id if actor.mrc_id is not None else mrc_id
    conditions = [Ticket.status == Status.OPEN]
    if scope_mrc is not None:
        conditions.append(Ticket.mrc_id == scope_mrc)
    if lang:
        conditions.append(Ticket.lang == lang)
    pick = select(Ticket.id).where(and_(*conditions)).order_by(Ticket.priority, Ticket.created_at, Ticket.id).limit(1)
    postgres = session.get_bind().dialect.name == "postgresql"
    claimed_id: int | None = None
    for _ in range(5):
        if postgres:
            candidate = await session.scalar(pick.with_for_update(skip_locked=True))
            if candidate is None:
                return None
            target: Any = candidate
        else:
            # SQLite: the write lock taken at BEGIN IMMEDIATE serialises this statement, and the
            # status condition makes it correct even on a deferred transaction.
            target = pick.scalar_subquery()
        result = await session.execute(
            update(Ticket)
            .where(Ticket.id == target, Ticket.status == Status.OPEN)
            .values(**_claim_values(actor, now))
            .returning(Ticket.id)
            .execution_options(synchronize_session=False)
        )
        claimed_id = result.scalar_one_or_none()
        if claimed_id is not None:
            break
        if not postgres and await session.scalar(pick) is None:
            return None
    if claimed_id is None:
        return None
    ticket = await session.get(Ticket, claimed_id, populate_existing=True)
    assert ticket is not None
    await audit(session, actor, AuditAction.CLAIM, ticket_id=ticket.id, mrc_id=ticket.mrc_id, detail="next")
    return ticket


async def release(*, session: AsyncSession, ticket_id: int, actor: Actor) -> Ticket:
    """Give a claimed ticket back to the queue (the holder, or a supervisor)."""
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if ticket.status != Status.CLAIMED:
        raise InvalidState(f"ticket {ticket_id} is {ticket.status}, not claimed")
    if not (can_write(actor, ticket) or can_take_over(actor, ticket)):
        raise NotAllowed("only the counsellor holding the ticket or a supervisor can release it")
    _unclaim(ticket)
    await audit(session, actor, AuditAction.RELEASE, ticket_id=ticket.id, mrc_id=ticket.mrc_id)
    await session.flush()
    return ticket


def _unclaim(ticket: Ticket) -> None:
    ticket.status = Status.OPEN.value
    ticket.claimed_by_id = None
    ticket.claimed_at = None
    ticket.claim_activity_at = None


async def release_idle_claims(
    *, session: AsyncSession, older_than: timedelta, now: datetime | None = None
) -> list[int]:
    """Return claims with no counsellor activity for ``older_than`` to the queue.

    A counsellor who claimed a ticket and went home must not leave the user waiting.
    """
    now = now or utcnow()
    cutoff = now - older_than
    result = await session.execute(
        update(Ticket)
        .where(Ticket.status == Status.CLAIMED, Ticket.claim_activity_at < cutoff)
        .values(status=Status.OPEN.value, claimed_by_id=None, claimed_at=None, claim_activity_at=None)
        .returning(Ticket.id, Ticket.mrc_id)
        .execution_options(synchronize_session=False)
    )
    released = list(result.all())
    minutes = int(older_than.total_seconds() // 60)
    for ticket_id, mrc_id in released:
        await audit(
            session, None, AuditAction.RELEASE, ticket_id=ticket_id, mrc_id=mrc_id, detail=f"idle {minutes} min"
        )
    return [ticket_id for ticket_id, _ in released]


# --- working a ticket --------------------------------------------------------------------------


def _touch(ticket: Ticket, actor: Actor, now: datetime) -> None:
    if ticket.status == Status.CLAIMED and ticket.claimed_by_id == actor.id:
        ticket.claim_activity_at = now


async def record_reply(
    *,
    session: AsyncSession,
    ticket_id: int,
    actor: Actor,
    text: str,
    client_key: str | None = None,
    curated_entry_id: str | None = None,
    now: datetime | None = None,
) -> tuple[TicketMessage, bool]:
    """Store a reply as pending delivery. Returns ``(message, created)``; ``created`` is False
    when ``client_key`` was seen before (a double submit), and nothing new is stored."""
    now = now or utcnow()
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if client_key:
        found = await _message_by_key(session, ticket.id, client_key)
        if found is not None:
            return found, False
    if not can_write(actor, ticket):
        if ticket.status == Status.CLAIMED:
            raise NotAllowed("claim the ticket before replying; someone else holds it")
        raise InvalidState(f"ticket {ticket_id} is {ticket.status}; claim it before replying")
    body = text.strip()
    if not body:
        raise InvalidState("the reply is empty")
    if len(body) > MAX_REPLY_CHARS:
        raise InvalidState(f"the reply is {len(body)} characters; the limit is {MAX_REPLY_CHARS}")
    message = TicketMessage(
        ticket_id=ticket.id,
        author=Author.COUNSELLOR.value,
        counsellor_id=actor.id,
        text=body,
        created_at=now,
        client_key=client_key or None,
        delivery_status=DeliveryStatus.PENDING.value,
        curated_entry_id=curated_entry_id or None,
    )
    try:
        async with session.begin_nested():
            session.add(message)
            await session.flush()
    except IntegrityError:
        found = await _message_by_key(session, ticket.id, client_key) if client_key else None
        if found is None:
            raise
        return found, False
    if ticket.first_reply_at is None:
        ticket.first_reply_at = now
    _touch(ticket, actor, now)
    detail = f"message {message.id}" + (f", curated {curated_entry_id}" if curated_entry_id else "")
    await audit(session, actor, AuditAction.REPLY, ticket_id=ticket.id, mrc_id=ticket.mrc_id, detail=detail)
    await session.flush()
    return message, True


async def start_delivery(*, session: AsyncSession, message_id: int, retry: bool = False) -> bool:
    """Mark a reply as being sent. Only one caller can win, so the port is called once.

    ``retry=True`` also accepts a reply whose earlier delivery failed.
    """
    allowed = [DeliveryStatus.PENDING.value] + ([DeliveryStatus.FAILED.value] if retry else [])
    result = await session.execute(
        update(TicketMessage)
        .where(TicketMessage.id == message_id, TicketMessage.delivery_status.in_(allowed))
        .values(delivery_status=DeliveryStatus.SENDING.value, delivery_error=None)
        .returning(TicketMessage.id)
        .execution_options(synchronize_session=False)
    )
    return result.scalar_one_or_none() is not None


async def finish_delivery(
    *, session: AsyncSession, message_id: int, error: str | None = None, now: datetime | None = None
) -> None:
    """Record the outcome of :func:`start_delivery`."""
    await session.execute(
        update(TicketMessage)
        .where(TicketMessage.id == message_id)
        .values(
            delivery_status=(DeliveryStatus.FAILED if error else DeliveryStatus.SENT).value,
            delivery_error=_clip(error, 200) if error else None,
            delivered_at=None if error else (now or utcnow()),
        )
        .execution_options(synchronize_session=False)
    )


async def outbound_message_for(*, session: AsyncSession, message_id: int) -> tuple[str, OutboundMessage]:
    """The user key and the message to hand to the outbound port for a stored reply."""
    row = (
        await session.execute(
            select(Ticket.user_key, Ticket.lang, TicketMessage)
            .join(Ticket, Ticket.id == TicketMessage.ticket_id)
            .where(TicketMessage.id == message_id)
        )
    ).one()
    user_key, lang, message = row
    name = message.counsellor.display_name if message.counsellor else "Counsellor"
    return user_key, OutboundMessage(text=message.text, ticket_id=message.ticket_id, counsellor_name=name, lang=lang)


async def retryable_reply(*, session: AsyncSession, ticket_id: int, message_id: int, actor: Actor) -> TicketMessage:
    """A reply on this ticket whose delivery ``actor`` may retry (the holder, or one who may take over)."""
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    message = await session.get(TicketMessage, message_id)
    if message is None or message.ticket_id != ticket.id:
        raise TicketNotFound("no such message on this ticket")
    if not (can_write(actor, ticket) or can_take_over(actor, ticket)):
        raise NotAllowed("claim the ticket before retrying a reply")
    return message


async def deliver_reply(
    *, session: AsyncSession, message_id: int, outbound: OutboundPort, retry: bool = False
) -> tuple[bool, str | None]:
    """Send a stored reply through the port at most once. Returns ``(delivered, error)``.

    In this form the port is awaited inside the caller's transaction; the console instead uses
    :func:`send_outside_transaction`, which commits around the send so no lock is held while the
    network is slow.
    """
    if not await start_delivery(session=session, message_id=message_id, retry=retry):
        return False, "already being delivered or delivered"
    user_key, message = await outbound_message_for(session=session, message_id=message_id)
    error: str | None = None
    try:
        await outbound.send(user_key, message)
    except Exception as exc:  # the port's failure is recorded, shown, and can be retried
        error = f"{type(exc).__name__}: {exc}"
    await finish_delivery(session=session, message_id=message_id, error=error)
    return error is None, error


async def send_outside_transaction(
    sessions: async_sessionmaker[AsyncSession], *, message_id: int, outbound: OutboundPort, retry: bool = False
) -> bool:
    """Deliver a stored reply with the send outside any transaction, so a slow channel never holds a
    database lock: mark it as being sent and commit, send, record the outcome in a second transaction.

    Takes the session factory (not a session) because it must commit between the steps. Returns
    ``False`` only when the send failed (the error is stored; the reply can be retried); ``True`` when
    it was sent or another caller already has it.
    """
    async with sessions() as session, session.begin():
        if not await start_delivery(session=session, message_id=message_id, retry=retry):
            return True
        user_key, message = await outbound_message_for(session=session, message_id=message_id)
    error: str | None = None
    try:
        await outbound.send(user_key, message)
    except Exception as exc:  # recorded on the message and offered for retry
        error = f"{type(exc).__name__}: {exc}"
    async with sessions() as session, session.begin():
        await finish_delivery(session=session, message_id=message_id, error=error)
    return error is None


async def reply(
    *,
    session: AsyncSession,
    ticket_id: int,
    actor: Actor,
    text: str,
    outbound: OutboundPort,
    client_key: str | None = None,
    curated_entry_id: str | None = None,
    now: datetime | None = None,
) -> ReplyResult:
    """Record a counsellor's reply and hand it to the outbound port exactly once.

    Idempotent on ``client_key``: a repeated call stores nothing and sends nothing.
    """
    message, created = await record_reply(
        session=session,
        ticket_id=ticket_id,
        actor=actor,
        text=text,
        client_key=client_key,
        curated_entry_id=curated_entry_id,
        now=now,
    )
    if not created:
        return ReplyResult(message, delivered=message.delivery_status == DeliveryStatus.SENT, duplicate=True)
    delivered, error = await deliver_reply(session=session, message_id=message.id, outbound=outbound)
    await session.refresh(message)
    return ReplyResult(message, delivered=delivered, error=error)


async def add_note(
    *, session: AsyncSession, ticket_id: int, actor: Actor, text: str, now: datetime | None = None
) -> TicketNote:
    """A private note for colleagues; never leaves the console."""
    now = now or utcnow()
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if not can_note(actor, ticket):
        raise NotAllowed("this account cannot write notes")
    body = text.strip()
    if not body:
        raise InvalidState("the note is empty")
    note = TicketNote(ticket_id=ticket.id, counsellor_id=actor.id, text=_clip(body, MAX_NOTE_CHARS), created_at=now)
    session.add(note)
    _touch(ticket, actor, now)
    await session.flush()
    await audit(session, actor, AuditAction.NOTE, ticket_id=ticket.id, mrc_id=ticket.mrc_id, detail=f"note {note.id}")
    return note


async def resolve(
    *,
    session: AsyncSession,
    ticket_id: int,
    actor: Actor,
    topic: str | None = None,
    now: datetime | None = None,
) -> Ticket:
    """Close the ticket; the bot answers the user again from the next message on."""
    now = now or utcnow()
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if not ticket.is_active:
        raise InvalidState(f"ticket {ticket_id} is already {ticket.status}")
    if not (can_write(actor, ticket) or can_take_over(actor, ticket)):
        raise NotAllowed("claim the ticket before resolving it")
    ticket.status = Status.RESOLVED.value
    ticket.resolved_at = now
    ticket.resolved_by_id = actor.id
    if topic:
        ticket.topic = topic[:64]
    await audit(session, actor, AuditAction.RESOLVE, ticket_id=ticket.id, mrc_id=ticket.mrc_id)
    await session.flush()
    return ticket


async def transfer(
    *,
    session: AsyncSession,
    settings: ConsoleSettings,
    ticket_id: int,
    actor: Actor,
    to_mrc_id: str,
    note: str,
    now: datetime | None = None,
) -> Ticket:
    """Refer the conversation to another MRC (a Bangladeshi worker in Iraq → the MRC in Iraq).

    The ticket here becomes ``transferred``; a new open ticket with the transcript and the
    referring note starts in the other MRC's queue, keeping its priority and language.
    """
    now = now or utcnow()
    ticket = await get_ticket(session=session, ticket_id=ticket_id, actor=actor)
    if not ticket.is_active:
        raise InvalidState(f"ticket {ticket_id} is {ticket.status}")
    if not can_transfer(actor, ticket):
        raise NotAllowed("claim the ticket before transferring it")
    target = settings.mrc(to_mrc_id)
    if target is None:
        raise InvalidState(f"unknown MRC {to_mrc_id!r}")
    if target.id == ticket.mrc_id:
        raise InvalidState("the ticket is already in that MRC")
    body = note.strip()
    if not body:
        raise InvalidState("write a note for the receiving MRC: what the person needs and why")

    ticket.status = Status.TRANSFERRED.value
    ticket.transferred_at = now
    await session.flush()  # the user's active ticket must be closed before the new one exists

    priority = Priority(ticket.priority)
    successor = Ticket(
        id=await _fresh_ticket_id(session),
        user_key=ticket.user_key,
        mrc_id=target.id,
        reason=ticket.reason,
        priority=ticket.priority,
        crisis_kind=ticket.crisis_kind,
        lang=ticket.lang,
        profile=dict(ticket.profile or {}),
        question_text=ticket.question_text,
        topic=ticket.topic,
        status=Status.OPEN.value,
        created_at=now,
        due_at=due_at(now, target, priority),
        last_user_message_at=ticket.last_user_message_at,
        transferred_from_id=ticket.id,
    )
    session.add(successor)
    await session.flush()
    messages = (
        await session.scalars(
            select(TicketMessage).where(TicketMessage.ticket_id == ticket.id).order_by(TicketMessage.id)
        )
    ).all()
    for message in messages:
        session.add(
            TicketMessage(
                ticket_id=successor.id,
                author=message.author,
                counsellor_id=message.counsellor_id,
                text=message.text,
                attachment_kind=message.attachment_kind,
                attachment_file_id=message.attachment_file_id,
                attachment_mime=message.attachment_mime,
                attachment_seconds=message.attachment_seconds,
                created_at=message.created_at,
                delivery_status=message.delivery_status,
                delivered_at=message.delivered_at,
                curated_entry_id=message.curated_entry_id,
            )
        )
    session.add(
        TicketTransfer(
            from_ticket_id=ticket.id,
            to_ticket_id=successor.id,
            from_mrc_id=ticket.mrc_id,
            to_mrc_id=target.id,
            counsellor_id=actor.id,
            note=_clip(body, MAX_NOTE_CHARS),
            created_at=now,
        )
    )
    source = settings.mrc(ticket.mrc_id)
    session.add(
        TicketNote(
            ticket_id=successor.id,
            counsellor_id=actor.id,
            text=_clip(f"Referred by {source.name if source else ticket.mrc_id}: {body}", MAX_NOTE_CHARS),
            created_at=now,
        )
    )
    detail = f"ticket {ticket.id} ({ticket.mrc_id}) → ticket {successor.id} ({target.id})"
    await audit(session, actor, AuditAction.TRANSFER, ticket_id=ticket.id, mrc_id=ticket.mrc_id, detail=detail)
    await audit(session, actor, AuditAction.TRANSFER, ticket_id=successor.id, mrc_id=target.id, detail=detail)
    await session.flush()
    return successor


async def _fresh_ticket_id(session: AsyncSession) -> int | None:
    """On SQLite, an id no ticket and no audit entry ever had; elsewhere None (the sequence's).

    Why: SQLite gives a new row the largest id + 1, so after the newest ticket was erased the next
    person got its number, and the audit log of "ticket 5" mixed two people. PostgreSQL sequences
    never go back. SQLite writes are serialised (BEGIN IMMEDIATE), so reading the maximum is safe.
    """
    if session.get_bind().dialect.name != "sqlite":
        return None
    highest = await session.scalar(select(func.max(Ticket.id)))
    audited = await session.scalar(select(func.max(AuditEntry.ticket_id)))
    return max(highest or 0, audited or 0) + 1


# --- erasure -----------------------------------------------------------------------------------


async def _delete_tickets(session: AsyncSession, ticket_ids: Sequence[int]) -> int:
    if not ticket_ids:
        return 0
    ids = list(ticket_ids)
    await session.execute(
        delete(TicketTransfer).where(or_(TicketTransfer.from_ticket_id.in_(ids), TicketTransfer.to_ticket_id.in_(ids)))
    )
    await session.execute(delete(TicketNote).where(TicketNote.ticket_id.in_(ids)))
    await session.execute(delete(TicketMessage).where(TicketMessage.ticket_id.in_(ids)))
    await session.execute(update(Ticket).where(Ticket.id.in_(ids)).values(transferred_from_id=None))
    await session.execute(delete(Ticket).where(Ticket.id.in_(ids)))
    return len(ids)


async def tell_user(outbound: OutboundPort, *, ticket: Ticket, kind: str, text: str = "") -> bool:
    """Tell the person that their request was resolved or transferred, in their language.

    Called after the change is committed; a person who erased their data in the meantime is simply
    not told (False). Nobody is left wondering whether a counsellor is still coming.
    """
    try:
        await outbound.send(ticket.user_key, OutboundMessage(text=text, ticket_id=int(ticket.id), counsellor_name="",
                                                             lang=ticket.lang or "", kind=kind))
    except Exception:  # the channel or the person is gone; the console still shows the change
        log.warning("could not tell the person about ticket %s (%s)", ticket.id, kind)
        return False
    return True


async def close_by_user(
    *, session: AsyncSession, user_key: str, reason: str, now: datetime | None = None
) -> Ticket | None:
    """The person closed their own request ("back to the bot", or /delete on an open ticket).

    The ticket is resolved with a system line that says why, so the counsellor sees what happened
    instead of a ticket that vanishes; returns the ticket, or None when none was active.
    """
    now = now or utcnow()
    ticket = await active_ticket_for_user(session=session, user_key=user_key)
    if ticket is None:
        return None
    label = {"returned": "The person went back to the bot", "deleted": "Deleted by the person"}.get(reason, reason)
    session.add(TicketMessage(ticket_id=ticket.id, author=Author.SYSTEM.value, text=label, created_at=now))
    ticket.status = Status.RESOLVED.value
    ticket.resolved_at = now
    if reason == "deleted":
        ticket.topic = "deleted by the person"
    await session.flush()
    return ticket


async def delete_user_data(*, session: AsyncSession, user_key: str) -> int:
    """Erase every row about the user in handoff's tables (``/delete``). Returns tickets erased.

    The audit log keeps only that ticket numbers were viewed or answered, never by whom they
    were opened, so it is kept as it is.
    """
    # An open request is not made to vanish under the counsellor's eyes: it is closed as "deleted
    # by the person" and stripped of everything about them (their messages, the question, the
    # profile, the notes, which may name them); its key is detached so nothing links it back.
    active = await close_by_user(session=session, user_key=user_key, reason="deleted")
    keep = active.id if active is not None else None
    ids = list((await session.scalars(select(Ticket.id).where(Ticket.user_key == user_key, Ticket.id != keep))).all()
               if keep is not None else
               (await session.scalars(select(Ticket.id).where(Ticket.user_key == user_key))).all())
    count = await _delete_tickets(session, ids)
    if keep is not None:
        await session.execute(delete(TicketNote).where(TicketNote.ticket_id == keep))
        # every line goes, system lines too (a transfer note may name the person); one line says why
        await session.execute(delete(TicketMessage).where(TicketMessage.ticket_id == keep))
        session.add(TicketMessage(ticket_id=keep, author=Author.SYSTEM.value, text="Deleted by the person",
                                  created_at=utcnow()))
        await session.execute(update(Ticket).where(Ticket.id == keep).values(
            user_key=f"deleted:{keep}", question_text=None, profile={}))
        count += 1
    if count:
        await audit(session, None, AuditAction.USER_DATA_DELETED, detail=f"{count} ticket(s) erased on request")
    session.expunge_all()
    return count


async def purge_closed_before(*, session: AsyncSession, cutoff: datetime) -> int:
    """Retention: erase tickets resolved or transferred before ``cutoff``."""
    ids = list(
        (
            await session.scalars(
                select(Ticket.id).where(
                    or_(
                        and_(Ticket.status == Status.RESOLVED, Ticket.resolved_at < cutoff),
                        and_(Ticket.status == Status.TRANSFERRED, Ticket.transferred_at < cutoff),
                    )
                )
            )
        ).all()
    )
    count = await _delete_tickets(session, ids)
    if count:
        await audit(session, None, AuditAction.USER_DATA_DELETED, detail=f"{count} ticket(s) past retention")
    session.expunge_all()
    return count
