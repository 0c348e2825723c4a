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

import asyncio
import contextlib
import html
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse, Response

from bot.engine import ChatPort, IncomingMessage, Outgoing
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

__all__ = ["WEB_DIR", "BucketSpec", "WebLimits", "create_web_router"]

log = logging.getLogger("hamroh.web")

#: the widget's static files (``hamroh-chat.js``, ``hamroh-chat.css``, ``i18n/*.json``, pages)
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
_CHANNEL = "web"
_HTTP_STATUS = {"rate_limited": 429, "too_long": 413, "bad_frame": 400, "empty": 400, "error": 503}
_MAX_RETRY_AFTER = 3600.0
#: a Host header fit for a CSP and a URL: a name or IPv4 address, or a bracketed IPv6 one, and a port
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})|\[[0-9A-Fa-f:.]{2,45}\])(?::\d{1,5})?")


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
class _Session:
    sid: str
    user_key: str
    token: str | None = None  # returned to token-mode clients when a new session was issued
    set_cookie: str | None = None


class _WebChat:
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
            return [error_frame("rate_limited", frame.id, retry_after=min(wait, _MAX_RETRY_AFTER))]
        key = (user_key, frame.id)
        if key in self._inflight:  # the first copy is still with the engine; its replies will follow
            return [{"type": "handled", "id": frame.id}]
        self._inflight.add(key)
        try:
            message = IncomingMessage(
                channel=_CHANNEL, user_key=user_key, message_id=scoped_message_id(user_key, frame.id),
                text=frame.text, callback=frame.payload, command=frame.command,
                client_lang=frame.lang or client_lang)
            try:
                outs = await self.engine.handle(message, address=None)
            except Exception as exc:
                log.error("web: the engine failed on a %s frame (%s)", frame.type, type(exc).__name__)
                return [error_frame("error", frame.id)]
        finally:
            self._inflight.discard(key)
        mine = [o for o in outs if o.user_key == user_key and o.channel == _CHANNEL]
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
        items = await self.engine.pending(_CHANNEL, limit=self.pending_limit, user_keys=(user_key,))
        self.ledger.note(items)
        return [reply_frame(o) for o in items]


def _decode(raw: str | bytes, chat: _WebChat, languages: frozenset[str]) -> ClientFrame:
    if len(raw) > chat.limits.max_frame_bytes:
        raise FrameError("too_long")
    try:
        # what people typed is made storable here (a lone surrogate or NUL became a 503), and
        # nesting too deep for the decoder is a malformed frame, not a 500
        data = clean_json(json.loads(raw))
    except (ValueError, RecursionError):
        raise FrameError("bad_frame") from None
    return parse_client_frame(data, max_text_chars=chat.limits.max_text_chars, languages=languages)


