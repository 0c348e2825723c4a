"""The counsellor console: a small server-rendered FastAPI application mounted by ``bot``.

Every route resolves the signed-in account on the server and asks :mod:`handoff._policy`
(through the service functions) before reading or changing anything. Every POST carries a CSRF
token. Pages work without JavaScript; a few KB of plain JS add live queue refresh, crisis
alerts and one-click insertion of curated answers.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

import anyio.to_thread
import jinja2
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.elements import ColumnElement
from starlette.datastructures import FormData

from handoff._accounts import create_account, disable_account, enable_account, list_accounts
from handoff._alerts import notify_pending_crises
from handoff._audit import audit, list_audit
from handoff._auth import (
    LoginFailed,
    SignedIn,
    authenticate,
    create_session,
    device_cookie_value,
    device_id_from_cookie,
    end_session,
    load_session,
    login_csrf_token,
    verify_login_csrf,
)
from handoff._enums import AuditAction, DeliveryStatus, Priority, Reason, Role, Status
from handoff._errors import (
    AccountError,
    AlreadyClaimed,
    InvalidState,
    LoginThrottled,
    NotAllowed,
    RoleNotGrantable,
    TicketNotFound,
)
from handoff._policy import (
    Actor,
    can_edit_content,
    can_manage_account,
    can_manage_accounts,
    can_take_over,
    can_transfer,
    can_view_audit,
    can_view_stats,
    can_work_queue,
    can_write,
    in_scope,
)
from handoff._ports import AnswerSearch, CuratedAnswer, Notifier, NullNotifier, OutboundPort, QueryEmbedder
from handoff._settings import ConsoleSettings
from handoff._stats import cluster_gaps, gap_questions, queue_stats
from handoff._tickets import (
    MAX_REPLY_CHARS,
    QueueFilter,
    add_note,
    claim,
    claim_next,
    export_transcript,
    finish_delivery,
    get_ticket,
    list_queue,
    outbound_message_for,
    record_reply,
    release,
    release_idle_claims,
    resolve,
    start_delivery,
    tell_user,
    transfer,
    view_ticket,
)
from handoff._web import (
    DEVICE_COOKIE,
    LOGIN_NONCE_COOKIE,
    SESSION_COOKIE,
    SecurityHeaders,
    StaticAsset,
    build_templates,
    load_static,
    safe_next,
)
from handoff.tables import AuditEntry, Counsellor, Ticket, TicketMessage
from storage import RateLimiter, clean_text, utcnow

__all__ = ["create_console_app"]

_IDLE_SWEEP_SECONDS = 30.0

NOTICES = {
    "claimed": "You have claimed this ticket. The user is waiting for your reply.",
    "released": "The ticket is back in the queue.",
    "replied": "Reply sent.",
    "duplicate": "This reply was already sent; it was not sent again.",
    "delivery_failed": "The reply is saved but could not be delivered. Retry below.",
    "noted": "Note saved.",
    "resolved": "Resolved. The bot answers this user again.",
    "transferred": "Transferred. The other MRC now has the conversation.",
    "empty": "The queue has no open ticket for you right now.",
    "account_added": "Account created.",
    "account_disabled": "Account disabled; its sessions have ended.",
    "account_enabled": "Account enabled.",
}

#: one event stream lives this long (then the browser reconnects): bounds a forgotten tab
_EVENT_STREAM_SECONDS = 600


class NotSignedIn(Exception):
    """No valid session: pages redirect to sign-in, fragments and JSON answer 401."""


class CsrfRejected(Exception):
    """A POST without a valid CSRF token, or from another origin."""


@dataclass
class ConsoleContext:
    """Per-app state (no module-level singletons): settings, ports, templates, assets."""

    settings: ConsoleSettings
    sessions: async_sessionmaker[AsyncSession]
    outbound: OutboundPort
    answers: AnswerSearch | None
    embedder: QueryEmbedder | None
    notifier: Notifier
    env: jinja2.Environment
    static: dict[str, StaticAsset]
    limiter: RateLimiter
    last_idle_sweep: float = field(default=0.0)

    @property
    def secret(self) -> str:
        return self.settings.session_secret.get_secret_value()


def _ctx(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx


def _base(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def _cookie_path(request: Request) -> str:
    return _base(request) or "/"


def _secure(request: Request) -> bool:
    """Cookies get ``Secure`` when configured so or when this request came over HTTPS."""
    return _ctx(request).settings.cookie_secure or request.url.scheme == "https"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    ctx = _ctx(request)
    signed: SignedIn | None = getattr(request.state, "signed_in", None)
    page = ctx.env.get_template(template).render(
        base=_base(request),
        me=signed.actor if signed else None,
        csrf=signed.session.csrf_token if signed else "",
        settings=ctx.settings,
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def _redirect(request: Request, path: str, **params: Any) -> RedirectResponse:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return RedirectResponse(f"{_base(request)}{path}" + (f"?{query}" if query else ""), status_code=303)


# --- dependencies -------------------------------------------------------------------------------


async def signed_in(request: Request) -> SignedIn:
    cached: SignedIn | None = getattr(request.state, "signed_in", None)
    if cached is not None:
        return cached
    ctx = _ctx(request)
    async with ctx.sessions() as db, db.begin():
        who = await load_session(session=db, settings=ctx.settings, token=request.cookies.get(SESSION_COOKIE))
    if who is None:
        raise NotSignedIn()
    request.state.signed_in = who
    return who


async def actor(who: Annotated[SignedIn, Depends(signed_in)]) -> Actor:
    return who.actor


Me = Annotated[Actor, Depends(actor)]


def _same_origin(request: Request) -> bool:
    """Defence in depth behind the CSRF token: a browser's Origin must name this console.

    Behind a reverse proxy the Host header may be internal, so the forwarded host and the
    configured public URL count too. ``Origin: null`` (sandboxed frames) is refused.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients; the token still decides
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "").split(",")[0].strip()}
    public = _ctx(request).settings.public_url
    if public:
        hosts.add(urlsplit(public).netloc)
    return origin != "null" and urlsplit(origin).netloc in hosts - {""}


