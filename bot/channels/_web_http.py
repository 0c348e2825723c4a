"""The web chat's pages, static files and plain-HTTP fallback (send, poll, history, session).

Why HTTP beside the WebSocket: where a proxy or a captive portal breaks WebSockets, the same JSON
frames go over ``POST /api/chat/send`` and a long-polled ``GET /api/chat/poll``; client-generated
message ids make a phone's retries on 2G safe.
"""

from __future__ import annotations

import asyncio
import html
import json

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from bot.engine import Outgoing

from ._web_context import HOST, HTTP_STATUS, WebContext
from ._web_frames import FrameError, error_frame, reply_frame
from ._web_session import TOKEN_HEADER
from ._web_static import static_app

__all__ = ["HttpRoutes", "PageRoutes"]

_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws://{host} wss://{host}; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")


class PageRoutes:
    """The chat as a page, the embed demo, and the widget's files."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def router(self) -> APIRouter:
        router = APIRouter(include_in_schema=False)
        router.add_api_route("/", self.widget_page, methods=["GET"])
        router.add_api_route("/demo", self.embed_demo, methods=["GET"])
        router.mount("/static/web", static_app(self.ctx.static_dir))
        return router

    def _page(self, name: str, request: Request) -> Response:
        host = request.headers.get("host", "")
        hosts = self.ctx.hosts
        if not HOST.fullmatch(host) or (hosts and host.lower() not in hosts and
                                        host.lower().rsplit(":", 1)[0] not in hosts):
            # the Host header goes into the page's CSP and the widget's server address
            return Response("unknown host", status_code=400, media_type="text/plain")
        here = str(request.url.replace(query=None, fragment=None))
        base = here.rsplit("/", 1)[0] if not here.endswith("/") else here.rstrip("/")
        body = self.ctx.files[name].body.decode().replace("__HAMROH_URL__", html.escape(base, quote=True))
        return Response(body, media_type="text/html; charset=utf-8", headers={
            "Content-Security-Policy": _CSP.format(host=host), "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"})

    async def widget_page(self, request: Request) -> Response:
        """The chat as a full page, loaded by the same one-line tag an MRC website uses."""
        return self._page("index.html", request)

    async def embed_demo(self, request: Request) -> Response:
        """A sample MRC page with the floating chat button, and the line to copy."""
        return self._page("demo.html", request)


class HttpRoutes:
    """``/api/chat/*``: the same frames as the WebSocket, over plain HTTP."""

    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/api/chat/{name}", self.preflight, methods=["OPTIONS"], include_in_schema=False)
        router.add_api_route("/api/chat/session", self.session, methods=["POST"])
        router.add_api_route("/api/chat/send", self.send, methods=["POST"])
        router.add_api_route("/api/chat/history", self.history, methods=["GET"])
        router.add_api_route("/api/chat/poll", self.poll, methods=["GET"])
        return router

    async def preflight(self, name: str, request: Request) -> Response:
        known = name in ("session", "send", "poll", "history")
        if not known or not self.ctx.origin_ok(request):
            return Response(status_code=403)
        return Response(status_code=204, headers={
            **self.ctx.cors(request), "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": f"content-type, {TOKEN_HEADER}", "Access-Control-Max-Age": "600"})

    async def session(self, request: Request) -> JSONResponse:
        """Start (or, after "delete my data", replace) the anonymous session."""
        ctx = self.ctx
        refused = await ctx.gate(request)
        if refused is not None:
            return refused
        raw = await ctx.read_body(request)
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = None
        if raw is None or not isinstance(data, dict):
            return ctx.refuse(request, "bad_frame", 400)
        return ctx.respond(request, {"ok": True}, ctx.session_for(request, reset=bool(data.get("reset"))))

    async def send(self, request: Request) -> JSONResponse:
        """One frame over plain HTTP; the answer comes back in the response."""
        ctx = self.ctx
        if not ctx.origin_ok(request):
            return ctx.refuse(request, "forbidden_origin", 403)
        limited = await ctx.shared_limit(request)
        if limited is not None:
            return limited
        raw = await ctx.read_body(request)
        if raw is None:
            return ctx.refuse(request, "too_long", 413)
        session = ctx.session_for(request)
        try:
            frame = ctx.decode(raw)
            if frame.type not in ("message", "button", "command"):
                raise FrameError("bad_frame")
        except FrameError as exc:
            return ctx.respond(request, {"frames": [error_frame(exc.code, exc.client_id)]}, session,
                               HTTP_STATUS.get(exc.code, 400))
        if frame.ack:
            await ctx.chat.ack(session.user_key, frame.ack)
        frames = await ctx.chat.handle(session.user_key, ctx.client_ip(request), frame, None)
        status, extra = 200, None
        if frames and frames[0]["type"] == "error":
            status = HTTP_STATUS.get(frames[0]["code"], 400)
            if "retry_after" in frames[0]:
                extra = {"Retry-After": str(max(1, round(frames[0]["retry_after"])))}
        return ctx.respond(request, {"frames": frames}, session, status, extra)

    async def history(self, request: Request) -> JSONResponse:
        """The visitor's own conversation after a reload (their session only; nothing else)."""
        ctx = self.ctx
        refused = await ctx.gate(request)
        if refused is not None:
            return refused
        session = ctx.session_for(request)
        reader = getattr(ctx.engine, "history", None)
        items = await reader(session.user_key) if reader is not None else []
        frames = [{"type": "history", "text": item} if direction == "in" else
                  {**reply_frame(Outgoing(None, session.user_key, "web", None, item)), "history": True}
                  for direction, item in items]
        return ctx.respond(request, {"frames": frames}, session)

    async def poll(self, request: Request, wait: float = 0.0, ack: str = "") -> JSONResponse:
        """Acknowledge delivered replies, then wait (long-poll) for counsellor replies."""
        ctx = self.ctx
        refused = await ctx.gate(request)
        if refused is not None:
            return refused
        session = ctx.session_for(request)
        try:
            ids = [int(i) for i in ack.split(",") if i][:200]
        except ValueError:
            return ctx.respond(request, {"frames": [error_frame("bad_frame")]}, session, 400)
        if ids:
            await ctx.chat.ack(session.user_key, ids)
        frames = await ctx.chat.pending_for(session.user_key)
        wait = max(0.0, min(wait, ctx.limits.long_poll_seconds))
        if not frames and wait > 0:
            frames = await self._wait_for_replies(request, session.user_key, wait)
        return ctx.respond(request, {"frames": frames}, session)

    async def _wait_for_replies(self, request: Request, user_key: str, wait: float) -> list[dict[str, object]]:
        queue = self.ctx.hub.subscribe(user_key)
        first = asyncio.ensure_future(queue.get())
        gone = asyncio.ensure_future(_disconnected(request))
        try:
            # a phone that drops the long-poll frees its slot at once, not after ``wait`` seconds
            await asyncio.wait({first, gone}, timeout=wait, return_when=asyncio.FIRST_COMPLETED)
            if not first.done() or gone.done():
                return []
            items: list[Outgoing] = [first.result()]
            await asyncio.sleep(0.05)  # replies stored together arrive together
            while not queue.empty():
                items.append(queue.get_nowait())
            unique = list({o.id: o for o in items}.values())
            self.ctx.chat.ledger.note(unique)
            return [reply_frame(o) for o in unique]
        finally:
            first.cancel()
            gone.cancel()
            self.ctx.hub.unsubscribe(user_key, queue)


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