def _dumps(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"))


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
    limits = limits or WebLimits()
    user_key_of = resolve_user_key_function(key_secret)
    signer = SessionSigner.from_secret(session_secret or key_secret)
    allowed = frozenset(o.rstrip("/").lower() for o in allowed_origins)
    hosts = frozenset(h.lower() for h in trusted_hosts)
    open_sockets: dict[str, int] = {}
    files = load_static(static_dir)
    try:
        languages = frozenset(json.loads(files["i18n/languages.json"].body))
    except KeyError:
        raise FileNotFoundError(f"{static_dir}/i18n/languages.json is missing: the widget cannot start") from None
    hub = PendingHub(engine, interval=poll_interval, limit=pending_limit, channel=_CHANNEL)
    chat = _WebChat(engine, limits, pending_limit=pending_limit)
    router = APIRouter()

    # ------------------------------------------------------------------ helpers
    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin and not same_origin(origin, request.headers.get("host")) and (
                origin.rstrip("/").lower() in allowed or "*" in allowed):  # never echo any Origin
            return {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Expose-Headers": "Retry-After"}
        return {}

    def session_for(request: Request, *, reset: bool = False) -> _Session:
        host, origin = request.headers.get("host"), request.headers.get("origin")
        header = request.headers.get(TOKEN_HEADER)
        cookie_ok = same_origin(origin, host)
        token_mode = header is not None or not cookie_ok
        sid = None
        if not reset:
            sid = signer.verify(header) if header is not None else (
                signer.verify(request.cookies.get(COOKIE_NAME)) if cookie_ok else None)
        if sid is not None:
            return _Session(sid, user_key_of(sid))
        sid, token = signer.issue()
        if token_mode:
            return _Session(sid, user_key_of(sid), token=token)
        return _Session(sid, user_key_of(sid),
                        set_cookie=cookie_header(token, secure=secure_cookies or request.url.scheme == "https",
                                                 max_age=cookie_max_age))

    def respond(request: Request, body: dict[str, Any], session: _Session | None, status: int = 200,
                extra: dict[str, str] | None = None) -> JSONResponse:
        headers = {"Cache-Control": "no-store", **cors(request), **(extra or {})}
        if session is not None and session.token:
            body = {**body, "session": session.token}
        response = JSONResponse(body, status_code=status, headers=headers)
        if session is not None and session.set_cookie:
            response.headers.append("set-cookie", session.set_cookie)
        return response

    def refuse(request: Request, code: str, status: int) -> JSONResponse:
        return respond(request, {"frames": [error_frame(code)]}, None, status)

    def client_ip(request: Request | WebSocket) -> str:
        return request.client.host if request.client else "unknown"

    async def shared_limit(request: Request) -> JSONResponse | None:
        """The configured per-address ceiling on the chat's HTTP requests, counted across workers."""
        wait = await limiter.hit("web_http", client_ip(request)) if limiter is not None else 0.0
        if wait:
            return respond(request, {"frames": [error_frame("rate_limited", retry_after=wait)]}, None, 429,
                           {"Retry-After": str(int(wait))})
        return None

    async def gate(request: Request) -> JSONResponse | None:
        """Origin and poll-rate checks shared by the HTTP endpoints."""
        if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), allowed):
            return refuse(request, "forbidden_origin", 403)
        limited = await shared_limit(request)
        if limited is not None:
            return limited
        wait = chat.limiter.take([("poll", client_ip(request), limits.poll)])
        if wait:
            seconds = min(wait, _MAX_RETRY_AFTER)
            return respond(request, {"frames": [error_frame("rate_limited", retry_after=seconds)]}, None, 429,
                           {"Retry-After": str(max(1, round(seconds)))})
        return None

    async def read_body(request: Request) -> bytes | None:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limits.max_frame_bytes:
            return None
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limits.max_frame_bytes:
                return None
            chunks.append(chunk)
        return b"".join(chunks)

    async def disconnected(request: Request) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    def page(name: str, request: Request) -> Response:
        host = request.headers.get("host", "")
        if not _HOST.fullmatch(host) or (hosts and host.lower() not in hosts and
                                         host.lower().rsplit(":", 1)[0] not in hosts):
            # the Host header goes into the page's CSP and the widget's server address
            return Response("unknown host", status_code=400, media_type="text/plain")
        here = str(request.url.replace(query=None, fragment=None))
        base = here.rsplit("/", 1)[0] if not here.endswith("/") else here.rstrip("/")
        body = files[name].body.decode().replace("__HAMROH_URL__", html.escape(base, quote=True))
        csp = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               f"connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'none'; "
               "frame-ancestors 'self'")
        return Response(body, media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    # ------------------------------------------------------------------ pages and files
    @router.get("/", include_in_schema=False)
    async def widget_page(request: Request) -> Response:
        """The chat as a full page, loaded by the same one-line tag an MRC website uses."""
        return page("index.html", request)

    @router.get("/demo", include_in_schema=False)
    async def embed_demo(request: Request) -> Response:
        """A sample MRC page with the floating chat button, and the line to copy."""
        return page("demo.html", request)

    @router.get("/static/web/{name:path}", include_in_schema=False)
    async def static_file(name: str, request: Request) -> Response:
        item: StaticFile | None = files.get(name)
        if item is None or name.endswith(".html"):
            return Response(status_code=404)
        headers = {"ETag": item.etag, "Cache-Control": "public, max-age=3600", "Vary": "Accept-Encoding",
                   "Access-Control-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
        if item.etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if item.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
            return Response(item.gzipped, media_type=item.media_type, headers={**headers, "Content-Encoding": "gzip"})
        return Response(item.body, media_type=item.media_type, headers=headers)

    # ------------------------------------------------------------------ HTTP fallback
    @router.options("/api/chat/{name}", include_in_schema=False)
    async def preflight(name: str, request: Request) -> Response:
        origin = request.headers.get("origin")
        known = name in ("session", "send", "poll", "history")
        if not known or not origin_allowed(origin, request.headers.get("host"), allowed):
            return Response(status_code=403)
        return Response(status_code=204, headers={
            **cors(request), "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": f"content-type, {TOKEN_HEADER}", "Access-Control-Max-Age": "600"})

    @router.post("/api/chat/session")
    async def chat_session(request: Request) -> JSONResponse:
        """Start (or, after "delete my data", replace) the anonymous session."""
        refused = await gate(request)
        if refused is not None:
            return refused
        raw = await read_body(request)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if raw is None or not isinstance(data, dict):
            return refuse(request, "bad_frame", 400)
        session = session_for(request, reset=bool(data.get("reset")))
        return respond(request, {"ok": True}, session)

    @router.post("/api/chat/send")
    async def chat_send(request: Request) -> JSONResponse:
        """One frame over plain HTTP; the answer comes back in the response."""
        if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), allowed):
            return refuse(request, "forbidden_origin", 403)
        limited = await shared_limit(request)
        if limited is not None:
            return limited
        raw = await read_body(request)
        if raw is None:
            return refuse(request, "too_long", 413)
        session = session_for(request)
        try:
            frame = _decode(raw, chat, languages)
            if frame.type not in ("message", "button", "command"):
                raise FrameError("bad_frame")
        except FrameError as exc:
            return respond(request, {"frames": [error_frame(exc.code, exc.client_id)]}, session,
                           _HTTP_STATUS.get(exc.code, 400))
        if frame.ack:
            await chat.ack(session.user_key, frame.ack)
        frames = await chat.handle(session.user_key, client_ip(request), frame, None)
        status, extra = 200, None
        if frames and frames[0]["type"] == "error":
            status = _HTTP_STATUS.get(frames[0]["code"], 400)
            if "retry_after" in frames[0]:
                extra = {"Retry-After": str(max(1, round(frames[0]["retry_after"])))}
        return respond(request, {"frames": frames}, session, status, extra)

    @router.get("/api/chat/history")
    async def chat_history(request: Request) -> JSONResponse:
        """The visitor's own conversation after a reload (their session only; nothing else)."""
        refused = await gate(request)
        if refused is not None:
            return refused
        session = session_for(request)
        reader = getattr(engine, "history", None)
        items = await reader(session.user_key) if reader is not None else []
        frames = [{"type": "history", "text": item} if direction == "in" else
                  {**reply_frame(Outgoing(None, session.user_key, "web", None, item)), "history": True}
                  for direction, item in items]
        return respond(request, {"frames": frames}, session)

    @router.get("/api/chat/poll")
    async def chat_poll(request: Request, wait: float = 0.0, ack: str = "") -> JSONResponse:
        """Acknowledge delivered replies, then wait (long-poll) for counsellor replies."""
        refused = await gate(request)
        if refused is not None:
            return refused
        session = session_for(request)
        try:
            ids = [int(i) for i in ack.split(",") if i][:200]
        except ValueError:
            return respond(request, {"frames": [error_frame("bad_frame")]}, session, 400)
        if ids:
            await chat.ack(session.user_key, ids)
        frames = await chat.pending_for(session.user_key)
        wait = max(0.0, min(wait, limits.long_poll_seconds))
        if not frames and wait > 0:
            queue = hub.subscribe(session.user_key)
            first = asyncio.ensure_future(queue.get())
            gone = asyncio.ensure_future(disconnected(request))
            try:
                # a phone that drops the long-poll frees its slot at once, not after ``wait`` seconds
                await asyncio.wait({first, gone}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
                if first.done() and not gone.done():
                    items = [first.result()]
                    await asyncio.sleep(0.05)  # replies stored together arrive together
                    while not queue.empty():
                        items.append(queue.get_nowait())
                    unique = list({o.id: o for o in items}.values())
                    chat.ledger.note(unique)
                    frames = [reply_frame(o) for o in unique]
            finally:
                first.cancel()
                gone.cancel()
                hub.unsubscribe(session.user_key, queue)
        return respond(request, {"frames": frames}, session)

    # ------------------------------------------------------------------ WebSocket
    @router.websocket("/ws/chat")
    async def ws_chat(websocket: WebSocket) -> None:
        """Frames both ways; the first client frame must be ``hello``."""
        host, origin = websocket.headers.get("host"), websocket.headers.get("origin")
        if not origin_allowed(origin, host, allowed):
            await websocket.close(code=1008)
            return
        ip = client_ip(websocket)
        # each open socket holds a file descriptor: 2,000 from one address went past the usual 1,024
        if open_sockets.get(ip, 0) >= ws_open_per_address or (
                limiter is not None and await limiter.hit("ws_connect", ip)):
            log.info("web: refused a WebSocket over the per-address limit")
            await websocket.close(code=1013)  # try again later
            return
        open_sockets[ip] = open_sockets.get(ip, 0) + 1
        try:
            await _ws_session(websocket, host, origin, ip)
        finally:
            open_sockets[ip] -= 1
            if open_sockets[ip] <= 0:
                del open_sockets[ip]

    async def _ws_session(websocket: WebSocket, host: str | None, origin: str | None, ip: str) -> None:
        cookie_ok = same_origin(origin, host)
        sid = signer.verify(websocket.cookies.get(COOKIE_NAME)) if cookie_ok else None
        headers: list[tuple[bytes, bytes]] | None = None
        if sid is None and cookie_ok:
            sid, token = signer.issue()
            secure = secure_cookies or websocket.url.scheme == "wss"
            headers = [(b"set-cookie", cookie_header(token, secure=secure, max_age=cookie_max_age).encode())]
        await websocket.accept(headers=headers)
        try:
            first = await asyncio.wait_for(websocket.receive(), limits.hello_timeout)
            raw = first.get("text") if first.get("type") == "websocket.receive" else None
            hello = _decode(raw, chat, languages) if raw is not None else None
        except (TimeoutError, FrameError, WebSocketDisconnect):
            hello = None
        if hello is None or hello.type != "hello":
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=1008)
            return
        if hello.token is not None or sid is None:
            sid = signer.verify(hello.token)
            if sid is None:
                sid, token = signer.issue()
                await websocket.send_text(_dumps({"type": "session", "token": token}))
        user_key = user_key_of(sid)
        del sid
        outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        pushed: set[int] = set()
        live = hub.subscribe(user_key)
        log.debug("web: a WebSocket opened")

        async def writer() -> None:
            while True:
                await websocket.send_text(_dumps(await outbox.get()))

        async def forward() -> None:
            while True:
                item = await live.get()
                if item.id is not None and item.id not in pushed:
                    pushed.add(item.id)
                    chat.ledger.note([item])
                    outbox.put_nowait(reply_frame(item))

        async def reader() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    raw = message.get("text")
                    if raw is None:
                        raise FrameError("bad_frame")
                    frame = _decode(raw, chat, languages)
                except FrameError as exc:
                    outbox.put_nowait(error_frame(exc.code, exc.client_id))
                    continue
                if frame.ack:
                    await chat.ack(user_key, frame.ack)
                if frame.type == "ping":
                    outbox.put_nowait({"type": "pong"})
                if frame.type not in ("message", "button", "command"):
                    continue
                for out in await chat.handle(user_key, ip, frame, hello.lang):
                    if out["type"] == "reply" and out["id"] is not None:
                        pushed.add(out["id"])
                    outbox.put_nowait(out)

        await websocket.send_text(_dumps({"type": "ready"}))
        tasks = [asyncio.create_task(t()) for t in (reader, writer, forward)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):  # the socket is gone either way
                    await task
            hub.unsubscribe(user_key, live)
            with contextlib.suppress(Exception):  # already closed by the browser
                await websocket.close()
            log.debug("web: a WebSocket closed")

    return router
