"""Tables owned by the bot: people who consented, their messages, and the outbox of replies.

Why an outbox: a reply is stored in the same transaction as the message it answers, before it is
sent. A crash between storing and sending loses nothing (the redelivered update or the delivery
loop sends it), and a redelivered update never produces a second answer.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, UTCDateTime

__all__ = ["BotUser", "ConversationMessage", "OutboxItem", "schema_metadata"]



class BotUser(Base):
    """One person on one channel, known only by a pseudonymous key; exists only after consent."""

    __tablename__ = "bot_users"

    user_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    #: where the channel delivers (Telegram chat id); needed to send counsellor replies, erased by /delete
    address: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lang: Mapped[str] = mapped_column(String(8))
    current_lang: Mapped[str | None] = mapped_column(String(8), nullable=True)
    origin: Mapped[str | None] = mapped_column(String(2), nullable=True)
    destination: Mapped[str | None] = mapped_column(String(2), nullable=True)
    stage: Mapped[str | None] = mapped_column(String(16), nullable=True)
    mrc_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: None for a person in danger who wrote before agreeing: their crisis is handled at once (a vital
    #: interest, as the privacy notice says); everything else waits for consent
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: the ticket we already told the user a counsellor has (say it once, not on every message)
    notified_ticket_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_answer_entry: Mapped[str | None] = mapped_column(String(120), nullable=True)
    last_question: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the dialogue state between messages (bot.engine._state.ConversationState)
    state: Mapped[dict[str, object] | None] = mapped_column(JSON, nullable=True)


class ConversationMessage(Base):
    """What the user wrote and what the bot answered, for transcripts and retention."""

    __tablename__ = "bot_messages"
    __table_args__ = (
        UniqueConstraint("channel", "channel_message_id", "direction", name="uq_bot_messages_channel_msg"),
        Index("ix_bot_messages_user_created", "user_key", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_key: Mapped[str] = mapped_column(String(64), ForeignKey("bot_users.user_key", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    channel_message_id: Mapped[str] = mapped_column(String(128))
    direction: Mapped[str] = mapped_column(String(3))  # "in" | "out"
    kind: Mapped[str] = mapped_column(String(24))
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    lang: Mapped[str | None] = mapped_column(String(8), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OutboxItem(Base):
    """A reply waiting for (or done with) delivery on its channel."""

    __tablename__ = "bot_outbox"
    __table_args__ = (
        UniqueConstraint("channel", "in_reply_to", "seq", name="uq_bot_outbox_reply"),
        Index("ix_bot_outbox_pending", "channel", "sent_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_key: Mapped[str] = mapped_column(String(64), ForeignKey("bot_users.user_key", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    in_reply_to: Mapped[str] = mapped_column(String(128))
    seq: Mapped[int] = mapped_column(Integer)
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: a delivery loop (one replica's) holds the row until then; a dead replica's lease just expires
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


def schema_metadata() -> MetaData:
    """Every table of the product (the bot's and handoff's) on one metadata.

    ``storage`` imports no package above it, so whoever writes a migration hands this in
    (``hamroh db revision``); a package that gets tables adds its table module here.
    """
    import handoff.tables  # noqa: F401 - registers handoff's tables on the shared metadata

    # the live content's tables (bot.content) register themselves when ``bot.content.tables`` is
    # imported; bot.content imports this module, so it cannot be imported from here: the caller
    # (``hamroh db revision``, the migration test) imports it first

    return Base.metadata
