"""The bot's tables (people, their messages, the outbox) behind plain functions.

Why functions with a keyword-only ``session`` and no session of their own: the engine decides what
one transaction holds (the incoming message, the state change and the replies commit together or
not at all), so every statement here runs in the caller's session, the FastAPI full-stack
template's ``crud`` rule. Plain multi-row inserts instead of ORM objects where a message's path
runs them: two statements cost a fraction of the unit of work's flush.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from handoff import Author, TranscriptLine, delete_user_data

from ..tables import BotUser, ConversationMessage, OutboxItem
from ._port import Outgoing
from ._types import Button, IncomingMessage, Reply, ReplyKind

__all__ = [
    "erase_person", "history", "insert_messages", "look_up", "purge_messages", "reply_from", "seen_clause",
    "store_replies", "transcript", "unsent", "unsent_for",
]


def seen_clause(message: IncomingMessage) -> Any:
    """True when this update was stored before (a redelivery)."""
    return select(ConversationMessage.id).where(
        ConversationMessage.channel == message.channel,
        ConversationMessage.channel_message_id == message.message_id,
        ConversationMessage.direction == "in").exists()


async def look_up(*, session: AsyncSession, message: IncomingMessage) -> Any:
    """The person's row as the first short look needs it, and whether the update was seen."""
    return (await session.execute(
        select(BotUser.lang, BotUser.current_lang, BotUser.origin, BotUser.destination, BotUser.stage,
               BotUser.state, seen_clause(message).label("seen"))
        .where(BotUser.user_key == message.user_key))).first()


def _table(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


async def insert_messages(*, session: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    await session.execute(insert(_table(ConversationMessage)), list(rows))


async def store_replies(*, session: AsyncSession, user_key: str, channel: str, ref: str, replies: Sequence[Reply],
                        now: dt.datetime) -> list[int]:
    """Queue ``replies`` in the outbox and the conversation; the outbox ids, in order.

    The session's pending changes are flushed first, so a new person's row exists before rows that
    refer to it.
    """
    if not replies:
        return []
    await session.flush()
    outbox = _table(OutboxItem)
    result = await session.execute(
        insert(outbox).returning(outbox.c.id, sort_by_parameter_order=True),
        [dict(user_key=user_key, channel=channel, in_reply_to=ref, seq=seq, payload=_payload(reply),
              created_at=now) for seq, reply in enumerate(replies)])
    ids = list(result.scalars())
    await insert_messages(session=session, rows=[dict(
        user_key=user_key, channel=channel, channel_message_id=f"{ref}#{seq}", direction="out",
        kind=reply.kind, text=reply.text, lang=reply.lang, created_at=now) for seq, reply in enumerate(replies)])
    return ids


async def unsent(*, session: AsyncSession, where: Sequence[Any], order_by: Any,
                 limit: int | None = None) -> list[Outgoing]:
    """Unsent outbox rows matching ``where``, with their person's delivery address."""
    query = (select(OutboxItem, BotUser.address).join(BotUser, BotUser.user_key == OutboxItem.user_key)
             .where(*where, OutboxItem.sent_at.is_(None)).order_by(order_by).limit(limit))
    return [Outgoing(item.id, item.user_key, item.channel, address, reply_from(item.payload))
            for item, address in (await session.execute(query)).all()]


async def unsent_for(*, session: AsyncSession, channel: str, ref: str) -> list[Outgoing]:
    """The replies to one incoming update not sent yet (a redelivery gets these, nothing new)."""
    return await unsent(session=session, where=[OutboxItem.channel == channel, OutboxItem.in_reply_to == ref],
                        order_by=OutboxItem.seq)


async def transcript(*, session: AsyncSession, user_key: str, limit: int) -> list[TranscriptLine]:
    """The last ``limit`` lines of the conversation, oldest first, for a new ticket."""
    rows = (await session.execute(
        select(ConversationMessage).where(ConversationMessage.user_key == user_key,
                                          ConversationMessage.text.is_not(None))
        .order_by(ConversationMessage.id.desc()).limit(limit))).scalars().all()
    return [TranscriptLine(Author.USER if m.direction == "in" else Author.BOT, m.text or "", m.created_at)
            for m in reversed(rows)]


async def history(*, session: AsyncSession, user_key: str, limit: int) -> list[tuple[str, Reply | str]]:
    """The person's own conversation, oldest first: ("in", text) and ("out", Reply)."""
    said = (await session.execute(
        select(ConversationMessage.id, ConversationMessage.text, ConversationMessage.created_at)
        .where(ConversationMessage.user_key == user_key, ConversationMessage.direction == "in",
               ConversationMessage.kind == "text", ConversationMessage.text.is_not(None))
        .order_by(ConversationMessage.id.desc()).limit(limit))).all()
    told = (await session.execute(
        select(OutboxItem.id, OutboxItem.payload, OutboxItem.created_at)
        .where(OutboxItem.user_key == user_key)
        .order_by(OutboxItem.id.desc()).limit(limit))).all()
    lines: list[tuple[dt.datetime, int, str, Reply | str]] = [
        (row.created_at, 0, "in", row.text or "") for row in said]
    lines += [(row.created_at, 1, "out", reply_from(row.payload)) for row in told]
    lines.sort(key=lambda line: (line[0], line[1]))
    return [(direction, item) for _, _, direction, item in lines[-limit:]]


async def erase_person(*, session: AsyncSession, user_key: str) -> None:
    """/delete: the person's tickets' words (handoff's rule), replies, messages and row."""
    await delete_user_data(session=session, user_key=user_key)
    await session.execute(delete(OutboxItem).where(OutboxItem.user_key == user_key))
    await session.execute(delete(ConversationMessage).where(ConversationMessage.user_key == user_key))
    await session.execute(delete(BotUser).where(BotUser.user_key == user_key))


async def purge_messages(*, session: AsyncSession, cutoff: dt.datetime) -> int:
    """Retention: conversation messages and sent replies older than ``cutoff``; the messages' count."""
    result: Any = await session.execute(delete(ConversationMessage).where(ConversationMessage.created_at < cutoff))
    await session.execute(delete(OutboxItem).where(OutboxItem.created_at < cutoff, OutboxItem.sent_at.is_not(None)))
    return int(result.rowcount or 0)


def _payload(reply: Reply) -> dict[str, Any]:
    data = asdict(reply)
    data["buttons"] = [[{"label": b.label, "payload": b.payload} for b in row] for row in reply.buttons]
    data["reviewed_on"] = reply.reviewed_on.isoformat() if reply.reviewed_on else None
    return data


def reply_from(payload: Mapping[str, Any]) -> Reply:
    data = dict(payload)
    rows = tuple(tuple(Button(b["label"], b["payload"]) for b in row) for row in data.pop("buttons", []))
    reviewed = data.pop("reviewed_on", None)
    data["sources"] = tuple(tuple(pair) for pair in data.pop("sources", None) or ())
    kind: ReplyKind = data.pop("kind")
    return Reply(kind=kind, buttons=rows, reviewed_on=dt.date.fromisoformat(reviewed) if reviewed else None,
                 **data)
