"""Console routes: one ticket — read, claim, release, reply (and retry), note, resolve, transfer.

A reply is recorded and committed first, then sent outside any transaction
(:func:`handoff.send_outside_transaction`), so a slow channel never holds a database lock and a
failed send stays on the ticket to retry.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Form, Request
from fastapi.responses import PlainTextResponse, Response

from handoff._accounts import counsellor_names
from handoff._console_kit import ConsoleContext, Ctx, Db, Me, clip, redirect, render
from handoff._ports import CuratedAnswer
from handoff._tickets import (
    MAX_REPLY_CHARS,
    add_note,
    claim,
    export_transcript,
    get_ticket,
    record_reply,
    release,
    resolve,
    retryable_reply,
    send_outside_transaction,
    tell_user,
    transfer,
    view_ticket,
)
from storage import clean_text

__all__ = ["router"]

router = APIRouter()

Text = Annotated[str, Form()]


async def _search_answers(ctx: ConsoleContext, query: str, lang: str) -> list[CuratedAnswer]:
    if not query.strip() or ctx.answers is None:
        return []
    search = ctx.answers.search
    return await anyio.to_thread.run_sync(lambda: search(query.strip()[:300], lang, 5))


def _back(request: Request, ticket_id: int, notice: str) -> Response:
    return redirect(request, "ticket", {"ticket_id": ticket_id}, notice=notice)


@router.get("/tickets/{ticket_id}", name="ticket")
async def ticket_page(request: Request, ctx: Ctx, db: Db, ticket_id: int, me: Me, q: str = "",
                      insert: str = "") -> Response:
    detail = await view_ticket(session=db, ticket_id=ticket_id, actor=me)
    names = await counsellor_names(session=db)
    await db.commit()  # the view is audited; searching the answers below needs no transaction
    ticket = detail.ticket
    query = clean_text(q)
    found = await _search_answers(ctx, query, ticket.lang)
    prefill = next((a for a in found if a.entry_id == insert), None)
    mrc = ctx.settings.mrc(ticket.mrc_id)
    return render(
        request,
        "ticket.html",
        detail=detail,
        ticket=ticket,
        mrc=mrc,
        zone=mrc.timezone if mrc else "UTC",
        names=names,
        answers=found,
        query=query,
        prefill=prefill,
        client_key=uuid.uuid4().hex,
        other_mrcs=[m for m in ctx.settings.mrcs if m.id != ticket.mrc_id],
        mrc_names={m.id: m.name for m in ctx.settings.mrcs},
    )


@router.get("/tickets/{ticket_id}/answers", name="ticket_answers")
async def answers_fragment(request: Request, ctx: Ctx, db: Db, ticket_id: int, me: Me, q: str = "") -> Response:
    ticket = await get_ticket(session=db, ticket_id=ticket_id, actor=me)
    await db.commit()
    query = clean_text(q)
    found = await _search_answers(ctx, query, ticket.lang)
    return render(request, "_answers.html", ticket=ticket, answers=found, query=query)


@router.get("/tickets/{ticket_id}/export", name="ticket_export")
async def export(db: Db, ticket_id: int, me: Me) -> Response:
    text = await export_transcript(session=db, ticket_id=ticket_id, actor=me)
    return PlainTextResponse(text, headers={"Content-Disposition": f'attachment; filename="ticket-{ticket_id}.txt"'})


@router.post("/tickets/{ticket_id}/claim", name="ticket_claim")
async def claim_ticket(request: Request, db: Db, ticket_id: int, me: Me) -> Response:
    await claim(session=db, ticket_id=ticket_id, actor=me)
    return _back(request, ticket_id, "claimed")


@router.post("/tickets/{ticket_id}/release", name="ticket_release")
async def release_ticket(request: Request, db: Db, ticket_id: int, me: Me) -> Response:
    await release(session=db, ticket_id=ticket_id, actor=me)
    return _back(request, ticket_id, "released")


@router.post("/tickets/{ticket_id}/reply", name="ticket_reply")
async def reply_ticket(request: Request, ctx: Ctx, db: Db, ticket_id: int, me: Me, text: Text = "",
                       client_key: Text = "", curated_entry_id: Text = "") -> Response:
    message, created = await record_reply(
        session=db,
        ticket_id=ticket_id,
        actor=me,
        text=clip(text, MAX_REPLY_CHARS * 2),
        client_key=clip(client_key, 64) or None,
        curated_entry_id=clip(curated_entry_id, 128) or None,
    )
    await db.commit()
    if not created:
        return _back(request, ticket_id, "duplicate")
    ok = await send_outside_transaction(ctx.sessions, message_id=message.id, outbound=ctx.outbound)
    return _back(request, ticket_id, "replied" if ok else "delivery_failed")


@router.post("/tickets/{ticket_id}/messages/{message_id}/retry", name="ticket_retry")
async def retry_delivery(request: Request, ctx: Ctx, db: Db, ticket_id: int, message_id: int, me: Me) -> Response:
    await retryable_reply(session=db, ticket_id=ticket_id, message_id=message_id, actor=me)
    await db.commit()
    ok = await send_outside_transaction(ctx.sessions, message_id=message_id, outbound=ctx.outbound, retry=True)
    return _back(request, ticket_id, "replied" if ok else "delivery_failed")


@router.post("/tickets/{ticket_id}/notes", name="ticket_notes")
async def note_ticket(request: Request, db: Db, ticket_id: int, me: Me, text: Text = "") -> Response:
    await add_note(session=db, ticket_id=ticket_id, actor=me, text=clip(text))
    return _back(request, ticket_id, "noted")


@router.post("/tickets/{ticket_id}/resolve", name="ticket_resolve")
async def resolve_ticket(request: Request, ctx: Ctx, db: Db, ticket_id: int, me: Me, topic: Text = "") -> Response:
    done = await resolve(session=db, ticket_id=ticket_id, actor=me, topic=clip(topic, 64).strip() or None)
    await db.commit()  # the user is told only what is recorded
    await tell_user(ctx.outbound, ticket=done, kind="resolved")
    return _back(request, ticket_id, "resolved")


@router.post("/tickets/{ticket_id}/transfer", name="ticket_transfer")
async def transfer_ticket(request: Request, ctx: Ctx, db: Db, ticket_id: int, me: Me, to_mrc: Text = "",
                          note: Text = "") -> Response:
    moved = await transfer(session=db, settings=ctx.settings, ticket_id=ticket_id, actor=me,
                           to_mrc_id=clip(to_mrc, 64), note=clip(note))
    await db.commit()  # the user is told only what is recorded
    target = ctx.settings.mrc(moved.mrc_id)
    await tell_user(ctx.outbound, ticket=moved, kind="transferred", text=target.name if target else moved.mrc_id)
    return _back(request, ticket_id, "transferred")
