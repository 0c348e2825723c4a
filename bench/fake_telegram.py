"""A local fake of the Telegram Bot API, served over real HTTP for the real python-telegram-bot client.

Why a fake server and not a mocked ``Bot``: the things that break in production are in the real
client's path — form encoding of ``reply_markup``, HTML that Telegram refuses ("can't parse
entities"), texts over 4096, 429 handling, the token in the URL. The fake parses HTML the way
Telegram documents it and rejects what Telegram rejects, records every call, serves queued updates
to ``getUpdates`` (a redelivery is the same update queued again), and answers 429 on demand.

It runs uvicorn in a thread on 127.0.0.1 with a random port, so the test's event loop and the
server's never block each other. It lives in ``bench`` because two kinds of callers share it: the
Telegram tests (an application in the test's own process) and the benches that drive the real
``hamroh serve`` in a subprocess (``bench.kill_bench``, ``bench.walk --telegram``); one fake, so a
Bot API behaviour the tests check is the one the benches meet.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import threading
import time
from collections import deque
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

__all__ = ["BOT_ID", "TOKEN", "FakeBotApi", "callback_update", "message_update", "telegram_html_problem"]

BOT_ID = 5550001
TOKEN = f"{BOT_ID}:AAE-fake_Token-for-tests-only-0123456789"
_JSON_PARAMS = {"reply_markup", "allowed_updates", "link_preview_options", "entities", "reply_parameters"}
_ALLOWED_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre",
                 "tg-spoiler", "span", "blockquote", "tg-emoji"}
_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_TOKEN_RE = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9-]*)(\s[^<>]*)?>|&(#\d+|#x[0-9a-fA-F]+|[a-zA-Z]+);|[<>&]")


def telegram_html_problem(text: str) -> tuple[str | None, str]:
    """``(error, visible_text)`` for ``parse_mode=HTML`` as Telegram documents it.

    All ``<``, ``>`` and ``&`` outside tags and entities must be escaped; only the documented tags
    and the four named entities are accepted; tags must nest.
    """
    stack: list[str] = []
    visible: list[str] = []
    pos = 0
    for match in _TOKEN_RE.finditer(text):
        visible.append(text[pos:match.start()])
        pos = match.end()
        token = match.group(0)
        if match.group(2):
            closing, tag = match.group(1) == "/", match.group(2).lower()
            if tag not in _ALLOWED_TAGS:
                return f"Unsupported start tag \"{tag}\" at byte offset {match.start()}", ""
            if closing:
                if not stack or stack.pop() != tag:
                    return f"Unmatched end tag at byte offset {match.start()}", ""
            else:
                stack.append(tag)
        elif match.group(4):
            name = match.group(4)
            if name.startswith("#"):
                visible.append(html.unescape(token))
            elif name in _ENTITIES:
                visible.append(_ENTITIES[name])
            else:
                return f"Unsupported entity at byte offset {match.start()}", ""
        else:
            return f"Unexpected character at byte offset {match.start()}", ""
    visible.append(text[pos:])
    if stack:
        return "Can't find end tag corresponding to start tag " + stack[-1], ""
    return None, "".join(visible)


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def message_update(update_id: int, user_id: int, text: str | None = None, *, chat_type: str = "private",
                   language_code: str | None = "ru", with_from: bool = True, **content: Any) -> dict[str, Any]:
    """An update carrying a message, as Telegram sends it (the private chat's id is the user's id)."""
    message: dict[str, Any] = {"message_id": update_id % 100000 + 1, "date": int(time.time()),
                               "chat": {"id": user_id if chat_type == "private" else -user_id, "type": chat_type}}
    if with_from:
        sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Test"}
        if language_code:
            sender["language_code"] = language_code
        message["from"] = sender
    if text is not None:
        message["text"] = text
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
    message.update(content)
    return {"update_id": update_id, "message": message}


def callback_update(update_id: int, user_id: int, data: str | None, *, query_id: str | None = None,
                    with_message: bool = True, language_code: str | None = "ru") -> dict[str, Any]:
    """An update for a pressed inline button under one of the bot's messages."""
    sender: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": "Test"}
    if language_code:
        sender["language_code"] = language_code
    query: dict[str, Any] = {"id": query_id or f"q{update_id}", "chat_instance": "ci1", "from": sender}
    if data is not None:
        query["data"] = data
    if with_message:
        query["message"] = {"message_id": 7, "date": int(time.time()), "chat": {"id": user_id, "type": "private"},
                            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hamroh"}, "text": "…"}
    return {"update_id": update_id, "callback_query": query}


class FakeBotApi:
    """The fake server: start once per session, ``reset()`` per test."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self._lock = threading.Lock()
        self._updates: deque[dict[str, Any]] = deque()
        self._failures: dict[str, deque[tuple[int, dict[str, Any]]]] = {}
        self.calls: list[dict[str, Any]] = []
        self.webhook: dict[str, Any] | None = None
        self._next_message_id = 1000
        self._generation = 0
        #: files the bot "received": file_id -> (file_path, bytes), served by getFile and /file/bot<token>/
        self.files: dict[str, tuple[str, bytes]] = {}
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # ------------------------------------------------------------------ control (test side)
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def start(self) -> None:
        app = Starlette(routes=[Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                                Route("/file/bot{token}/{path:path}", self._download, methods=["GET"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", access_log=False,
                                lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-bot-api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake Bot API server did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._updates.clear()
            self._failures.clear()
            self.calls = []
            self.webhook = None
            self.files = {}

    def push(self, *updates: dict[str, Any]) -> None:
        """Queue updates for ``getUpdates``; pushing one again is Telegram redelivering it."""
        with self._lock:
            self._updates.extend(json.loads(json.dumps(u)) for u in updates)

    def add_file(self, file_id: str, content: bytes, *, path: str | None = None) -> None:
        """A file the bot received (a voice note, a photo): getFile names it, the download serves it."""
        with self._lock:
            self.files[file_id] = (path or f"files/{file_id}.bin", content)

    def queued(self) -> int:
        with self._lock:
            return len(self._updates)

    def fail_next(self, method: str, times: int = 1, *, status: int = 429, retry_after: int = 1,
                  description: str | None = None) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (429 with ``retry_after`` by default)."""
        if status == 429:
            body: dict[str, Any] = {"ok": False, "error_code": 429,
                                    "description": description or f"Too Many Requests: retry after {retry_after}",
                                    "parameters": {"retry_after": retry_after}}
        else:
            body = {"ok": False, "error_code": status, "description": description or "Bad Request: failed"}
        with self._lock:
            self._failures.setdefault(method, deque()).extend([(status, body)] * times)

    def calls_to(self, method: str, *, ok: bool | None = True) -> list[dict[str, Any]]:
        """Recorded calls of ``method``; by default only those the fake accepted."""
        with self._lock:
            return [c for c in self.calls if c["method"] == method and (ok is None or c["ok"] == ok)]

    def sent(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """Accepted ``sendMessage`` parameters, in order, optionally for one chat."""
        return [c["params"] for c in self.calls_to("sendMessage")
                if chat_id is None or c["params"].get("chat_id") == chat_id]

    def rejected(self) -> list[dict[str, Any]]:
        """Calls the fake refused for being invalid (not the injected failures)."""
        with self._lock:
            return [c for c in self.calls if not c["ok"] and not c.get("injected")]

    # ------------------------------------------------------------------ server side
    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query_params)
        if request.method == "POST":
            if request.headers.get("content-type", "").startswith("application/json"):
                params.update(await request.json())
            else:
                form = await request.form()
                params.update({k: v for k, v in form.items() if isinstance(v, str)})
        for key in _JSON_PARAMS & params.keys():
            if isinstance(params[key], str):
                params[key] = json.loads(params[key])
        chat_id = params.get("chat_id")
        if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
            params["chat_id"] = int(chat_id)
        return params

    def _record(self, method: str, params: dict[str, Any], ok: bool, injected: bool = False) -> None:
        with self._lock:
            self.calls.append({"method": method, "params": params, "ok": ok, "injected": injected,
                               "at": time.monotonic()})

    async def _endpoint(self, request: Request) -> JSONResponse:
        method = request.path_params["method"]
        if request.path_params["token"] != self.token:
            return JSONResponse({"ok": False, "error_code": 401, "description": "Unauthorized"}, status_code=401)
        params = await self._params(request)
        with self._lock:
            queue = self._failures.get(method)
            failure = queue.popleft() if queue else None
        if failure is not None:
            self._record(method, params, ok=False, injected=True)
            return JSONResponse(failure[1], status_code=failure[0])
        handler = getattr(self, f"_api_{method}", None)
        if handler is None:
            self._record(method, params, ok=False)
            return JSONResponse({"ok": False, "error_code": 404, "description": "Not Found"}, status_code=404)
        if method == "getUpdates":  # long polling: recorded after, with what was served
            result = await handler(params, request)
            return JSONResponse({"ok": True, "result": result})
        try:
            result = handler(params)
        except _ApiError as exc:
            self._record(method, params, ok=False)
            return JSONResponse({"ok": False, "error_code": exc.code, "description": exc.description},
                                status_code=exc.code)
        self._record(method, params, ok=True)
        return JSONResponse({"ok": True, "result": result})

    async def _download(self, request: Request) -> Response:
        """``GET /file/bot<token>/<file_path>``: the bytes of a file getFile named."""
        path = request.path_params["path"]
        if request.path_params["token"] != self.token:
            return Response(status_code=401)
        with self._lock:
            found = next((content for p, content in self.files.values() if p == path), None)
        self._record("download", {"file_path": path}, ok=found is not None)
        if found is None:
            return Response(status_code=404)
        return Response(found, media_type="application/octet-stream")

    def _api_getFile(self, params: dict[str, Any]) -> dict[str, Any]:
        file_id = params.get("file_id")
        with self._lock:
            found = self.files.get(file_id) if isinstance(file_id, str) else None
        if found is None:
            raise _ApiError(400, "Bad Request: invalid file_id")
        path, content = found
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content), "file_path": path}

    def _api_setMyCommands(self, params: dict[str, Any]) -> bool:
        return True

    def _api_getMe(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"id": BOT_ID, "is_bot": True, "first_name": "Hamroh", "username": "hamroh_test_bot",
                "can_join_groups": False, "can_read_all_group_messages": False, "supports_inline_queries": False}

    def _check_text(self, params: dict[str, Any]) -> str:
        text = params.get("text")
        if not isinstance(text, str) or not text.strip():
            raise _ApiError(400, "Bad Request: message text is empty")
        visible = text
        if str(params.get("parse_mode", "")).upper() == "HTML":
            problem, visible = telegram_html_problem(text)
            if problem:
                raise _ApiError(400, f"Bad Request: can't parse entities: {problem}")
        if _utf16(visible) > 4096:
            raise _ApiError(400, "Bad Request: message is too long")
        markup = params.get("reply_markup")
        if markup is not None:
            for row in markup.get("inline_keyboard", []):
                for button in row:
                    data = button.get("callback_data")
                    if data is not None and not 1 <= len(data.encode()) <= 64:
                        raise _ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return visible

    def _message(self, params: dict[str, Any], visible: str) -> dict[str, Any]:
        with self._lock:
            self._next_message_id += 1
            message_id = self._next_message_id
        return {"message_id": message_id, "date": int(time.time()),
                "chat": {"id": params.get("chat_id"), "type": "private"},
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Hamroh"}, "text": visible}

    def _api_sendMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        if "chat_id" not in params:
            raise _ApiError(400, "Bad Request: chat_id is empty")
        return self._message(params, self._check_text(params))

    def _api_editMessageText(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, self._check_text(params))

    def _api_editMessageReplyMarkup(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._message(params, "…")

    def _api_sendChatAction(self, params: dict[str, Any]) -> bool:
        if "chat_id" not in params or not params.get("action"):
            raise _ApiError(400, "Bad Request: chat_id or action is empty")
        return True

    def _api_deleteMessage(self, params: dict[str, Any]) -> bool:
        return True

    def _api_answerCallbackQuery(self, params: dict[str, Any]) -> bool:
        if not params.get("callback_query_id"):
            raise _ApiError(400, "Bad Request: query is too old and response timeout expired or query ID is invalid")
        return True

    def _api_setWebhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self.webhook = params
        return True

    def _api_deleteWebhook(self, params: dict[str, Any]) -> bool:
        with self._lock:
            self.webhook = None
        return True

    def _api_getWebhookInfo(self, params: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            url = (self.webhook or {}).get("url", "")
        return {"url": url, "has_custom_certificate": False, "pending_update_count": 0}

    def _api_close(self, params: dict[str, Any]) -> bool:
        return True

    async def _api_getUpdates(self, params: dict[str, Any], request: Request) -> list[dict[str, Any]]:
        limit = int(params.get("limit", 100) or 100)
        timeout = min(float(params.get("timeout", 0) or 0), 2.0)
        deadline = time.monotonic() + timeout
        generation = self._generation
        while True:
            # a client that went away (a stopped test bot) must not take the next test's updates
            if generation != self._generation or await request.is_disconnected():
                return []
            with self._lock:
                batch = [self._updates.popleft() for _ in range(min(limit, len(self._updates)))]
            if batch or time.monotonic() >= deadline:
                self._record("getUpdates", {**params, "served": len(batch)}, ok=True)
                return batch
            await asyncio.sleep(0.01)


class _ApiError(Exception):
    def __init__(self, code: int, description: str) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
