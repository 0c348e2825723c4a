"""The counsellor console: a small server-rendered FastAPI application mounted by ``bot``.

Every route resolves the signed-in account on the server and asks :mod:`handoff._policy`
(through the service functions) before reading or changing anything. Every POST carries a CSRF
token. Pages work without JavaScript; a few KB of plain JS add live queue refresh, crisis
alerts and one-click insertion of curated answers.

The routes live in one module per area (``_console_auth``, ``_console_queue``,
``_console_tickets``, ``_console_stats``, ``_console_accounts``) and share the dependencies of
``_console_kit``; this module builds the app: state, error pages, routers, and the background
sweeps its lifespan runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import _console_accounts, _console_auth, _console_queue, _console_stats, _console_tickets
from handoff._alerts import notify_pending_crises
from handoff._audit import audit_denied
from handoff._console_kit import (
    ConsoleContext,
    CsrfRejected,
    NotSignedIn,
    console_context,
    cookie_path,
    csrf_guard,
    redirect,
    render,
)
from handoff._enums import DeliveryStatus, Priority, Reason, Role, Status
from handoff._errors import AlreadyClaimed, InvalidState, NotAllowed, TicketNotFound
from handoff._media import media_router
from handoff._policy import (
    can_manage_accounts,
    can_take_over,
    can_transfer,
    can_view_audit,
    can_view_stats,
    can_work_queue,
    can_write,
)
from handoff._ports import AnswerSearch, MediaSource, Notifier, NullNotifier, OutboundPort, QueryEmbedder
from handoff._settings import ConsoleSettings
from handoff._tickets import MAX_REPLY_CHARS, release_idle_claims
from handoff._web import SESSION_COOKIE, SecurityHeaders, build_templates, static_app, static_versions
from storage import RateLimiter, utcnow

__all__ = ["create_console_app", "sweep_once"]

log = logging.getLogger(__name__)

#: how often idle claims go back to the queue and unannounced crises are announced again
SWEEP_SECONDS = 30.0
#: fragments and JSON answer errors in plain text (the page's script shows them), never a page
_FRAGMENTS = ("/alerts", "/rows", "/answers", "/events")


async def sweep_once(ctx: ConsoleContext) -> None:
    """Idle claims go back to the queue; crisis tickets nobody was told about are announced.

    The second is the safety net behind bot's own call after opening a crisis ticket (each is
    announced at most once).
    """
    async with ctx.sessions() as db, db.begin():
        await release_idle_claims(session=db, older_than=timedelta(minutes=ctx.settings.idle_claim_minutes))
    if ctx.settings.telegram_group_chat_id:
        async with ctx.sessions() as db, db.begin():
            await notify_pending_crises(session=db, settings=ctx.settings, notifier=ctx.notifier)


async def _sweep_forever(ctx: ConsoleContext, every: float) -> None:
    while True:
        try:
            await sweep_once(ctx)
        except Exception as exc:  # the database may be down for a while; try again next time
            log.warning("console sweep failed: %s", type(exc).__name__)
        await asyncio.sleep(every)


def _lifespan(every: float) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        """The sweeps run as long as the app. A parent that mounts the console enters this itself
        (a mounted app gets no lifespan events): ``app.router.lifespan_context(app)``."""
        task = asyncio.create_task(_sweep_forever(app.state.console, every), name="hamroh-console-sweeps")
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return lifespan


def create_console_app(
    settings: ConsoleSettings,
    session_factory: async_sessionmaker[AsyncSession],
    outbound: OutboundPort,
    answers: AnswerSearch | None = None,
    embedder: QueryEmbedder | None = None,
    notifier: Notifier | None = None,
    limiter: RateLimiter | None = None,
    media: MediaSource | None = None,
    *,
    sweep_seconds: float = SWEEP_SECONDS,
) -> FastAPI:
    """Build the console. ``bot`` mounts it (``app.mount("/console", console)``) and runs its
    lifespan (the background sweeps) inside its own.

    ``limiter`` counts sign-in attempts per address and per account; pass one on shared storage
    (the database, Redis) when several processes serve the console. Its rules are
    ``login_address`` and ``login_account``; absent rules are filled from ``settings``.
    ``media`` fetches a voice note, photo or file from the channel when a counsellor opens it.
    """
    rules = {"login_address": settings.login_per_address, "login_account": settings.login_per_account}
    if limiter is None:
        limiter = RateLimiter.from_uri("memory://", rules, key_secret=settings.session_secret.get_secret_value())
    env = build_templates(
        {
            "now": utcnow,
            "Reason": Reason,
            "Priority": Priority,
            "Role": Role,
            "Status": Status,
            "DeliveryStatus": DeliveryStatus,
            "MAX_REPLY_CHARS": MAX_REPLY_CHARS,
            "can_write": can_write,
            "can_take_over": can_take_over,
            "can_transfer": can_transfer,
            "can_view_stats": can_view_stats,
            "can_view_audit": can_view_audit,
            "can_manage_accounts": can_manage_accounts,
            "can_work_queue": can_work_queue,
        }
    )
    env.globals["csrf_field"] = env.get_template("_macros.html").module.csrf_field  # type: ignore[attr-defined]
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="Hamroh console",
                  lifespan=_lifespan(sweep_seconds))
    app.state.console = ConsoleContext(
        settings=settings,
        sessions=session_factory,
        outbound=outbound,
        answers=answers,
        embedder=embedder,
        notifier=notifier or NullNotifier(),
        env=env,
        limiter=limiter,
        asset_versions=static_versions(),
    )
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    _install_error_pages(app)
    app.mount("/static", static_app(), name="static")
    for area in (_console_auth, _console_queue, _console_tickets, _console_stats, _console_accounts):
        app.include_router(area.router, dependencies=[Depends(csrf_guard)])
    app.include_router(media_router(media))  # voice notes, photos, files: handoff/_media.py
    return app


def _install_error_pages(app: FastAPI) -> None:
    def page(status: int, title: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            if request.url.path.endswith(_FRAGMENTS):
                return PlainTextResponse(title, status_code=status)
            return render(request, "error.html", status_code=status, title=title, message=str(exc))

        return handler

    async def not_signed_in(request: Request, exc: Exception) -> Response:
        if request.method == "GET" and not request.url.path.endswith(_FRAGMENTS):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = redirect(request, "login", next=target)
        else:
            response = PlainTextResponse("Sign in first.", status_code=401)
        response.delete_cookie(SESSION_COOKIE, path=cookie_path(request))
        return response

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return render(
            request,
            "error.html",
            status_code=403,
            title="Form expired",
            message="This form was not accepted (missing or stale security token). Go back, reload and try again.",
        )

    app.add_exception_handler(NotSignedIn, not_signed_in)
    app.add_exception_handler(CsrfRejected, csrf_rejected)
    not_found = page(404, "Not found")

    async def ticket_not_found(request: Request, exc: Exception) -> Response:
        denied = getattr(exc, "denied", None)
        if denied is not None:
            # a try at another MRC's conversation is audited (the request's own transaction was
            # rolled back with the error, so in a fresh one)
            async with console_context(request).sessions() as db, db.begin():
                audit_denied(db, denied, detail=f"{request.method} {request.url.path}")
        return await not_found(request, exc)

    app.add_exception_handler(TicketNotFound, ticket_not_found)
    app.add_exception_handler(NotAllowed, page(403, "Not allowed"))
    app.add_exception_handler(AlreadyClaimed, page(409, "Already claimed"))
    app.add_exception_handler(InvalidState, page(409, "Not possible now"))
