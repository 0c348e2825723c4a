"""The tables handoff owns. Imported by the Alembic environment in ``storage/migrations``.

Times are aware UTC (:class:`storage.UTCDateTime`). Enumerations are stored as short strings and
checked by the database. The audit table has no foreign keys on purpose: it must outlive the
rows it mentions (a user's tickets are erased on request; the record that a counsellor looked
at ticket 42 is not, and it holds no personal data).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from storage import Base, UTCDateTime, utcnow

__all__ = [
    "AuditEntry",
    "ConsoleSession",
    "Counsellor",
    "LoginThrottle",
    "Ticket",
    "TicketMessage",
    "TicketNote",
    "TicketTransfer",
]

_ACTIVE = "status IN ('open', 'claimed')"


class Counsellor(Base):
    """A console account. Never deleted, only disabled, so the audit trail keeps its meaning."""

    __tablename__ = "handoff_counsellor"
    __table_args__ = (
        CheckConstraint("role IN ('counsellor', 'supervisor', 'admin', 'editor', 'reviewer')", name="role"),
        CheckConstraint("role <> 'counsellor' OR mrc_id IS NOT NULL", name="counsellor_has_mrc"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))
    # None only for supervisors and admins who work across all MRCs.
    mrc_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class ConsoleSession(Base):
    """A signed-in browser. Only a hash of the cookie token is stored."""

    __tablename__ = "handoff_console_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    counsellor_id: Mapped[int] = mapped_column(ForeignKey("handoff_counsellor.id", ondelete="CASCADE"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    counsellor: Mapped[Counsellor] = relationship(lazy="joined")


class LoginThrottle(Base):
    """Failed sign-ins per (username, client address) pair.

    Keyed on the pair, not the account, so someone guessing a colleague's password from their own
    machine slows only themselves down; the colleague can still sign in.
    """

    __tablename__ = "handoff_login_throttle"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    blocked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Ticket(Base):
    """A conversation handed from the bot to the counsellors of one MRC."""

    __tablename__ = "handoff_ticket"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'claimed', 'resolved', 'transferred')", name="status"),
        CheckConstraint("priority IN (0, 1, 2)", name="priority"),
        CheckConstraint(
            "reason IN ('user_asked', 'no_answer', 'negative_feedback', 'crisis', 'unreadable_attachment')",
            name="reason",
        ),
        CheckConstraint("status <> 'claimed' OR claimed_by_id IS NOT NULL", name="claimed_has_owner"),
        # The queue: one MRC's open tickets, crisis first, oldest first.
        Index("ix_handoff_ticket_queue", "mrc_id", "status", "priority", "created_at"),
        # At most one active ticket per user, so a second request cannot open a duplicate.
        Index(
            "uq_handoff_ticket_active_user",
            "user_key",
            unique=True,
            sqlite_where=text(_ACTIVE),
            postgresql_where=text(_ACTIVE),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_key: Mapped[str] = mapped_column(String(128), index=True)
    mrc_id: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(32))
    priority: Mapped[int] = mapped_column(SmallInteger)
    crisis_kind: Mapped[str | None] = mapped_column(String(64))
    lang: Mapped[str] = mapped_column(String(16))
    profile: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    question_text: Mapped[str | None] = mapped_column(Text)
    topic: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_counsellor.id"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Last counsellor action on a claimed ticket; an idle claim is released back to the queue.
    claim_activity_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_user_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_counsellor.id"))
    transferred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    transferred_from_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_ticket.id", ondelete="SET NULL"))
    crisis_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    claimed_by: Mapped[Counsellor | None] = relationship(foreign_keys=[claimed_by_id], lazy="joined")

    @property
    def is_active(self) -> bool:
        return self.status in ("open", "claimed")

    @property
    def is_crisis(self) -> bool:
        return self.priority == 0


class TicketMessage(Base):
    """One line of the transcript: from the user, the bot, a counsellor, or the system."""

    __tablename__ = "handoff_ticket_message"
    __table_args__ = (
        # A counsellor's reply carries a key from the form that produced it: a double submit on a
        # slow connection finds the first row instead of sending the reply twice.
        UniqueConstraint("ticket_id", "client_key", name="uq_handoff_ticket_message_client_key"),
        CheckConstraint("author IN ('user', 'bot', 'counsellor', 'system')", name="author"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(16))
    counsellor_id: Mapped[int | None] = mapped_column(ForeignKey("handoff_counsellor.id"))
    text: Mapped[str] = mapped_column(Text)
    attachment_kind: Mapped[str | None] = mapped_column(String(32))
    #: the channel's handle of the file (Telegram's file_id), never the file itself: the console
    #: fetches it through the Bot API when a counsellor opens it, and it goes with the line
    attachment_file_id: Mapped[str | None] = mapped_column(String(255))
    attachment_mime: Mapped[str | None] = mapped_column(String(100))
    attachment_seconds: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    client_key: Mapped[str | None] = mapped_column(String(64))
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(String(200))
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    curated_entry_id: Mapped[str | None] = mapped_column(String(128))

    counsellor: Mapped[Counsellor | None] = relationship(lazy="joined")


class TicketNote(Base):
    """A private note between counsellors; never sent to the user."""

    __tablename__ = "handoff_ticket_note"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True)
    counsellor_id: Mapped[int] = mapped_column(ForeignKey("handoff_counsellor.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    counsellor: Mapped[Counsellor] = relationship(lazy="joined")


class TicketTransfer(Base):
    """A referral of a conversation from one MRC to another, with the referring note."""

    __tablename__ = "handoff_ticket_transfer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True)
    to_ticket_id: Mapped[int] = mapped_column(ForeignKey("handoff_ticket.id", ondelete="CASCADE"), index=True)
    from_mrc_id: Mapped[str] = mapped_column(String(64))
    to_mrc_id: Mapped[str] = mapped_column(String(64))
    counsellor_id: Mapped[int] = mapped_column(ForeignKey("handoff_counsellor.id"))
    note: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    counsellor: Mapped[Counsellor] = relationship(lazy="joined")


class AuditEntry(Base):
    """Who did what, when. Append-only: database triggers refuse UPDATE and DELETE."""

    __tablename__ = "handoff_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_username: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    mrc_id: Mapped[str | None] = mapped_column(String(64))
    ticket_id: Mapped[int | None] = mapped_column(Integer, index=True)
    detail: Mapped[str] = mapped_column(String(300), default="")
