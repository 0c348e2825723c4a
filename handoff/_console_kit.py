"""What every console route module shares: the app's state, the dependencies, rendering, redirects.

The dependencies are FastAPI's (``Annotated[..., Depends(...)]``): :data:`Db` is the request's
database session, committed when the route returns without an error and rolled back when it raises
(so a refusal changes nothing); :data:`Me` is the signed-in account, resolved on the server;
:func:`csrf_guard` runs before every route of the console's routers.

Every console URL comes from the route table (``url_for`` in templates, :func:`redirect` in routes),
never from a string: the console works wherever it is mounted (``/console`` in ``bot``) and behind a
proxy that serves it under a prefix (uvicorn's ``--root-path``), and a renamed route fails loudly.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import quote, urlencode, urlsplit

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.routing import NoMatchFound

from handoff._auth import SignedIn, load_session, verify_login_csrf
from handoff._errors import NotAllowed
from handoff._policy import Actor, in_scope
from handoff._ports import AnswerSearch, Notifier, OutboundPort, QueryEmbedder
from handoff._settings import ConsoleSettings, MrcSettings
from handoff._web import LOGIN_NONCE_COOKIE, SESSION_COOKIE
from storage import RateLimiter, clean_text

__all__ = [
    "NOTICES",
    "ConsoleContext",
    "CsrfRejected",
    "Ctx",
    "Db",
    "Me",
    "NotSignedIn",
    "clip",
    "console_context",
    "console_url",
    "cookie_path",
    "csrf_guard",
    "mrcs_in_scope",
    "page_context",
    "redirect",
    "render",
    "require",
    "signed_in",
]

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
    limiter: RateLimiter
    #: each static file's content hash (``static_url`` appends it: a new file is a new URL)
    asset_versions: Mapping[str, str] = field(default_factory=dict)

    @property
    def secret(self) -> str:
        return self.settings.session_secret.get_secret_value()


def console_context(request: Request) -> ConsoleContext:
    ctx: ConsoleContext = request.app.state.console
    return ctx


Ctx = Annotated[ConsoleContext, Depends(console_context)]


async def _db_session(ctx: Ctx) -> AsyncIterator[AsyncSession]:
    """One session per request; the route may commit early (before sending to a channel)."""
    async with ctx.sessions() as session:
        try:
            yield session
        except BaseException:
            await session.rollback()
            raise
        await session.commit()


#: the request's session, closed (committed) before the response is sent: a redirect never races
#: ahead of the change it reports
Db = Annotated[AsyncSession, Depends(_db_session, scope="function")]


def cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/") or "/"


def clip(value: str, limit: int = 10_000) -> str:
    """A form field cut to ``limit`` and made storable (a NUL gave a 500 on PostgreSQL)."""
    return clean_text(value[:limit])


def require(allowed: bool) -> None:
    if not allowed:
        raise NotAllowed("your role does not allow this page")


def mrcs_in_scope(ctx: ConsoleContext, me: Actor) -> list[MrcSettings]:
    return [m for m in ctx.settings.mrcs if in_scope(me, m.id)]


def console_url(request: Request, name: str, **path_params: Any) -> str:
    """A console path by route name (``/console/tickets/7``), wherever the console is mounted.

    Looked up in the console's own routes, then put under the request's ``root_path`` (the mount
    and any proxy prefix): Starlette's ``request.url_for`` searches the outermost app's routes first,
    where a route of the parent with the same name (``login``, ``static``) would win. The path only,
    no scheme or host: behind a proxy the Host header may be an internal one.
    """
    quoted = {key: quote(value, safe="/" if key == "path" else "") if isinstance(value, str) else value
              for key, value in path_params.items()}  # an entry id typed into a form is text
    root = str(request.scope.get("root_path", "")).rstrip("/")
    return root + str(request.app.url_path_for(name, **quoted))


def _has_route(request: Request, name: str) -> bool:
    """Whether the console serves a route of that name: the content pages are ``bot``'s, included
    into the console there (a console built by ``handoff`` alone has none)."""
    try:
        request.app.url_path_for(name)
    except NoMatchFound:
        return False
    return True


def _static_url(request: Request, name: str) -> str:
    versions = console_context(request).asset_versions
    path = console_url(request, "static", path=name)
    return f"{path}?v={versions[name]}" if name in versions else path


def page_context(request: Request) -> dict[str, Any]:
    """What every console page is rendered with, the content editor's pages too: links by route
    name (``url_for``, ``static_url``, ``has_route``), the signed-in account and its CSRF token, the settings."""
    ctx = console_context(request)
    signed: SignedIn | None = getattr(request.state, "signed_in", None)
    return {
        "url_for": lambda name, **params: console_url(request, name, **params),
        "static_url": lambda name: _static_url(request, name),
        "has_route": lambda name: _has_route(request, name),
        # the console's root for console.js (its fragments and event stream hang below it)
        "base": console_url(request, "queue").rstrip("/"),
        "me": signed.actor if signed else None,
        "csrf": signed.session.csrf_token if signed else "",
        "settings": ctx.settings,
    }


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    ctx = console_context(request)
    page = ctx.env.get_template(template).render(
        **page_context(request),
        notice=NOTICES.get(request.query_params.get("notice", ""), ""),
        **context,
    )
    return HTMLResponse(page, status_code=status_code)


def redirect(request: Request, name: str, path_params: dict[str, Any] | None = None, **query: Any) -> RedirectResponse:
    """303 to the route called ``name``; ``query`` becomes the query string (empty values dropped)."""
    encoded = urlencode({k: v for k, v in query.items() if v not in (None, "")})
    return RedirectResponse(console_url(request, name, **(path_params or {})) + (f"?{encoded}" if encoded else ""),
                            status_code=303)


async def signed_in(request: Request) -> SignedIn:
    cached: SignedIn | None = getattr(request.state, "signed_in", None)
    if cached is not None:
        return cached
    ctx = console_context(request)
    async with ctx.sessions() as db, db.begin():
        who = await load_session(session=db, settings=ctx.settings, token=request.cookies.get(SESSION_COOKIE))
    if who is None:
        raise NotSignedIn()
    request.state.signed_in = who
    return who


async def _actor(who: Annotated[SignedIn, Depends(signed_in)]) -> Actor:
    return who.actor


Me = Annotated[Actor, Depends(_actor)]


def _same_origin(request: Request) -> bool:
    """Defence in depth behind the CSRF token: a browser's Origin must name this console.

    Behind a reverse proxy the Host header may be internal, so the forwarded host and the
    configured public URL count too. ``Origin: null`` (sandboxed frames) is refused.
    """
    origin = request.headers.get("origin")
    if origin is None:
        return True  # older browsers and non-browser clients; the token still decides
    hosts = {request.headers.get("host", ""), request.headers.get("x-forwarded-host", "").split(",")[0].strip()}
    public = console_context(request).settings.public_url
    if public:
        hosts.add(urlsplit(public).netloc)
    return origin != "null" and urlsplit(origin).netloc in hosts - {""}


async def csrf_guard(request: Request) -> None:
    """Applied to every route of the console's routers: any POST must carry a valid token."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if not _same_origin(request):
        raise CsrfRejected()
    form = await request.form()
    token = form.get("csrf_token")
    token = token if isinstance(token, str) else None
    if request.url.path.endswith("/login") and request.method == "POST":
        if not verify_login_csrf(console_context(request).secret, request.cookies.get(LOGIN_NONCE_COOKIE), token):
            raise CsrfRejected()
        return
    who = await signed_in(request)
    if not token or not secrets.compare_digest(who.session.csrf_token, token):
        raise CsrfRejected()
