"""The implementations of the channel seam that the contract suites run against.

``bot.engine.ChatPort`` has three implementations: the real ``ConversationEngine`` (on SQLite and
PostgreSQL) and the two channel test fakes (``tests/bot/web/fake_engine.py``,
``tests/bot/telegram/fake_engine.py``), which let the channel tests run without the model. A fake
that drifts from the engine's contract makes every channel test built on it prove nothing; these
suites keep them honest, the way Haystack's ``testing/document_store.py`` keeps document stores.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from bot.engine import ChatPort, IncomingMessage, Outgoing
from nlu import Entities, LanguageHint, Understanding

__all__ = ["Implementation", "RecordingPort", "SimpleUnderstander", "fake_telegram", "fake_web", "real_engine"]


class SimpleUnderstander:
    """Every text is an English question (no model); the contracts are about delivery, not language."""

    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        return Understanding("en", "Latn", "question", None, Entities(), 1.0, True)


@dataclass
class Implementation:
    """A ChatPort and how to queue a counsellor's reply on it (the console's way in)."""

    name: str
    port: ChatPort
    channel: str
    queue_counsellor: Callable[[str, str], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


async def _nothing() -> None:
    return None


def fake_web() -> Implementation:
    from tests.bot.web.fake_engine import FakeConversation

    fake = FakeConversation()

    async def queue(user_key: str, text: str) -> None:
        fake.inject_counsellor(user_key, text)

    return Implementation("web-fake", fake, "web", queue, _nothing)


def fake_telegram() -> Implementation:
    from tests.bot.telegram.fake_engine import FakeEngine

    fake = FakeEngine()

    async def queue(user_key: str, text: str) -> None:
        # the chat id the channel handed over with the person's last update (Telegram's address)
        address = next((a for m, a in reversed(fake.calls) if m.user_key == user_key), None)
        fake.add_counsellor_reply(user_key, address, text)

    return Implementation("telegram-fake", fake, "telegram", queue, _nothing)


def real_engine(db_url: str, settings: Any, kb: Any, channel: str) -> Implementation:
    from bot.services import build_engine
    from handoff import OutboundMessage
    from storage import create_engine, session_factory

    db = create_engine(db_url)
    local = settings.model_copy(update={"session_secret": SecretStr("s" * 40)})
    engine = build_engine(local, session_factory(db), lambda: kb, SimpleUnderstander())

    async def queue(user_key: str, text: str) -> None:
        await engine.send(user_key, OutboundMessage(text=text, ticket_id=1, counsellor_name="Aziza", lang="en"))

    return Implementation(f"engine-{db_url.split(':', 1)[0]}", engine, channel, queue, db.dispose)


class RecordingPort:
    """Wraps a ChatPort and keeps what ``handle`` returned, to compare with what the person saw."""

    def __init__(self, inner: ChatPort) -> None:
        self.inner = inner
        self.handled: list[IncomingMessage] = []
        self.returned: list[Outgoing] = []

    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        try:
            outs = await self.inner.handle(message, address=address)
        finally:
            self.handled.append(message)  # after the engine is done: a test waiting on it sees its replies
        self.returned.extend(outs)
        return outs

    async def mark_sent(self, outbox_ids: Any) -> None:
        await self.inner.mark_sent(outbox_ids)

    async def pending(self, channel: str, **kw: Any) -> list[Outgoing]:
        return await self.inner.pending(channel, **kw)

    async def claim_pending(self, channel: str, **kw: Any) -> list[Outgoing]:
        return await self.inner.claim_pending(channel, **kw)

    def __getattr__(self, name: str) -> Any:  # history, send: what the channels look up optionally
        return getattr(self.inner, name)
