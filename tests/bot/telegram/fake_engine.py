"""A small in-memory ConversationPort that keeps the port's contract (idempotency, outbox, pending).

Why a fake and not only the real engine: these tests are about the Telegram transport, and they
need replies the real engine would only produce with a knowledge base and NLU (a 5,000-character
answer, markup-looking text, failures on demand). The contract it keeps is the one in
``bot/engine/_port.py``: an update is recorded once by its message id; a redelivery returns the
replies still unsent, and nothing once they are all marked sent.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Collection, Sequence

from bot.engine import Button, IncomingMessage, Outgoing, Reply

__all__ = ["LONG_ANSWER", "FakeEngine"]

LANGUAGE_BUTTONS = ((Button("English", "lang:en"), Button("Русский", "lang:ru")),)
FEEDBACK_BUTTONS = ((Button("👍 Yes", "fb:up:e1"), Button("👎 No", "fb:down:e1")),
                    (Button("Talk to a counsellor", "human:ask"),))


def _long_answer() -> str:
    paragraphs = []
    for i in range(25):
        body = f"Paragraph {i}: the patent costs 5 & 6 <units> per month, see \"rules\". " * 3
        paragraphs.append(body.strip())
    return "\n\n".join(paragraphs)


LONG_ANSWER = _long_answer()


class FakeEngine:
    def __init__(self) -> None:
        self.calls: list[tuple[IncomingMessage, str | None]] = []
        self.outbox: dict[int, Outgoing] = {}
        self.sent: set[int] = set()
        self.mark_sent_calls: list[list[int]] = []
        self.by_message: dict[str, list[int]] = {}
        self.fail_handle = 0  # the next N handle() calls raise, as a database outage would
        self.mark_sent_delay = 0.0
        self.claims = 0  # rounds of the delivery loop
        self._next_id = 1

    # ------------------------------------------------------------------ ConversationPort
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        self.calls.append((message, address))
        if self.fail_handle > 0:
            self.fail_handle -= 1
            raise RuntimeError(f"database unavailable while storing {message.text!r}")
        known = self.by_message.get(message.message_id)
        if known is not None:
            return [self.outbox[i] for i in known if i not in self.sent]
        ids = [self._store(message.user_key, address, reply) for reply in self._replies(message)]
        self.by_message[message.message_id] = ids
        return [self.outbox[i] for i in ids]

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        if self.mark_sent_delay:
            await asyncio.sleep(self.mark_sent_delay)
        self.mark_sent_calls.append(list(outbox_ids))
        self.sent.update(outbox_ids)

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        return [o for i, o in sorted(self.outbox.items()) if i not in self.sent and o.channel == channel
                and (user_keys is None or o.user_key in user_keys)][:limit]

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        self.claims += 1
        return [o for o in await self.pending(channel, limit=limit) if o.id not in set(exclude)]

    # ------------------------------------------------------------------ test helpers
    def add_counsellor_reply(self, user_key: str, address: str | None, text: str) -> int:
        return self._store(user_key, address, Reply("counsellor", f"Counsellor Aziza:\n{text}", "ru"))

    def messages(self) -> list[IncomingMessage]:
        return [m for m, _ in self.calls]

    def _store(self, user_key: str, address: str | None, reply: Reply) -> int:
        outbox_id = self._next_id
        self._next_id += 1
        self.outbox[outbox_id] = Outgoing(outbox_id, user_key, "telegram", address, reply)
        return outbox_id

    @staticmethod
    def _replies(message: IncomingMessage) -> list[Reply]:
        if message.command == "start":
            return [Reply("consent", "Hello! We keep your messages <only> to help you & you can /delete them.\n\n"
                                     "Please choose your language.", "en", buttons=LANGUAGE_BUTTONS)]
        if message.command:
            return [Reply("help", f"Command {message.command}", "en")]
        if message.callback:
            if message.callback.startswith("lang:"):
                return [Reply("welcome", f"Language set: {message.callback[5:]}", message.callback[5:])]
            return [Reply("feedback", "Thank you for your feedback.", "en")]
        if message.attachment:
            return [Reply("attachment", f"Sorry, I cannot read a {message.attachment}.", "en")]
        text = (message.text or "").strip()
        if not text:
            return [Reply("help", "Write your question.", "en")]
        if text == "long":
            return [Reply("answer", LONG_ANSWER, "en", buttons=FEEDBACK_BUTTONS)]
        if text == "two":
            return [Reply("smalltalk", "First reply.", "en"), Reply("smalltalk", "Second reply.", "en")]
        return [Reply("answer", f"You asked: {text}", "en", buttons=FEEDBACK_BUTTONS,
                      source_title="MRC <Guide> & FAQ", source_url="https://mrc.example/a?b=1&c=2",
                      reviewed_on=dt.date(2024, 5, 1), entry_id="e1")]
