"""A voice note, photo or file on a ticket, fetched from the channel when a counsellor opens it.

Why fetched and not stored: the person sent it to the bot, not to a file server. Hamroh keeps only
the channel's handle with the ticket line (Telegram's ``file_id``); when a counsellor presses play
or opens the photo, the console asks the channel for the file (``getFile``) and streams it through
to the browser, never to disk. The browser never sees the bot token or the handle, only this
route, which checks the session and the ticket like the ticket page and writes an audit entry for
every fetch. After the retention period (``ConsoleSettings.media_days``) the file is refused even
if the line still exists: the privacy notice promises no longer.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff._audit import audit
from handoff._auth import SignedIn, load_session
from handoff._enums import AuditAction
from handoff._ports import MediaSource, MediaUnavailable, NoMediaSource
from handoff._settings import ConsoleSettings
from handoff._tickets import get_ticket
from handoff._web import SESSION_COOKIE
from handoff.tables import TicketMessage
from storage import utcnow

__all__ = ["MEDIA_TYPES", "media_router"]

#: what a browser is told a file is when the channel did not say (Telegram's voice notes are
#: Opus in Ogg, its photos JPEG); anything else is offered as a download
MEDIA_TYPES = {"voice": "audio/ogg", "photo": "image/jpeg", "video": "video/mp4"}
_INLINE = ("audio/", "image/", "video/")


def _content_type(message: TicketMessage) -> str:
    mime = (message.attachment_mime or "").strip().lower()
    if mime and "/" in mime and all(ch.isalnum() or ch in "/.+-" for ch in mime):
        return mime
    return MEDIA_TYPES.get(message.attachment_kind or "", "application/octet-stream")


def _disposition(message: TicketMessage, content_type: str) -> str:
    """Audio, images and video play in the page; anything else (a PDF, a document that could
    carry script) is only ever downloaded, under a name that says where it came from."""
    name = f"ticket-{message.ticket_id}-{message.id}"
    if content_type.startswith(_INLINE) and message.attachment_kind in MEDIA_TYPES:
        return f'inline; filename="{name}"'
    return f'attachment; filename="{name}"'


def media_router(media: MediaSource | None = None) -> APIRouter:
    """The console's media route, included by ``create_console_app``; GET only, so no CSRF token."""
    source: MediaSource = media if media is not None else NoMediaSource()
    router = APIRouter()

    @router.get("/tickets/{ticket_id}/media/{message_id}", name="ticket_media")
    async def ticket_media(request: Request, ticket_id: int, message_id: int) -> Response:
        console: Any = request.app.state.console  # handoff._console.ConsoleContext
        settings: ConsoleSettings = console.settings
        sessions: async_sessionmaker[AsyncSession] = console.sessions
        async with sessions() as db, db.begin():
            who: SignedIn | None = await load_session(session=db, settings=settings,
                                                      token=request.cookies.get(SESSION_COOKIE))
        if who is None:
            # an <audio> element cannot follow a redirect to the sign-in page: say it plainly
            return PlainTextResponse("Sign in to the console again.", status_code=401)
        async with sessions() as db, db.begin():
            # the same check as the ticket page: another MRC's ticket is "not found" (and audited)
            ticket = await get_ticket(session=db, ticket_id=ticket_id, actor=who.actor)
            message = await db.get(TicketMessage, message_id)
            if message is None or message.ticket_id != ticket.id or not message.attachment_file_id:
                return PlainTextResponse("This line has no file.", status_code=404)
            if message.created_at < utcnow() - timedelta(days=settings.media_days):
                return PlainTextResponse(
                    f"This file is older than the retention period ({settings.media_days} days) "
                    "and is no longer shown.", status_code=410)
            file_id, content_type = message.attachment_file_id, _content_type(message)
            disposition = _disposition(message, content_type)
            await audit(db, who.actor, AuditAction.VIEW_MEDIA, ticket_id=ticket.id, mrc_id=ticket.mrc_id,
                        detail=f"{message.attachment_kind or 'file'} on line {message.id}")
        try:
            fetched = await source.fetch(file_id)
        except MediaUnavailable as exc:
            return PlainTextResponse(f"The file could not be fetched: {exc}", status_code=502)
        headers = {"Content-Disposition": disposition, "Cache-Control": "no-store"}
        if fetched.size is not None:
            headers["Content-Length"] = str(fetched.size)
        return StreamingResponse(fetched.chunks, media_type=content_type, headers=headers)

    return router
