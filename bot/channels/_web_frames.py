"""The web chat's JSON frames: validating what a browser sends, rendering what the engine replies.

Why one module for both transports: the WebSocket and the HTTP fallback speak exactly the same
frames, so the widget has a single code path for rendering and the tests cover both at once.
Validation is strict and cheap (types, lengths, a closed set of commands) because everything in a
frame comes from an anonymous stranger.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.engine import Outgoing

__all__ = [
    "COMMANDS",
    "ClientFrame",
    "FrameError",
    "error_frame",
    "parse_client_frame",
    "reply_frame",
    "safe_url",
]

COMMANDS = frozenset({"start", "delete", "human", "language", "help"})
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_PAYLOAD_MAX_BYTES = 64  # Telegram's callback_data limit: the engine's payloads never exceed it
MAX_ACK_IDS = 200

FrameType = Literal["hello", "message", "button", "command", "ack", "ping"]


@dataclass(frozen=True)
class ClientFrame:
    """One validated frame from the browser."""

    type: FrameType
    id: str | None = None
    text: str | None = None
    payload: str | None = None
    command: str | None = None
    lang: str | None = None
    token: str | None = None
    ack: tuple[int, ...] = ()


class FrameError(ValueError):
    """The frame is refused; ``code`` is what the widget shows (localised on the client)."""

    def __init__(self, code: str, client_id: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.client_id = client_id


def _ack_ids(value: Any) -> tuple[int, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ACK_IDS:
        raise FrameError("bad_frame")
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in value):
        raise FrameError("bad_frame")
    return tuple(value)


def parse_client_frame(data: Any, *, max_text_chars: int, languages: Collection[str]) -> ClientFrame:
    """Validate one decoded JSON frame; raise :class:`FrameError` with a code the widget understands."""
    if not isinstance(data, Mapping):
        raise FrameError("bad_frame")
    kind = data.get("type")
    raw_id = data.get("id")
    client_id = raw_id if isinstance(raw_id, str) and _CLIENT_ID.match(raw_id) else None
    lang = data.get("lang")
    lang = lang if isinstance(lang, str) and lang in languages else None
    ack = _ack_ids(data.get("ack"))
    if kind == "ack":
        return ClientFrame("ack", ack=_ack_ids(data.get("ids")) + ack)
    if kind == "ping":
        return ClientFrame("ping")
    if kind == "hello":
        token = data.get("token")
        return ClientFrame("hello", lang=lang, token=token if isinstance(token, str) else None)
    if kind not in ("message", "button", "command"):
        raise FrameError("bad_frame")
    if client_id is None:
        raise FrameError("bad_frame")
    if kind == "message":
        text = data.get("text")
        if not isinstance(text, str):
            raise FrameError("bad_frame", client_id)
        if len(text) > max_text_chars:
            raise FrameError("too_long", client_id)
        if not text.strip():
            raise FrameError("empty", client_id)
        return ClientFrame("message", id=client_id, text=text, lang=lang, ack=ack)
    if kind == "button":
        payload = data.get("payload")
        if not isinstance(payload, str) or not payload or len(payload.encode()) > _PAYLOAD_MAX_BYTES:
            raise FrameError("bad_frame", client_id)
        return ClientFrame("button", id=client_id, payload=payload, lang=lang, ack=ack)
    command = data.get("command")
    if command not in COMMANDS:
        raise FrameError("bad_frame", client_id)
    return ClientFrame("command", id=client_id, command=str(command), lang=lang, ack=ack)


def safe_url(url: str | None) -> str | None:
    """Only ``http(s)`` links reach the page: a ``javascript:`` source must never become a link."""
    if not url:
        return None
    lowered = url.strip().lower()
    if lowered.startswith(("https://", "http://")) and not any(c in url for c in "\r\n\t <>\"'`"):
        return url.strip()
    return None


def reply_frame(out: Outgoing, *, in_reply_to: str | None = None) -> dict[str, Any]:
    """The ``Reply`` as JSON; ``id`` is the outbox id the widget acknowledges (``None``: nothing stored)."""
    r = out.reply
    return {
        "type": "reply",
        "id": out.id,
        "in_reply_to": in_reply_to,
        "kind": r.kind,
        "text": r.text,
        "lang": r.lang,
        "buttons": [[{"label": b.label, "payload": b.payload} for b in row] for row in r.buttons],
        "source_title": r.source_title,
        "source_url": safe_url(r.source_url),
        "reviewed_on": r.reviewed_on.isoformat() if r.reviewed_on else None,
        "reviewed_label": r.reviewed_label,
        "sources": [{"title": title, "url": safe_url(url)} for title, url in r.sources],
        "entry_id": r.entry_id,
        "fell_back": r.fell_back,
        "extra": dict(r.extra),
    }


def error_frame(code: str, client_id: str | None = None, *, retry_after: float | None = None) -> dict[str, Any]:
    """A refusal the widget shows in the user's language; it never echoes what was sent."""
    frame: dict[str, Any] = {"type": "error", "code": code, "id": client_id}
    if retry_after is not None:
        frame["retry_after"] = round(retry_after, 1)
    return frame
