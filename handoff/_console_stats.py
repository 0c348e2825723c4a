"""Console routes for supervisors: statistics (page and CSV) and the audit log."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import Response

from handoff._audit import audit, list_audit
from handoff._console_kit import Ctx, Db, Me, mrcs_in_scope, render, require
from handoff._enums import AuditAction
from handoff._policy import Actor, can_view_audit, can_view_stats
from handoff._settings import ConsoleSettings
from handoff._stats import cluster_gaps, gap_questions, queue_stats, stats_csv

__all__ = ["router"]

router = APIRouter()


def _stats_scope(settings: ConsoleSettings, me: Actor, mrc: str) -> str | None:
    if me.mrc_id is not None:
        return me.mrc_id
    return mrc if settings.mrc(mrc) else None


def _days(value: str) -> int:
    return int(value) if value in {"7", "30", "90", "365"} else 30


@router.get("/stats", name="stats")
async def stats_page(request: Request, ctx: Ctx, db: Db, me: Me, days: str = "30", mrc: str = "") -> Response:
    require(can_view_stats(me))
    span, scope = _days(days), _stats_scope(ctx.settings, me, mrc)
    stats = await queue_stats(session=db, actor=me, days=span, mrc_id=scope)
    questions = await gap_questions(
        session=db,
        actor=me,
        days=min(span, ctx.settings.content_gap_days) if span else ctx.settings.content_gap_days,
        limit=ctx.settings.content_gap_max_questions,
        mrc_id=scope,
    )
    await audit(db, me, AuditAction.STATS_VIEW, mrc_id=scope, detail=f"{span} days")
    await db.commit()  # clustering below takes a while and needs no transaction
    embedder, threshold = ctx.embedder, ctx.settings.content_gap_threshold
    gaps = await anyio.to_thread.run_sync(lambda: cluster_gaps(questions, embedder, threshold))
    return render(request, "stats.html", stats=stats, gaps=gaps[:50], gap_total=len(questions), days=span,
                  scope=scope, mrcs=mrcs_in_scope(ctx, me), semantic=embedder is not None)


@router.get("/stats.csv", name="stats_csv")
async def stats_export(ctx: Ctx, db: Db, me: Me, days: str = "30", mrc: str = "") -> Response:
    require(can_view_stats(me))
    span, scope = _days(days), _stats_scope(ctx.settings, me, mrc)
    stats = await queue_stats(session=db, actor=me, days=span, mrc_id=scope)
    await audit(db, me, AuditAction.EXPORT, mrc_id=scope, detail=f"stats {span} days")
    return Response(stats_csv(stats), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="hamroh-stats-{span}d.csv"'})


@router.get("/audit", name="audit")
async def audit_page(request: Request, db: Db, me: Me, ticket: str = "") -> Response:
    require(can_view_audit(me))
    ticket_id = int(ticket) if ticket.isdigit() else None
    entries = await list_audit(session=db, mrc_ids=None if me.mrc_id is None else [me.mrc_id], ticket_id=ticket_id)
    return render(request, "audit.html", entries=entries, ticket_filter=ticket if ticket_id else "")
