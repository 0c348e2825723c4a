"""A small in-memory ConversationPort that keeps the real engine's delivery contract.

Why a fake at all: the channel's own behaviour (frames, sessions, limits, acknowledgements) must be
testable in milliseconds and without the model; ``test_web_engine.py`` repeats the essentials
against the real ``bot.engine.ConversationEngine``. What it mirrors from the real engine: nothing
is stored before consent (replies carry ``id=None``), a redelivered message id returns only its
still-unsent replies, ``pending`` lists unsent replies oldest first, erasure drops everything.
"""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

from bot.engine import Button, IncomingMessage, Outgoing, Reply

__all__ = ["LANGS", "FakeConversation"]

LANGS = ("en", "ru", "uz", "ky", "tg", "kk", "bn", "ur", "ar", "ckb", "si", "ta", "ps", "prs")
_TEXT = {
    "en": {"consent": "Hello! I am Hamroh. Before we start: we keep your messages so we can help. "
                      "Please choose your language to agree and continue.",
           "welcome": "Thank you. Write your question in your own words.",
           "answer": "To work legally you need a work permit (patent). You asked: {q}",
           "title": "Work permit (patent)",
           "thanks": "Thank you for your feedback.", "ticket": "A counsellor will reply to you here.",
           "confirm": "This will erase all your messages. Are you sure?", "yes": "Yes, erase everything",
           "no": "No", "deleted": "Everything about you has been erased.", "human": "Talk to a counsellor",
           "language": "Your language is now English."},
    "ar": {"consent": "مرحبًا! أنا همراه. قبل أن نبدأ: نحفظ رسائلك لنساعدك. اختر لغتك للموافقة والمتابعة.",
           "welcome": "شكرًا لك. اكتب سؤالك بكلماتك.",
           "answer": "للعمل بشكل قانوني تحتاج إلى تصريح عمل. سألت: {q}",
           "title": "تصريح العمل",
           "thanks": "شكرًا على رأيك.", "ticket": "سيرد عليك مستشار هنا.",
           "confirm": "سيتم حذف كل رسائلك. هل أنت متأكد؟", "yes": "نعم، احذف كل شيء", "no": "لا",
           "deleted": "تم حذف كل شيء عنك.", "human": "تحدث مع مستشار", "language": "لغتك الآن العربية."},
}
NAMES = {"en": "English", "ru": "Русский", "uz": "Oʻzbekcha", "ky": "Кыргызча", "tg": "Тоҷикӣ", "kk": "Қазақша",
         "bn": "বাংলা", "ur": "اردو", "ar": "العربية", "ckb": "کوردی", "si": "සිංහල", "ta": "தமிழ்",
         "ps": "پښتو", "prs": "دری"}
SOURCE_URL = "https://migration.example.org/patent"
REVIEWED = dt.date(2025, 3, 14)


def _t(lang: str, key: str) -> str:
    return _TEXT.get(lang, _TEXT["en"])[key]


@dataclass
class _Item:
    out: Outgoing
    ref: str
    sent: bool = False


@dataclass
class FakeConversation:
    """Implements ``ConversationPort``; thread-safe so a test can inject while uvicorn serves."""

    source_url: str = SOURCE_URL
    handled: list[IncomingMessage] = field(default_factory=list)
    marked: list[int] = field(default_factory=list)
    users: dict[str, str] = field(default_factory=dict)  # user key -> language (exists after consent)
    fail_next: bool = False
    _items: list[_Item] = field(default_factory=list)
    _seen: set[str] = field(default_factory=set)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # ------------------------------------------------------------------ ConversationPort
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        with self._lock:
            if self.fail_next:
                self.fail_next = False
                raise RuntimeError("database is down")
            self.handled.append(message)
            key = f"{message.channel}:{message.message_id}"
            if key in self._seen:
                return [i.out for i in self._items if i.ref == message.message_id and not i.sent]
            self._seen.add(key)
            lang = self.users.get(message.user_key)
            if lang is None:
                return self._before_consent(message)
            replies, stored = self._dispatch(message, lang)
            if not stored:
                return [Outgoing(None, message.user_key, message.channel, None, r) for r in replies]
            return [self._store(message.user_key, message.message_id, r) for r in replies]

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        with self._lock:
            for item in self._items:
                if item.out.id in outbox_ids:
                    item.sent = True
            self.marked.extend(outbox_ids)

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        return [o for o in await self.pending(channel, limit=limit) if o.id not in set(exclude)]

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        with self._lock:
            return [i.out for i in self._items if i.out.channel == channel and not i.sent
                    and (user_keys is None or i.out.user_key in user_keys)][:limit]

    # ------------------------------------------------------------------ test helpers
    def inject_counsellor(self, user_key: str, text: str) -> int:
        """What the console does when a counsellor replies: an unsent outbox item."""
        with self._lock:
            lang = self.users.get(user_key, "en")
            out = self._store(user_key, f"counsellor:{len(self._items)}",
                              Reply("counsellor", f"Counsellor Dilnoza:\n{text}", lang))
            assert out.id is not None
            return out.id

    def unsent(self) -> list[Outgoing]:
        with self._lock:
            return [i.out for i in self._items if not i.sent]

    # ------------------------------------------------------------------ internals
    def _store(self, user_key: str, ref: str, reply: Reply) -> Outgoing:
        out = Outgoing(next(self._ids), user_key, "web", None, reply)
        self._items.append(_Item(out, ref))
        return out

    def _before_consent(self, message: IncomingMessage) -> list[Outgoing]:
        if message.callback and message.callback.startswith("lang:"):
            lang = message.callback.split(":", 1)[1]
            self.users[message.user_key] = lang
            return [self._store(message.user_key, message.message_id, Reply("welcome", _t(lang, "welcome"), lang))]
        lang = message.client_lang if message.client_lang in LANGS else "en"
        buttons = [Button(NAMES[c], f"lang:{c}") for c in LANGS]
        rows = tuple(tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2))
        return [Outgoing(None, message.user_key, message.channel, None,
                         Reply("consent", _t(lang, "consent"), lang, buttons=rows))]

    def _dispatch(self, message: IncomingMessage, lang: str) -> tuple[list[Reply], bool]:
        human = (Button(_t(lang, "human"), "human:ask"),)
        if message.command == "start":
            return [Reply("welcome", _t(lang, "welcome"), lang)], True
        if message.command == "human" or (message.callback or "").startswith("human:"):
            return [Reply("ticket_opened", _t(lang, "ticket"), lang)], True
        if message.command == "delete":
            choice = (Button(_t(lang, "yes"), "delete:yes"), Button(_t(lang, "no"), "delete:no"))
            return [Reply("delete_confirm", _t(lang, "confirm"), lang, buttons=(choice,))], True
        if message.callback == "delete:yes":
            del self.users[message.user_key]
            self._items = [i for i in self._items if i.out.user_key != message.user_key]
            return [Reply("deleted", _t(lang, "deleted"), lang)], False
        if message.callback and message.callback.startswith("lang:"):
            lang = message.callback.split(":", 1)[1]
            self.users[message.user_key] = lang
            return [Reply("language", _t(lang, "language"), lang)], True
        if message.callback and message.callback.startswith("fb:"):
            return [Reply("feedback", _t(lang, "thanks"), lang)], True
        text = message.text or ""
        return [Reply("answer", _t(lang, "answer").format(q=text), lang,
                      buttons=((Button("👍", "fb:up:patent"), Button("👎", "fb:down:patent")), human),
                      source_title=_t(lang, "title"), source_url=self.source_url, reviewed_on=REVIEWED,
                      entry_id="patent")], True
