"""The live knowledge base's tables. Imported by the Alembic environment in ``storage/migrations``.

Why in the database: MRC staff change answers in the console, with four-eyes review, and every
worker and replica must serve the change within seconds without a rebuild or a restart. The YAML
under ``knowledge_base/content`` stays the shipped baseline and the exchange format
(``hamroh kb import`` / ``kb export``).

* ``kb_entry`` — one row per entry: which published revision serves, whether it is withdrawn
  (``review_by`` passed), the optimistic ``version`` every save must name, and the YAML layout the
  export writes it back in.
* ``kb_revision`` — every published state of an entry, whole, with the vectors of its texts (so one
  process embeds a change and every other process only loads it).
* ``kb_draft`` — a proposed change (the whole entry, or one translation) waiting for a reviewer.
* ``kb_translation`` — each language's review state: who checked it, when, against which English
  revision, and whether an English change left it needing re-review.
* ``kb_content_version`` — one row; bumped by every publication. Workers poll it (cheap) and swap
  their index when it moves.

They live in ``bot`` because ``knowledge_base`` imports no other package (the import contracts):
the entry format and the index are ``knowledge_base``'s, their storage and workflow ``bot``'s. No
foreign keys to account tables: authors and reviewers are named by username, as the audit log
names them.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage import Base, UTCDateTime, utcnow

__all__ = ["KbContentVersion", "KbDraft", "KbEntry", "KbRevision", "KbTranslation"]


class KbEntry(Base):
    __tablename__ = "kb_entry"

    id: Mapped[str] = mapped_column(String(120), primary_key=True)
    #: every saved draft and every publication bumps it; a save naming an older one is refused
    version: Mapped[int] = mapped_column(Integer, default=1)
    current_revision: Mapped[int] = mapped_column(Integer, default=0)
    #: None while served; the date it was withdrawn (review_by passed) otherwise
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    withdrawn_reason: Mapped[str | None] = mapped_column(String(200))
    #: the YAML text the entry was last imported from: the export keeps its layout
    layout: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbRevision(Base):
    __tablename__ = "kb_revision"
    __table_args__ = (UniqueConstraint("entry_id", "number", name="uq_kb_revision_entry_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("kb_entry.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    #: the whole entry as the validator accepted it (JSON mode: dates as ISO strings)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: languages that serve nothing until re-reviewed (an English change marked as a change of facts)
    suspended: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: npz of the embedding-cache keys and vectors of this revision's texts
    vectors: Mapped[bytes] = mapped_column(LargeBinary)
    model_id: Mapped[str] = mapped_column(String(200))
    #: how many texts this publication embedded (the rest came from the revision before)
    embedded: Mapped[int] = mapped_column(Integer, default=0)
    published_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_by: Mapped[str] = mapped_column(String(64))
    #: import, approval of draft N, rollback to revision N, review extended
    note: Mapped[str] = mapped_column(String(200), default="")


class KbDraft(Base):
    __tablename__ = "kb_draft"
    __table_args__ = (Index("ix_kb_draft_status", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(120), index=True)
    #: "entry" (metadata, sources, English, anything) or one language code
    scope: Mapped[str] = mapped_column(String(16))
    #: the entry's version the author started from (a stale draft cannot be approved)
    base_version: Mapped[int] = mapped_column(Integer)
    base_revision: Mapped[int] = mapped_column(Integer)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    facts_changed: Mapped[bool] = mapped_column(default=False)
    author: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending, approved, rejected
    reviewer: Mapped[str | None] = mapped_column(String(64))
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class KbTranslation(Base):
    __tablename__ = "kb_translation"

    entry_id: Mapped[str] = mapped_column(ForeignKey("kb_entry.id", ondelete="CASCADE"), primary_key=True)
    lang: Mapped[str] = mapped_column(String(8), primary_key=True)
    #: reviewed, needs_review (English changed since), suspended (facts changed: falls back)
    state: Mapped[str] = mapped_column(String(16), default="reviewed")
    reviewed_by: Mapped[str | None] = mapped_column(String(64))
    reviewed_on: Mapped[date | None] = mapped_column(Date)
    #: the English revision (``english_revision``) the text was checked against
    checked_against: Mapped[str | None] = mapped_column(String(8))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class KbContentVersion(Base):
    __tablename__ = "kb_content_version"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
