"""The web chat channel: the widget's page and files, a WebSocket, and an HTTP fallback.

Why this shape (DESIGN.md, principles 4 and 6):

* **Anonymous and pseudonymous.** A visitor gets a random, server-signed session id, in an
  HttpOnly cookie on the chat's own site or as a token in ``localStorage`` when the widget is
  embedded on an MRC website (third-party cookies are blocked there). The engine only ever sees
  ``bot.privacy.user_key("web", session id)``. Texts, tokens, session ids and IP addresses are
  never logged.
* **Slow, flaky networks.** The WebSocket is the fast path; where a proxy or a captive portal
  breaks it, the same JSON frames go over plain HTTP (``POST /api/chat/send``, long-polled
  ``GET /api/chat/poll``). Client-generated message ids make resending safe: the engine answers
  a message once, however often a phone on 2G retries it. Replies are marked sent only when the
  widget acknowledges them, so a reply lost in a dropped connection is delivered on reconnect.
* **Abuse.** Token buckets per session and per IP address, a size limit per message, and a
  strict frame schema; a refused frame never reaches the engine, so nothing is stored.

The channel never decides what to say: texts come from the engine's replies, and the widget's own
few labels live in ``bot/web/i18n/<lang>.json``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import APIRouter

from bot.engine import ChatPort
from storage import RateLimiter as SharedLimiter

from ._web_bundle import bundle_widget
from ._web_context import WebContext, WebLimits
from ._web_http import HttpRoutes, PageRoutes
from ._web_limits import BucketSpec
from ._web_socket import SocketRoutes

__all__ = ["WEB_DIR", "BucketSpec", "WebLimits", "bundle_widget", "create_web_router"]

#: the widget's static files (``hamroh-chat.js``, ``hamroh-chat.css``, ``i18n/*.json``, pages)
WEB_DIR = Path(__file__).resolve().parents[1] / "web"


def create_web_router(
    engine: ChatPort,
    *,
    key_secret: str,
    session_secret: str | None = None,
    secure_cookies: bool = False,
    cookie_max_age: int = 30 * 24 * 3600,
    allowed_origins: Sequence[str] = ("*",),
    trusted_hosts: Sequence[str] = (),
    limiter: SharedLimiter | None = None,
    ws_open_per_address: int = 50,
    limits: WebLimits | None = None,
    poll_interval: float = 1.0,
    pending_limit: int = 1000,
    static_dir: Path = WEB_DIR,
) -> APIRouter:
    """The web chat's routes, ready for ``app.include_router(...)``.

    ``key_secret`` keys the pseudonymous user keys (``HAMROH_USER_KEY_SECRET``); ``session_secret``
    signs session tokens (``HAMROH_SESSION_SECRET``, derived from ``key_secret`` when absent).
    Cookies are ``Secure`` when the request came over HTTPS (directly, or through a proxy uvicorn
    trusts for ``X-Forwarded-Proto``); ``secure_cookies`` forces it. ``allowed_origins`` lists the
    MRC websites that may embed the widget (``*``: any). ``poll_interval`` is how often counsellor
    replies are looked for while someone is connected. ``trusted_hosts`` (empty: any well-formed
    host) are the Host values the pages are built for: the page's CSP and the widget's address
    come from the Host header. ``limiter`` (shared across workers) applies the ``web_http`` rule
    to the HTTP endpoints and ``ws_connect`` to new WebSockets, per client address;
    ``ws_open_per_address`` caps the WebSockets one address holds open in this process.
    """
    ctx = WebContext(engine, key_secret=key_secret, session_secret=session_secret, secure_cookies=secure_cookies,
                     cookie_max_age=cookie_max_age, allowed_origins=allowed_origins, trusted_hosts=trusted_hosts,
                     limiter=limiter, ws_open_per_address=ws_open_per_address, limits=limits or WebLimits(),
                     poll_interval=poll_interval, pending_limit=pending_limit, static_dir=static_dir)
    router = APIRouter()
    # the pages and files, the HTTP fallback and the WebSocket: one module per area (``_web_*``)
    for area in (PageRoutes(ctx), HttpRoutes(ctx), SocketRoutes(ctx)):
        router.include_router(area.router())
    return router
