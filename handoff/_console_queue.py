"""Console routes: the queue, its live counts and event stream, and taking the next ticket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from handoff._console_kit import ConsoleContext, Ctx, Db, Me, clip, mrcs_in_scope, redirect, render, require
from handoff._enums import Priority, Reason
from handoff._live import LiveVersion, alert_counts, live_version
from handoff._policy import Actor, can_edit_content, can_manage_accounts, can_work_queue, in_scope
from handoff._tickets import QueueFilter, claim_next, list_queue

__all__ = ["router"]

#: one event stream lives this long (then the browser reconnects): bounds a forgotten tab
EVENT_STREAM_SECONDS = 600

router = APIRouter()


def _queue_filter(request: Request, me: Actor) -> QueueFilter:
    params = request.query_params

    def pick(name: str, allowed: set[str]) -> str | None:
        value = params.get(name, "")
        return value if value in allowed else None

    priority = pick("priority", {p.label for p in Priority})
    reason = pick("reason", {r.value for r in Reason})
    age = pick("age", {"15", "60", "240", "1440"})
    lang = params.get("lang", "").strip()[:16] or None
    return QueueFilter(
        lang=lang,
        priority=Priority[priority.upper()] if priority else None,
        reason=Reason(reason) if reason else None,
        min_age_minutes=int(age) if age else None,
        view=pick("view", {"active", "open", "claimed", "mine", "closed"}) or "active",
        mrc_id=params.get("mrc") if me.mrc_id is None else None,
    )


def _visible_langs(ctx: ConsoleContext, me: Actor) -> list[str]:
    langs: set[str] = set()
    for mrc in ctx.settings.mrcs:
        if in_scope(me, mrc.id):
            langs.update(mrc.languages)
    return sorted(langs)


@router.get("/", name="queue")
async def queue_page(request: Request, ctx: Ctx, db: Db, me: Me) -> Response:
    if not can_work_queue(me):
        home = "accounts" if can_manage_accounts(me) else "content" if can_edit_content(me) else "audit"
        return redirect(request, home)
    filters = _queue_filter(request, me)
    tickets = await list_queue(session=db, actor=me, filters=filters)
    return render(request, "queue.html", tickets=tickets, filters=filters, langs=_visible_langs(ctx, me),
                  mrcs=mrcs_in_scope(ctx, me), query=request.url.query)


@router.get("/queue/rows", name="queue_rows")
async def queue_rows(request: Request, db: Db, me: Me) -> Response:
    require(can_work_queue(me))
    tickets = await list_queue(session=db, actor=me, filters=_queue_filter(request, me))
    return render(request, "_rows.html", tickets=tickets)


@router.get("/alerts", name="alerts")
async def alerts(db: Db, me: Me) -> Response:
    require(can_work_queue(me))
    counts = await alert_counts(session=db, actor=me)
    return JSONResponse({"open": counts.open, "crisis": counts.crisis, "newest_crisis": counts.newest_crisis,
                         "mine": counts.mine})


@router.get("/events", name="events")
async def events(request: Request, ctx: Ctx, me: Me, ticket: str = "", seconds: str = "") -> Response:
    """Server-sent events: the queue, a crisis and a ticket's transcript change, pushed.

    Why a stream and not the page's poll: a crisis must reach a counsellor within seconds, not
    at the next 15-second poll, and a person's "my phone is about to die" must appear on the open
    ticket without a reload. The server checks one small version row a second per open console
    (cheap next to a page poll), and the browser refetches only what changed.
    """
    require(can_work_queue(me))
    ticket_id = int(ticket) if ticket.isdigit() else None
    lasting = min(int(seconds), EVENT_STREAM_SECONDS) if seconds.isdigit() else EVENT_STREAM_SECONDS

    async def version() -> LiveVersion:
        # a short session per look: the stream outlives the request's own session
        async with ctx.sessions() as session:
            return await live_version(session=session, actor=me, ticket_id=ticket_id)

    async def stream() -> AsyncIterator[str]:
        seen: LiveVersion | None = None
        yield "retry: 3000\n\n"
        for _ in range(lasting):
            if await request.is_disconnected():
                return
            now = await version()
            if seen is None or now != seen:
                data = json.dumps({"open": now.active, "crisis": now.crisis, "newest_crisis": now.newest_crisis,
                                   "ticket_message": now.ticket_message, "first": seen is None,
                                   "new_crisis": seen is not None and now.newest_crisis > seen.newest_crisis})
                yield f"event: change\ndata: {data}\n\n"
                seen = now
            else:
                yield ": keep-alive\n\n"
            await asyncio.sleep(1.0)

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


@router.post("/claim-next", name="claim_next")
async def claim_next_ticket(
    request: Request,
    db: Db,
    me: Me,
    lang: Annotated[str, Form()] = "",
    mrc: Annotated[str, Form()] = "",
) -> Response:
    require(can_work_queue(me))
    ticket = await claim_next(session=db, actor=me, lang=clip(lang, 16) or None, mrc_id=clip(mrc, 64) or None)
    if ticket is None:
        return redirect(request, "queue", notice="empty")
    return redirect(request, "ticket", {"ticket_id": ticket.id}, notice="claimed")
