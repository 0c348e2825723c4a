"""Supervisor statistics: volume, response times and content gaps.

Computed on demand from the tickets of a period; MRC volumes are small enough that this stays
fast, and nothing has to be kept in sync.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from handoff._clustering import cluster_embeddings
from handoff._enums import Reason, Status
from handoff._errors import NotAllowed
from handoff._policy import Actor, can_edit_content, can_view_stats
from handoff._ports import QueryEmbedder
from handoff.tables import Ticket
from storage import utcnow

__all__ = [
    "ContentGap",
    "Durations",
    "GapQuestion",
    "QueueStats",
    "cluster_gaps",
    "gap_questions",
    "queue_stats",
    "stats_csv",
]


@dataclass(frozen=True, slots=True)
class Durations:
    count: int
    median: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Durations:
        if not seconds:
            return cls(0, None, None)
        values = np.asarray(seconds, dtype=np.float64)
        return cls(
            len(values),
            timedelta(seconds=float(np.percentile(values, 50))),
            timedelta(seconds=float(np.percentile(values, 90))),
        )


@dataclass(slots=True)
class QueueStats:
    days: int
    mrc_id: str | None
    total: int = 0
    by_reason: list[tuple[str, int]] = field(default_factory=list)
    by_lang: list[tuple[str, int]] = field(default_factory=list)
    by_topic: list[tuple[str, int]] = field(default_factory=list)
    by_status: list[tuple[str, int]] = field(default_factory=list)
    first_reply: Durations = Durations(0, None, None)
    resolve: Durations = Durations(0, None, None)
    open_now: int = 0
    crisis_open_now: int = 0
    overdue_now: int = 0


@dataclass(frozen=True, slots=True)
class GapQuestion:
    text: str
    lang: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ContentGap:
    size: int
    examples: list[str]
    langs: list[str]
    latest: datetime


def _scope(actor: Actor, mrc_id: str | None) -> str | None:
    if not can_view_stats(actor):
        raise NotAllowed("statistics are for supervisors")
    return actor.mrc_id if actor.mrc_id is not None else mrc_id


async def queue_stats(
    *, session: AsyncSession, actor: Actor, days: int = 30, mrc_id: str | None = None, now: datetime | None = None
) -> QueueStats:
    now = now or utcnow()
    scope = _scope(actor, mrc_id)
    since = now - timedelta(days=days)
    stats = QueueStats(days=days, mrc_id=scope)
    where: list[ColumnElement[bool]] = [Ticket.created_at >= since]
    if scope is not None:
        where.append(Ticket.mrc_id == scope)

    async def grouped(column: object) -> list[tuple[str, int]]:
        rows = await session.execute(
            select(column, func.count()).where(*where).group_by(column).order_by(func.count().desc())  # type: ignore[call-overload]
        )
        return [(str(key) if key is not None else "unknown", int(n)) for key, n in rows.all()]

    by_reason = await grouped(Ticket.reason)
    stats.by_reason = [(Reason(k).label if k in Reason._value2member_map_ else k, n) for k, n in by_reason]
    stats.by_lang = await grouped(Ticket.lang)
    stats.by_topic = await grouped(Ticket.topic)
    stats.by_status = await grouped(Ticket.status)
    stats.total = sum(n for _, n in stats.by_status)

    rows = (
        await session.execute(select(Ticket.created_at, Ticket.first_reply_at, Ticket.resolved_at).where(*where))
    ).all()
    stats.first_reply = Durations.of(
        [(first - created).total_seconds() for created, first, _ in rows if first is not None]
    )
    stats.resolve = Durations.of(
        [(resolved - created).total_seconds() for created, _, resolved in rows if resolved is not None]
    )

    active: list[ColumnElement[bool]] = [Ticket.status.in_(Status.active())]
    if scope is not None:
        active.append(Ticket.mrc_id == scope)
    stats.open_now = int(await session.scalar(select(func.count()).where(*active)) or 0)
    stats.crisis_open_now = int(await session.scalar(select(func.count()).where(*active, Ticket.priority == 0)) or 0)
    stats.overdue_now = int(
        await session.scalar(select(func.count()).where(*active, Ticket.first_reply_at.is_(None), Ticket.due_at < now))
        or 0
    )
    return stats


async def gap_questions(
    *,
    session: AsyncSession,
    actor: Actor,
    days: int,
    limit: int,
    mrc_id: str | None = None,
    now: datetime | None = None,
) -> list[GapQuestion]:
    """Questions that ended in "no verified answer", newest first."""
    now = now or utcnow()
    # content editors see the gaps too: they write the entries that close them
    scope = _scope(actor, mrc_id) if not can_edit_content(actor) else (actor.mrc_id or mrc_id)
    query = (
        select(Ticket.question_text, Ticket.lang, Ticket.created_at)
        .where(
            Ticket.reason == Reason.NO_ANSWER,
            Ticket.question_text.is_not(None),
            Ticket.created_at >= now - timedelta(days=days),
        )
        .order_by(Ticket.created_at.desc())
        .limit(limit)
    )
    if scope is not None:
        query = query.where(Ticket.mrc_id == scope)
    return [GapQuestion(text or "", lang, at) for text, lang, at in (await session.execute(query)).all() if text]


def cluster_gaps(
    questions: Sequence[GapQuestion], embedder: QueryEmbedder | None, threshold: float, examples: int = 4
) -> list[ContentGap]:
    """Group gap questions by meaning (or by identical wording when no embedder is wired).

    Runs the model; call it outside a database transaction.
    """
    if not questions:
        return []
    if embedder is None:
        by_text: dict[str, list[int]] = {}
        for index, question in enumerate(questions):
            by_text.setdefault(" ".join(question.text.lower().split()), []).append(index)
        groups = sorted(by_text.values(), key=lambda g: (-len(g), g[0]))
    else:
        vectors = embedder.embed_queries([q.text for q in questions])
        groups = cluster_embeddings(vectors, threshold)
    gaps = []
    for group in groups:
        members = [questions[i] for i in group]
        seen: list[str] = []
        for member in members:
            if member.text not in seen:
                seen.append(member.text)
        langs = [lang for lang, _ in Counter(m.lang for m in members).most_common()]
        gaps.append(
            ContentGap(
                size=len(members),
                examples=seen[:examples],
                langs=langs,
                latest=max(m.created_at for m in members),
            )
        )
    return gaps


def stats_csv(stats: QueueStats) -> str:
    """The statistics as ``dimension,value,tickets`` rows, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["dimension", "value", "tickets"])
    for dimension, rows in (
        ("reason", stats.by_reason),
        ("language", stats.by_lang),
        ("topic", stats.by_topic),
        ("status", stats.by_status),
    ):
        for value, count in rows:
            writer.writerow([dimension, value, count])
    for name, durations in (("first_reply", stats.first_reply), ("resolve", stats.resolve)):
        for label, span in (("median_minutes", durations.median), ("p90_minutes", durations.p90)):
            writer.writerow([name, label, "" if span is None else round(span.total_seconds() / 60, 1)])
    return out.getvalue()