async def csrf_guard(request: Request) -> None:
    """Applied to every route of the console router: any POST must carry a valid token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not _same_origin(request):
        raise CsrfRejected()
    form = await request.form()
    token = form.get("csrf_token")
    token = token if isinstance(token, str) else None
    if request.url.path.endswith("/login") and request.method == "POST":
        if not verify_login_csrf(_ctx(request).secret, request.cookies.get(LOGIN_NONCE_COOKIE), token):
            raise CsrfRejected()
        return
    who = await signed_in(request)
    if not token or not secrets.compare_digest(who.session.csrf_token, token):
        raise CsrfRejected()


def _text(form: FormData, name: str, limit: int = 10_000) -> str:
    """A form field, cut to ``limit`` and made storable (a NUL gave a 500 on PostgreSQL)."""
    value = form.get(name)
    return clean_text(value[:limit]) if isinstance(value, str) else ""


async def _maybe_release_idle(ctx: ConsoleContext) -> None:
    """Idle claims go back to the queue; swept lazily, at most every 30 s per process.

    Lazily because a mounted sub-application gets no lifespan events to start a timer from.
    """
    now = time.monotonic()
    if now - ctx.last_idle_sweep < _IDLE_SWEEP_SECONDS:
        return
    ctx.last_idle_sweep = now
    async with ctx.sessions() as db, db.begin():
        await release_idle_claims(session=db, older_than=timedelta(minutes=ctx.settings.idle_claim_minutes))
    if ctx.settings.telegram_group_chat_id:
        # Safety net behind bot's own call after opening a crisis ticket (announced at most once).
        async with ctx.sessions() as db, db.begin():
            await notify_pending_crises(session=db, settings=ctx.settings, notifier=ctx.notifier)


def _require(allowed: bool) -> None:
    if not allowed:
        raise NotAllowed("your role does not allow this page")


# --- the application ----------------------------------------------------------------------------


def create_console_app(
    settings: ConsoleSettings,
    session_factory: async_sessionmaker[AsyncSession],
    outbound: OutboundPort,
    answers: AnswerSearch | None = None,
    embedder: QueryEmbedder | None = None,
    notifier: Notifier | None = None,
    limiter: RateLimiter | None = None,
) -> FastAPI:
    """Build the console. ``bot`` mounts it: ``app.mount("/console", create_console_app(...))``.

    ``limiter`` counts sign-in attempts per address and per account; pass one on shared storage
    (the database, Redis) when several processes serve the console. Its rules are
    ``login_address`` and ``login_account``; absent rules are filled from ``settings``.
    """
    rules = {"login_address": settings.login_per_address, "login_account": settings.login_per_account}
    if limiter is None:
        limiter = RateLimiter.from_uri("memory://", rules, key_secret=settings.session_secret.get_secret_value())
    static = load_static()
    env = build_templates(
        {
            "asset": lambda name: f"{name}?v={static[name].version}",
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
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None, title="Hamroh console")
    app.state.console = ConsoleContext(
        settings=settings,
        sessions=session_factory,
        outbound=outbound,
        answers=answers,
        embedder=embedder,
        notifier=notifier or NullNotifier(),
        env=env,
        static=static,
        limiter=limiter,
    )
    app.add_middleware(SecurityHeaders, hsts=settings.cookie_secure)
    _install_error_pages(app)
    router = APIRouter(dependencies=[Depends(csrf_guard)])
    _auth_routes(router)
    _queue_routes(router)
    _ticket_routes(router)
    _supervisor_routes(router)
    _admin_routes(router)
    app.include_router(router)
    return app


def _install_error_pages(app: FastAPI) -> None:
    def page(status: int, title: str) -> Callable[[Request, Exception], Awaitable[Response]]:
        async def handler(request: Request, exc: Exception) -> Response:
            if request.url.path.endswith(("/alerts", "/rows", "/answers", "/events")):
                return PlainTextResponse(title, status_code=status)
            return _render(request, "error.html", status_code=status, title=title, message=str(exc))

        return handler

    async def not_signed_in(request: Request, exc: Exception) -> Response:
        wants_page = request.method == "GET" and not request.url.path.endswith(
            ("/alerts", "/rows", "/answers", "/events"))
        if wants_page:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            response: Response = _redirect(request, "/login", next=target)
        else:
            response = PlainTextResponse("Sign in first.", status_code=401)
        response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
        return response

    async def csrf_rejected(request: Request, exc: Exception) -> Response:
        return _render(
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
            actor_id, username, ticket_id, mrc_id = denied
            async with _ctx(request).sessions() as db, db.begin():
                db.add(AuditEntry(at=utcnow(), actor_id=actor_id, actor_username=username[:64],
                                  action=AuditAction.VIEW_DENIED.value, ticket_id=ticket_id, mrc_id=mrc_id,
                                  detail=f"{request.method} {request.url.path}"[:300]))
        return await not_found(request, exc)

    app.add_exception_handler(TicketNotFound, ticket_not_found)
    app.add_exception_handler(NotAllowed, page(403, "Not allowed"))
    app.add_exception_handler(AlreadyClaimed, page(409, "Already claimed"))
    app.add_exception_handler(InvalidState, page(409, "Not possible now"))


# --- sign-in ------------------------------------------------------------------------------------


def _auth_routes(router: APIRouter) -> None:
    @router.get("/static/{name}", include_in_schema=False)
    async def static_file(request: Request, name: str) -> Response:
        asset = _ctx(request).static.get(name)
        if asset is None:
            return PlainTextResponse("Not found", status_code=404)
        return asset.response()

    def login_page(request: Request, *, error: str = "", status_code: int = 200, username: str = "") -> Response:
        ctx = _ctx(request)
        nonce = request.cookies.get(LOGIN_NONCE_COOKIE) or secrets.token_urlsafe(24)
        response = _render(
            request,
            "login.html",
            status_code=status_code,
            error=error,
            username=username,
            login_csrf=login_csrf_token(ctx.secret, nonce),
            next=request.query_params.get("next", ""),
        )
        response.set_cookie(
            LOGIN_NONCE_COOKIE,
            nonce,
            path=_cookie_path(request),
            httponly=True,
            secure=_secure(request),
            samesite="strict",
        )
        return response

    @router.get("/login", name="login")
    async def login_form(request: Request) -> Response:
        return login_page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        ctx = _ctx(request)
        form = await request.form()
        username = _text(form, "username", 64).strip().lower()
        password = _text(form, "password", 1024)
        client = _client(request)
        # A browser that signed in to this account before is exempt from the address and account
        # ceilings (its own throttle bucket still applies): an attacker guessing from many
        # addresses, or spraying usernames from one, cannot lock a counsellor out of their browser.
        trusted = device_id_from_cookie(ctx.secret, username, request.cookies.get(DEVICE_COOKIE)) is not None
        if not trusted:
            wait = await ctx.limiter.hit("login_address", client) or await ctx.limiter.test("login_account", username)
            if wait:
                return _login_throttled(login_page(request, error=_throttled_text(wait), status_code=429,
                                                   username=username), wait)
        failure: Exception | None = None
        async with ctx.sessions() as db, db.begin():
            try:
                counsellor = await authenticate(
                    session=db,
                    settings=ctx.settings,
                    username=username,
                    password=password,
                    client_address=client,
                    device_cookie=request.cookies.get(DEVICE_COOKIE),
                )
                # A fresh token on every sign-in; any session this browser had before ends.
                await end_session(session=db, token=request.cookies.get(SESSION_COOKIE))
                token = await create_session(session=db, settings=ctx.settings, counsellor=counsellor)
            except (LoginThrottled, LoginFailed) as exc:
                failure = exc  # caught inside the transaction: the failed attempt is committed
        if isinstance(failure, LoginThrottled):
            wait = failure.retry_after_seconds
            return _login_throttled(login_page(request, error=_throttled_text(wait), status_code=429,
                                               username=username), wait)
        if failure is not None:
            if not trusted:
                await ctx.limiter.hit("login_account", username)
            return login_page(request, error="Wrong username or password.", status_code=401, username=username)
        target = safe_next(_base(request), _text(form, "next", 500))
        response = RedirectResponse(target, status_code=303)
        cookie = {"path": _cookie_path(request), "httponly": True, "secure": _secure(request)}
        response.set_cookie(SESSION_COOKIE, token, samesite="lax", **cookie)  # type: ignore[arg-type]
        if device_id_from_cookie(ctx.secret, username, request.cookies.get(DEVICE_COOKIE)) is None:
            response.set_cookie(
                DEVICE_COOKIE,
                device_cookie_value(ctx.secret, username),
                max_age=180 * 24 * 3600,
                samesite="strict",
                **cookie,  # type: ignore[arg-type]
            )
        response.delete_cookie(LOGIN_NONCE_COOKIE, path=_cookie_path(request))
        return response

    @router.post("/logout")
    async def logout(request: Request, who: Annotated[SignedIn, Depends(signed_in)]) -> Response:
        ctx = _ctx(request)
        async with ctx.sessions() as db, db.begin():
            await end_session(session=db, token=request.cookies.get(SESSION_COOKIE), actor=who.actor)
        response = _redirect(request, "/login")
        response.delete_cookie(SESSION_COOKIE, path=_cookie_path(request))
        return response


def _throttled_text(seconds: float) -> str:
    return f"Too many failed attempts. Wait {int(seconds)} seconds and try again."


def _login_throttled(response: Response, seconds: float) -> Response:
    response.headers["Retry-After"] = str(max(1, int(seconds)))
    return response


# --- queue --------------------------------------------------------------------------------------


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


def _queue_routes(router: APIRouter) -> None:
    async def load(request: Request, me: Actor) -> tuple[QueueFilter, list[Ticket]]:
        ctx = _ctx(request)
        _require(can_work_queue(me))
        await _maybe_release_idle(ctx)
        filters = _queue_filter(request, me)
        async with ctx.sessions() as db, db.begin():
            tickets = await list_queue(session=db, actor=me, filters=filters)
        return filters, tickets

    @router.get("/")
    async def queue_page(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        if not can_work_queue(me):
            home = "/accounts" if can_manage_accounts(me) else "/content" if can_edit_content(me) else "/audit"
            return _redirect(request, home)
        filters, tickets = await load(request, me)
        return _render(
            request,
            "queue.html",
            tickets=tickets,
            filters=filters,
            langs=_visible_langs(ctx, me),
            mrcs=[m for m in ctx.settings.mrcs if in_scope(me, m.id)],
            query=request.url.query,
        )

    @router.get("/queue/rows")
    async def queue_rows(request: Request, me: Me) -> Response:
        _filters, tickets = await load(request, me)
        return _render(request, "_rows.html", tickets=tickets)

    @router.get("/alerts")
    async def alerts(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_work_queue(me))
        await _maybe_release_idle(ctx)
        scope: list[ColumnElement[bool]] = [Ticket.status.in_(Status.active())]
        if me.mrc_id is not None:
            scope.append(Ticket.mrc_id == me.mrc_id)
        async with ctx.sessions() as db, db.begin():
            open_count = await db.scalar(select(func.count()).where(*scope, Ticket.status == Status.OPEN))
            crisis = (
                await db.execute(
                    # Only crisis tickets nobody has picked up yet call for everyone's attention.
                    select(func.count(), func.max(Ticket.id)).where(
                        *scope, Ticket.status == Status.OPEN, Ticket.priority == int(Priority.CRISIS)
                    )
                )
            ).one()
            mine = await db.scalar(
                select(func.count()).where(Ticket.status == Status.CLAIMED, Ticket.claimed_by_id == me.id)
            )
        return JSONResponse(
            {
                "open": int(open_count or 0),
                "crisis": int(crisis[0] or 0),
                "newest_crisis": int(crisis[1] or 0),
                "mine": int(mine or 0),
            }
        )

    @router.get("/events")
    async def events(request: Request, me: Me) -> Response:
        """Server-sent events: the queue, a crisis and a ticket's transcript change, pushed.

        Why a stream and not the page's poll: a crisis must reach a counsellor within seconds, not
        at the next 15-second poll, and a person's "my phone is about to die" must appear on the open
        ticket without a reload. The server checks one small version row a second per open console
        (cheap next to a page poll), and the browser refetches only what changed.
        """
        ctx = _ctx(request)
        _require(can_work_queue(me))
        raw = request.query_params.get("ticket", "")
        ticket_id = int(raw) if raw.isdigit() else None
        wanted = request.query_params.get("seconds", "")
        lasting = min(int(wanted), _EVENT_STREAM_SECONDS) if wanted.isdigit() else _EVENT_STREAM_SECONDS
        scope: list[ColumnElement[bool]] = [Ticket.status.in_(Status.active())]
        if me.mrc_id is not None:
            scope.append(Ticket.mrc_id == me.mrc_id)

        async def version() -> tuple[int, ...]:
            async with ctx.sessions() as db:
                columns = (func.count(), func.max(Ticket.id), func.max(Ticket.last_user_message_at))
                queue = (await db.execute(select(*columns).where(*scope))).one()
                crisis = (await db.execute(select(func.count(), func.max(Ticket.id)).where(
                    *scope, Ticket.status == Status.OPEN, Ticket.priority == int(Priority.CRISIS)))).one()
                last = 0
                if ticket_id is not None:
                    last = int(await db.scalar(select(func.max(TicketMessage.id))
                                               .where(TicketMessage.ticket_id == ticket_id)) or 0)
            stamp = int(queue[2].timestamp()) if queue[2] is not None else 0
            return int(queue[0] or 0), int(queue[1] or 0), stamp, int(crisis[0] or 0), int(crisis[1] or 0), last

        async def stream() -> AsyncIterator[str]:
            seen: tuple[int, ...] | None = None
            yield "retry: 3000\n\n"
            for _ in range(lasting):
                if await request.is_disconnected():
                    return
                now = await version()
                if seen is None or now != seen:
                    data = json.dumps({"open": now[0], "crisis": now[3], "newest_crisis": now[4],
                                       "ticket_message": now[5], "first": seen is None,
                                       "new_crisis": seen is not None and now[4] > seen[4]})
                    yield f"event: change\ndata: {data}\n\n"
                    seen = now
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(1.0)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    @router.post("/claim-next")
    async def claim_next_ticket(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_work_queue(me))
        form = await request.form()
        await _maybe_release_idle(ctx)
        async with ctx.sessions() as db, db.begin():
            ticket = await claim_next(
                session=db, actor=me, lang=_text(form, "lang", 16) or None, mrc_id=_text(form, "mrc", 64) or None
            )
        if ticket is None:
            return _redirect(request, "/", notice="empty")
        return _redirect(request, f"/tickets/{ticket.id}", notice="claimed")


# --- a ticket -----------------------------------------------------------------------------------


async def _search_answers(ctx: ConsoleContext, query: str, lang: str) -> list[CuratedAnswer]:
    if not query.strip() or ctx.answers is None:
        return []
    search = ctx.answers.search
    return await anyio.to_thread.run_sync(lambda: search(query.strip()[:300], lang, 5))


def _ticket_routes(router: APIRouter) -> None:
    @router.get("/tickets/{ticket_id}")
    async def ticket_page(request: Request, ticket_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        async with ctx.sessions() as db, db.begin():
            detail = await view_ticket(session=db, ticket_id=ticket_id, actor=me)
            names = dict((await db.execute(select(Counsellor.id, Counsellor.display_name))).all())
        ticket = detail.ticket
        query = clean_text(request.query_params.get("q", ""))
        found = await _search_answers(ctx, query, ticket.lang)
        chosen = request.query_params.get("insert", "")
        prefill = next((a for a in found if a.entry_id == chosen), None)
        mrc = ctx.settings.mrc(ticket.mrc_id)
        return _render(
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

    @router.get("/tickets/{ticket_id}/answers")
    async def answers_fragment(request: Request, ticket_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        async with ctx.sessions() as db, db.begin():
            ticket = await get_ticket(session=db, ticket_id=ticket_id, actor=me)
        query = clean_text(request.query_params.get("q", ""))
        found = await _search_answers(ctx, query, ticket.lang)
        return _render(request, "_answers.html", ticket=ticket, answers=found, query=query)

    @router.get("/tickets/{ticket_id}/export")
    async def export(request: Request, ticket_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        async with ctx.sessions() as db, db.begin():
            text = await export_transcript(session=db, ticket_id=ticket_id, actor=me)
        return PlainTextResponse(
            text, headers={"Content-Disposition": f'attachment; filename="ticket-{ticket_id}.txt"'}
        )

    @router.post("/tickets/{ticket_id}/claim")
    async def claim_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        async with _ctx(request).sessions() as db, db.begin():
            await claim(session=db, ticket_id=ticket_id, actor=me)
        return _redirect(request, f"/tickets/{ticket_id}", notice="claimed")

    @router.post("/tickets/{ticket_id}/release")
    async def release_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        async with _ctx(request).sessions() as db, db.begin():
            await release(session=db, ticket_id=ticket_id, actor=me)
        return _redirect(request, f"/tickets/{ticket_id}", notice="released")

    async def deliver(ctx: ConsoleContext, message_id: int, *, retry: bool) -> bool:
        """Send outside any transaction so a slow channel never holds a database lock."""
        async with ctx.sessions() as db, db.begin():
            if not await start_delivery(session=db, message_id=message_id, retry=retry):
                return True
            user_key, message = await outbound_message_for(session=db, message_id=message_id)
        error: str | None = None
        try:
            await ctx.outbound.send(user_key, message)
        except Exception as exc:  # recorded on the message and offered for retry
            error = f"{type(exc).__name__}: {exc}"
        async with ctx.sessions() as db, db.begin():
            await finish_delivery(session=db, message_id=message_id, error=error)
        return error is None

    @router.post("/tickets/{ticket_id}/reply")
    async def reply_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        form = await request.form()
        async with ctx.sessions() as db, db.begin():
            message, created = await record_reply(
                session=db,
                ticket_id=ticket_id,
                actor=me,
                text=_text(form, "text", MAX_REPLY_CHARS * 2),
                client_key=_text(form, "client_key", 64) or None,
                curated_entry_id=_text(form, "curated_entry_id", 128) or None,
            )
        if not created:
            return _redirect(request, f"/tickets/{ticket_id}", notice="duplicate")
        ok = await deliver(ctx, message.id, retry=False)
        return _redirect(request, f"/tickets/{ticket_id}", notice="replied" if ok else "delivery_failed")

    @router.post("/tickets/{ticket_id}/messages/{message_id}/retry")
    async def retry_delivery(request: Request, ticket_id: int, message_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        async with ctx.sessions() as db, db.begin():
            ticket = await get_ticket(session=db, ticket_id=ticket_id, actor=me)
            message = await db.get(TicketMessage, message_id)
            if message is None or message.ticket_id != ticket.id:
                raise TicketNotFound("no such message on this ticket")
            if not (can_write(me, ticket) or can_take_over(me, ticket)):
                raise NotAllowed("claim the ticket before retrying a reply")
        ok = await deliver(ctx, message_id, retry=True)
        return _redirect(request, f"/tickets/{ticket_id}", notice="replied" if ok else "delivery_failed")

    @router.post("/tickets/{ticket_id}/notes")
    async def note_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        form = await request.form()
        async with _ctx(request).sessions() as db, db.begin():
            await add_note(session=db, ticket_id=ticket_id, actor=me, text=_text(form, "text"))
        return _redirect(request, f"/tickets/{ticket_id}", notice="noted")

    @router.post("/tickets/{ticket_id}/resolve")
    async def resolve_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        form = await request.form()
        async with _ctx(request).sessions() as db, db.begin():
            done = await resolve(session=db, ticket_id=ticket_id, actor=me,
                                 topic=_text(form, "topic", 64).strip() or None)
        await tell_user(_ctx(request).outbound, ticket=done, kind="resolved")
        return _redirect(request, f"/tickets/{ticket_id}", notice="resolved")

    @router.post("/tickets/{ticket_id}/transfer")
    async def transfer_ticket(request: Request, ticket_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        form = await request.form()
        async with ctx.sessions() as db, db.begin():
            moved = await transfer(
                session=db,
                settings=ctx.settings,
                ticket_id=ticket_id,
                actor=me,
                to_mrc_id=_text(form, "to_mrc", 64),
                note=_text(form, "note"),
            )
        target = ctx.settings.mrc(moved.mrc_id)
        await tell_user(ctx.outbound, ticket=moved, kind="transferred", text=target.name if target else moved.mrc_id)
        return _redirect(request, f"/tickets/{ticket_id}", notice="transferred")


# --- supervisors --------------------------------------------------------------------------------


def _stats_scope(request: Request, me: Actor) -> str | None:
    if me.mrc_id is not None:
        return me.mrc_id
    wanted = request.query_params.get("mrc", "")
    return wanted if _ctx(request).settings.mrc(wanted) else None


def _days(request: Request) -> int:
    value = request.query_params.get("days", "30")
    return int(value) if value in {"7", "30", "90", "365"} else 30


def _supervisor_routes(router: APIRouter) -> None:
    @router.get("/stats")
    async def stats_page(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_view_stats(me))
        days, scope = _days(request), _stats_scope(request, me)
        async with ctx.sessions() as db, db.begin():
            stats = await queue_stats(session=db, actor=me, days=days, mrc_id=scope)
            questions = await gap_questions(
                session=db,
                actor=me,
                days=min(days, ctx.settings.content_gap_days) if days else ctx.settings.content_gap_days,
                limit=ctx.settings.content_gap_max_questions,
                mrc_id=scope,
            )
            await audit(db, me, AuditAction.STATS_VIEW, mrc_id=scope, detail=f"{days} days")
        embedder, threshold = ctx.embedder, ctx.settings.content_gap_threshold
        gaps = await anyio.to_thread.run_sync(lambda: cluster_gaps(questions, embedder, threshold))
        return _render(
            request,
            "stats.html",
            stats=stats,
            gaps=gaps[:50],
            gap_total=len(questions),
            days=days,
            scope=scope,
            mrcs=[m for m in ctx.settings.mrcs if in_scope(me, m.id)],
            semantic=embedder is not None,
        )

    @router.get("/stats.csv")
    async def stats_export(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_view_stats(me))
        days, scope = _days(request), _stats_scope(request, me)
        async with ctx.sessions() as db, db.begin():
            stats = await queue_stats(session=db, actor=me, days=days, mrc_id=scope)
            await audit(db, me, AuditAction.EXPORT, mrc_id=scope, detail=f"stats {days} days")
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
        return Response(
            out.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="hamroh-stats-{days}d.csv"'},
        )

    @router.get("/audit")
    async def audit_page(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_view_audit(me))
        raw = request.query_params.get("ticket", "")
        ticket_id = int(raw) if raw.isdigit() else None
        scope = None if me.mrc_id is None else [me.mrc_id]
        async with ctx.sessions() as db, db.begin():
            entries = await list_audit(session=db, mrc_ids=scope, ticket_id=ticket_id)
        return _render(request, "audit.html", entries=entries, ticket_filter=raw if ticket_id else "")


# --- admins -------------------------------------------------------------------------------------


def _admin_routes(router: APIRouter) -> None:
    async def target(db: AsyncSession, me: Actor, account_id: int) -> Counsellor:
        found = await db.get(Counsellor, account_id)
        if found is None or not can_manage_account(me, found.mrc_id):
            raise TicketNotFound("no such account")
        return found

    @router.get("/accounts")
    async def accounts_page(request: Request, me: Me, error: str = "") -> Response:
        ctx = _ctx(request)
        _require(can_manage_accounts(me))
        async with ctx.sessions() as db, db.begin():
            accounts = await list_accounts(session=db, mrc_id=me.mrc_id)
        return _render(
            request,
            "accounts.html",
            accounts=accounts,
            error=error,
            mrcs=[m for m in ctx.settings.mrcs if in_scope(me, m.id)],
        )

    @router.post("/accounts")
    async def add_account(request: Request, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_manage_accounts(me))
        form = await request.form()
        mrc_id = _text(form, "mrc_id", 64) or None
        if not can_manage_account(me, mrc_id):
            raise NotAllowed("you can only create accounts for your own MRC")
        try:
            async with ctx.sessions() as db, db.begin():
                await create_account(
                    session=db,
                    username=_text(form, "username", 64),
                    display_name=_text(form, "display_name", 100),
                    password=_text(form, "password", 1024),
                    role=_text(form, "role", 16),
                    mrc_id=mrc_id,
                    known_mrc_ids=ctx.settings.mrc_ids,
                    min_password_length=ctx.settings.min_password_length,
                    actor=me,
                )
        except AccountError as exc:
            async with ctx.sessions() as db, db.begin():
                if isinstance(exc, RoleNotGrantable):
                    await audit(db, me, AuditAction.ACCOUNT_ADD, mrc_id=mrc_id,
                                detail=f"refused: {me.username} may not create a {_text(form, 'role', 16)} account")
                accounts = await list_accounts(session=db, mrc_id=me.mrc_id)
            return _render(
                request,
                "accounts.html",
                status_code=400,
                accounts=accounts,
                error=str(exc),
                mrcs=[m for m in ctx.settings.mrcs if in_scope(me, m.id)],
            )
        return _redirect(request, "/accounts", notice="account_added")

    @router.post("/accounts/{account_id}/disable")
    async def disable(request: Request, account_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_manage_accounts(me))
        async with ctx.sessions() as db, db.begin():
            account = await target(db, me, account_id)
            if account.id == me.id:
                raise InvalidState("you cannot disable your own account")
            await disable_account(session=db, username=account.username, actor=me)
        return _redirect(request, "/accounts", notice="account_disabled")

    @router.post("/accounts/{account_id}/enable")
    async def enable(request: Request, account_id: int, me: Me) -> Response:
        ctx = _ctx(request)
        _require(can_manage_accounts(me))
        async with ctx.sessions() as db, db.begin():
            account = await target(db, me, account_id)
            await enable_account(session=db, username=account.username, actor=me)
        return _redirect(request, "/accounts", notice="account_enabled")
