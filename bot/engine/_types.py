"""Channel-neutral messages in and out of the conversation engine.

A channel adapter (Telegram, web chat) turns what it receives into an ``IncomingMessage`` and
renders each ``Reply`` in its own way (Telegram: HTML-escaped text and inline keyboards; web:
JSON). The engine never sees a channel object and a channel never decides what to say.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from handoff import MediaRef

__all__ = ["AttachmentKind", "Button", "IncomingMessage", "Reply", "ReplyKind"]

AttachmentKind = Literal["voice", "photo", "file", "sticker", "video", "location", "other"]
ReplyKind = Literal[
    "consent", "language", "welcome", "answer", "clarify", "handoff", "crisis", "ticket_opened",
    "counsellor_has_it", "counsellor", "smalltalk", "feedback", "attachment", "help", "delete_confirm",
    "delete_cancelled",
    "deleted", "profile", "error",
    # second release
    "menu", "no_answer", "offer_human", "ask", "status", "location", "declined",
]


@dataclass(frozen=True)
class IncomingMessage:
    """One thing a user did: a text, an attachment, a button press or a command."""

    channel: str  # "telegram" | "web"
    user_key: str  # pseudonymous: keyed hash of the channel's user id (see bot.privacy)
    message_id: str  # the channel's id for this update: redeliveries carry the same id
    text: str | None = None
    attachment: AttachmentKind | None = None
    callback: str | None = None  # payload of a pressed button, e.g. "lang:ru", "fb:down:ru-patent"
    command: str | None = None  # "start", "language", "human", "delete", "help"
    client_lang: str | None = None  # the language the client reports (Telegram language_code)
    #: a shared location's country (ISO code), when the channel could tell it
    location_country: str | None = None
    #: what a counsellor reads of an attachment: "[voice, 14 s]"
    attachment_note: str | None = None
    #: the channel's handle of a voice note, photo or file (Telegram's file_id, its type and length),
    #: kept with the ticket line so the console can fetch the file when a counsellor opens it
    attachment_ref: MediaRef | None = None


@dataclass(frozen=True)
class Button:
    label: str
    payload: str  # at most 64 bytes (Telegram's callback_data limit)


@dataclass(frozen=True)
class Reply:
    """What the user should see; ``text`` is plain text (channels escape it)."""

    kind: ReplyKind
    text: str
    lang: str
    buttons: tuple[tuple[Button, ...], ...] = ()  # rows of buttons
    source_title: str | None = None
    source_url: str | None = None
    reviewed_on: dt.date | None = None
    entry_id: str | None = None
    fell_back: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    #: every source of an answer once: (title in the reader's language, url)
    sources: tuple[tuple[str, str], ...] = ()
    #: "Checked on 7 December 2026", in the reader's language and date format
    reviewed_label: str | None = None
    #: the answer's topic id (for follow-ups, feedback and the evaluation)
    topic: str | None = None
