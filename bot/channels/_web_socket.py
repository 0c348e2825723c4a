"""The web chat's WebSocket: frames both ways, the first client frame a ``hello``.

Why three tasks per socket (reader, writer, forwarder): the person's own replies, a counsellor's
replies pushed by the hub, and pongs all go out through one queue and one writer, so two sends
never interleave on the socket; whichever task ends first (a disconnect) ends the session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from ._web_context import WebContext, dumps
from ._web_frames import ClientFrame, FrameError, error_frame, reply_frame
from ._web_session import COOKIE_NAME, cookie_header, same_origin

__all__ = ["SocketRoutes"]

log = logging.getLogger("hamroh.web")


class SocketRoutes:
    def __init__(self, ctx: WebContext) -> None:
        self.ctx = ctx

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_websocket_route("/ws/chat", self.ws_chat)
        return router

    async def ws_chat(self, websocket: WebSocket) -> None:
        """Frames both ways; the first client frame must be ``hello``."""
        ctx = self.ctx
        if not ctx.origin_ok(websocket):
            await websocket.close(code=1008)
            return
        ip = ctx.client_ip(websocket)
        # each open socket holds a file descriptor: 2,000 from one address went past the usual 1,024
        if ctx.open_sockets.get(ip, 0) >= ctx.ws_open_per_address or (
                ctx.limiter is not None and await ctx.limiter.hit("ws_connect", ip)):
            log.info("web: refused a WebSocket over the per-address limit")
            await websocket.close(code=1013)  # try again later
            return
        ctx.open_sockets[ip] = ctx.open_sockets.get(ip, 0) + 1
        try:
            await self._session(websocket, ip)
        finally:
            ctx.open_sockets[ip] -= 1
            if ctx.open_sockets[ip] <= 0:
                del ctx.open_sockets[ip]

    async def _accept(self, websocket: WebSocket) -> str | None:
        """Accept, with a new session cookie for a same-site visitor without one; the cookie's id."""
        ctx = self.ctx
        cookie_ok = same_origin(websocket.headers.get("origin"), websocket.headers.get("host"))
        sid = ctx.signer.verify(websocket.cookies.get(COOKIE_NAME)) if cookie_ok else None
        headers: list[tuple[bytes, bytes]] | None = None
        if sid is None and cookie_ok:
            sid, token = ctx.signer.issue()
            secure = ctx.secure_cookies or websocket.url.scheme == "wss"
            headers = [(b"set-cookie", cookie_header(token, secure=secure, max_age=ctx.cookie_max_age).encode())]
        await websocket.accept(headers=headers)
        return sid

    async def _hello(self, websocket: WebSocket) -> ClientFrame | None:
        try:
            first = await asyncio.wait_for(websocket.receive(), self.ctx.limits.hello_timeout)
            raw = first.get("text") if first.get("type") == "websocket.receive" else None
            hello = self.ctx.decode(raw) if raw is not None else None
        except (TimeoutError, FrameError, WebSocketDisconnect):
            hello = None
        return hello if hello is not None and hello.type == "hello" else None

    async def _session(self, websocket: WebSocket, ip: str) -> None:
        ctx = self.ctx
        sid = await self._accept(websocket)
        hello = await self._hello(websocket)
        if hello is None:
            with contextlib.suppress(RuntimeError):
                await websocket.close(code=1008)
            return
        if hello.token is not None or sid is None:
            sid = ctx.signer.verify(hello.token)
            if sid is None:
                sid, token = ctx.signer.issue()
                await websocket.send_text(dumps({"type": "session", "token": token}))
        user_key = ctx.user_key_of(sid)
        del sid
        log.debug("web: a WebSocket opened")
        await _Conversation(ctx, websocket, user_key, ip, hello.lang).run()
        log.debug("web: a WebSocket closed")


class _Conversation:
    """One open socket's three tasks; see the module docstring."""

    def __init__(self, ctx: WebContext, websocket: WebSocket, user_key: str, ip: str, lang: str | None) -> None:
        self.ctx, self.websocket, self.user_key, self.ip, self.lang = ctx, websocket, user_key, ip, lang
        self.outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.pushed: set[int] = set()
        self.live = ctx.hub.subscribe(user_key)

    async def writer(self) -> None:
        while True:
            await self.websocket.send_text(dumps(await self.outbox.get()))

    async def forward(self) -> None:
        while True:
            item = await self.live.get()
            if item.id is not None and item.id not in self.pushed:
                self.pushed.add(item.id)
                self.ctx.chat.ledger.note([item])
                self.outbox.put_nowait(reply_frame(item))

    async def reader(self) -> None:
        while True:
            message = await self.websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            try:
                raw = message.get("text")
                if raw is None:
                    raise FrameError("bad_frame")
                frame = self.ctx.decode(raw)
            except FrameError as exc:
                self.outbox.put_nowait(error_frame(exc.code, exc.client_id))
                continue
            await self._frame(frame)

    async def _frame(self, frame: ClientFrame) -> None:
        if frame.ack:
            await self.ctx.chat.ack(self.user_key, frame.ack)
        if frame.type == "ping":
            self.outbox.put_nowait({"type": "pong"})
        if frame.type not in ("message", "button", "command"):
            return
        for out in await self.ctx.chat.handle(self.user_key, self.ip, frame, self.lang):
            if out["type"] == "reply" and out["id"] is not None:
                self.pushed.add(out["id"])
            self.outbox.put_nowait(out)

    async def run(self) -> None:
        await self.websocket.send_text(dumps({"type": "ready"}))
        tasks = [asyncio.create_task(t()) for t in (self.reader, self.writer, self.forward)]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):  # the socket is gone either way
                    await task
            self.ctx.hub.unsubscribe(self.user_key, self.live)
            with contextlib.suppress(Exception):  # already closed by the browser
                await self.websocket.close()
