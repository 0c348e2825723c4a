"""What every web chat route shares: sessions, origin and rate checks, responses, the engine hand-over.

Why one object passed to each route module (pages, HTTP fallback, WebSocket) rather than one
closure factory holding every route: each area reads on its own, and no function grows past what a
reviewer can hold in their head (the old factory measured 84 on ruff's C901 scale).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import Request, WebSocket
from fastapi.responses import JSONResponse

from bot.engine import ChatPort, IncomingMessage
from storage import RateLimiter as SharedLimiter
from storage import clean_json

from ._web_frames import ClientFrame, FrameError, error_frame, parse_client_frame, reply_frame
from ._web_hub import DeliveryLedger, PendingHub
from ._web_limits import BucketSpec, RateLimiter
from ._web_session import (
    COOKIE_NAME,
    TOKEN_HEADER,
    SessionSigner,
    cookie_header,
    origin_allowed,
    resolve_user_key_function,
    same_origin,
    scoped_message_id,
)
from ._web_static import StaticFile, load_static

__all__ = ["CHANNEL", "HTTP_STATUS", "MAX_RETRY_AFTER", "WebChat", "WebContext", "WebLimits", "WebSession",
           "dumps"]

log = logging.getLogger("hamroh.web")

CHANNEL = "web"
HTTP_STATUS = {"rate_limited": 429, "too_long": 413, "bad_frame": 400, "empty": 400, "error": 503}
MAX_RETRY_AFTER = 3600.0
#: a Host header fit for a CSP and a URL: a name or IPv4 address, or a bracketed IPv6 one, and a port
HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


@dataclass(frozen=True)
class WebLimits:
    """Abuse limits; the defaults suit one MRC office behind a single NAT address."""

    #: characters in one message (the widget's text box stops at the same number)
    max_text_chars: int = 2000
    #: a raw frame or request body; larger ones are refused before JSON decoding
    max_frame_bytes: int = 16_384
    #: one person: a burst of 10 messages, then one every 2 seconds
    session: BucketSpec = field(default_factory=lambda: BucketSpec(rate=0.5, burst=10))
    #: one IP address, all sessions together (an MRC office or a mobile carrier's NAT)
    ip: BucketSpec = field(default_factory=lambda: BucketSpec(rate=5.0, burst=60))
    #: polls and new sessions per IP address: they are cheap, but each one is a database query
    poll: BucketSpec = field(default_factory=lambda: BucketSpec(rate=5.0, burst=60))
    #: how long ``GET /api/chat/poll`` may hold a request open waiting for a counsellor's reply
    long_poll_seconds: float = 20.0
    #: a WebSocket must say hello within this many seconds
    hello_timeout: float = 15.0


@dataclass
class WebSession:
    sid: str
    user_key: str
    token: str | None = None  # returned to token-mode clients when a new session was issued
    set_cookie: str | None = None


def dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


class WebChat:
    """What both transports share: rate limits, idempotent hand-over to the engine, acknowledgements."""

    def __init__(self, engine: ChatPort, limits: WebLimits, *, pending_limit: int) -> None:
        self.engine = engine
        self.limits = limits
        self.pending_limit = pending_limit
        self.ledger = DeliveryLedger()
        self.limiter = RateLimiter()
        self._inflight: set[tuple[str, str]] = set()

    async def handle(self, user_key: str, ip: str, frame: ClientFrame, client_lang: str | None) -> list[dict[str, Any]]:
        assert frame.id is not None
        wait = self.limiter.take([("session", user_key, self.limits.session), ("ip", ip, self.limits.ip)])
        if wait:
            log.info("web: rate limited a %s frame", frame.type)
            return [error_frame("rate_limited", frame.id, retry_after=min(wait, MAX_RETRY_AFTER))]
        key = (user_key, frame.id)
        if key in self._inflight:  # the first copy is still with the engine; its replies will follow
            return [{"type": "handled", "id": frame.id}]
        self._inflight.add(key)
        try:
            message = IncomingMessage(
                channel=CHANNEL, user_key=user_key, message_id=scoped_message_id(user_key, frame.id),
                text=frame.text, callback=frame.payload, command=frame.command,
                client_lang=frame.lang or client_lang)
            try:
                outs = await self.engine.handle(message, address=None)
            except Exception as exc:
                log.error("web: the engine failed on a %s frame (%s)", frame.type, type(exc).__name__)
                return [error_frame("error", frame.id)]
        finally:
            self._inflight.discard(key)
        mine = [o for o in outs if o.user_key == user_key and o.channel == CHANNEL]
        self.ledger.note(mine)
        log.debug("web: %s frame answered with %d replies", frame.type, len(mine))
        return [*(reply_frame(o, in_reply_to=frame.id) for o in mine), {"type": "handled", "id": frame.id}]

    async def ack(self, user_key: str, ids: Sequence[int]) -> None:
        mine = self.ledger.claim(user_key, ids)
        if mine:
            try:
                await self.engine.mark_sent(mine)
            except Exception as exc:  # they stay pending and are delivered (and acknowledged) again
                log.warning("web: mark_sent failed (%s)", type(exc).__name__)

    async def pending_for(self, user_key: str) -> list[dict[str, Any]]:
        items = await self.engine.pending(CHANNEL, limit=self.pending_limit, user_keys=(user_key,))
        self.ledger.note(items)
        return [reply_frame(o) for o in items]


class WebContext:
    """The configured web chat: see ``bot.channels.web.create_web_router`` for the parameters."""

    def __init__(self, engine: ChatPort, *, key_secret: str, session_secret: str | None, secure_cookies: bool,
                 cookie_max_age: int, allowed_origins: Sequence[str], trusted_hosts: Sequence[str],
                 limiter: SharedLimiter | None, ws_open_per_address: int, limits: WebLimits, poll_interval: float,
                 pending_limit: int, static_dir: Path) -> None:
        self.engine = engine
        self.limits = limits
        self.user_key_of = resolve_user_key_function(key_secret)
        self.signer = SessionSigner.from_secret(session_secret or key_secret)
        self.secure_cookies = secure_cookies
        self.cookie_max_age = cookie_max_age
        self.allowed = frozenset(o.rstrip("/").lower() for o in allowed_origins)
        self.hosts = frozenset(h.lower() for h in trusted_hosts)
        self.limiter = limiter
        self.ws_open_per_address = ws_open_per_address
        self.open_sockets: dict[str, int] = {}
        self.static_dir = static_dir
        self.files: dict[str, StaticFile] = load_static(static_dir)
        try:
            self.languages = frozenset(json.loads(self.files["i18n/languages.json"].body))
        except KeyError:
            raise FileNotFoundError(f"{static_dir}/i18n/languages.json is missing: the widget cannot start") from None
        self.hub = PendingHub(engine, interval=poll_interval, limit=pending_limit, channel=CHANNEL)
        self.chat = WebChat(engine, limits, pending_limit=pending_limit)

    # ------------------------------------------------------------------ frames
    def decode(self, raw: str | bytes) -> ClientFrame:
        if len(raw) > self.limits.max_frame_bytes:
            raise FrameError("too_long")
        try:
            # what people typed is made storable here (a lone surrogate or NUL became a 503), and
            # nesting too deep for the decoder is a malformed frame, not a 500
            data = clean_json(json.loads(raw))
        except (ValueError, RecursionError):
            raise FrameError("bad_frame") from None
        return parse_client_frame(data, max_text_chars=self.limits.max_text_chars, languages=self.languages)

    # ------------------------------------------------------------------ HTTP helpers
    def cors(self, request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and not same_origin(origin, request.headers.get("host")) and (
                origin.rstrip("/").lower() in self.allowed or "*" in self.allowed):  # never echo any Origin
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Expose-Headers": "Retry-After"}
        return {}

    def origin_ok(self, request: Request | WebSocket) -> bool:
        return origin_allowed(request.headers.get("origin"), request.headers.get("host"), self.allowed)

    def session_for(self, request: Request, *, reset: bool = False) -> WebSession:
        host, origin = request.headers.get("host"), request.headers.get("origin")
        header = request.headers.get(TOKEN_HEADER)
        cookie_ok = same_origin(origin, host)
        token_mode = header is not None or not cookie_ok
        sid = None
        if not reset:
            sid = self.signer.verify(header) if header is not None else (
                self.signer.verify(request.cookies.get(COOKIE_NAME)) if cookie_ok else None)
        if sid is not None:
            return WebSession(sid, self.user_key_of(sid))
        sid, token = self.signer.issue()
        if token_mode:
            return WebSession(sid, self.user_key_of(sid), token=token)
        secure = self.secure_cookies or request.url.scheme == "https"
        return WebSession(sid, self.user_key_of(sid),
                          set_cookie=cookie_header(token, secure=secure, max_age=self.cookie_max_age))

    def respond(self, request: Request, body: dict[str, Any], session: WebSession | None, status: int = 200,
                extra: dict[str, str] | None = None) -> JSONResponse:
        headers = {"Cache-Control": "no-store", **self.cors(request), **(extra or {})}
        if session is not None and session.token:
            body = {**body, "session": session.token}
        response = JSONResponse(body, status_code=status, headers=headers)
        if session is not None and session.set_cookie:
            response.headers.append("set-cookie", session.set_cookie)
        return response

    def refuse(self, request: Request, code: str, status: int) -> JSONResponse:
        return self.respond(request, {"frames": [error_frame(code)]}, None, status)

    @staticmethod
    def client_ip(request: Request | WebSocket) -> str:
        return request.client.host if request.client else "unknown"

    async def shared_limit(self, request: Request) -> JSONResponse | None:
        """The configured per-address ceiling on the chat's HTTP requests, counted across workers."""
        wait = await self.limiter.hit("web_http", self.client_ip(request)) if self.limiter is not None else 0.0
        if wait:
            return self.respond(request, {"frames": [error_frame("rate_limited", retry_after=wait)]}, None, 429,
                                {"Retry-After": str(int(wait))})
        return None

    async def gate(self, request: Request) -> JSONResponse | None:
        """Origin and poll-rate checks shared by the HTTP endpoints."""
        if not self.origin_ok(request):
            return self.refuse(request, "forbidden_origin", 403)
        limited = await self.shared_limit(request)
        if limited is not None:
            return limited
        wait = self.chat.limiter.take([("poll", self.client_ip(request), self.limits.poll)])
        if wait:
            seconds = min(wait, MAX_RETRY_AFTER)
            return self.respond(request, {"frames": [error_frame("rate_limited", retry_after=seconds)]}, None, 429,
                                {"Retry-After": str(max(1, round(seconds)))})
        return None

    async def read_body(self, request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.limits.max_frame_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > self.limits.max_frame_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)
