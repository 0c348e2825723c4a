"""The seam between channel adapters and the conversation engine.

Delivery is at-least-once with idempotent handling: the engine records an incoming update and the
replies it produced in one transaction, keyed by the channel's message id, before anything is
sent. A channel sends the returned items and then calls ``mark_sent``. If the process dies in
between, the redelivered update (same message id) returns the still-unsent replies instead of
producing new ones; a redelivery of a fully handled update returns nothing.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Protocol

from ._types import IncomingMessage, Reply

__all__ = ["ChatPort", "ConversationPort", "OutboxPort", "Outgoing"]


@dataclass(frozen=True)
class Outgoing:
    """A reply stored in the outbox, addressed to one user on one channel."""

    id: int | None  # outbox row id; None for replies that are not stored (before consent)
    user_key: str
    channel: str
    address: str | None  # the channel's delivery address (e.g. Telegram chat id), if known
    reply: Reply


class ConversationPort(Protocol):
    async def handle(self, message: IncomingMessage, *, address: str | None = None) -> list[Outgoing]:
        """Record ``message`` (once) and return the replies to send for it."""
        ...


class OutboxPort(Protocol):
    """Delivery: what is waiting to be sent, and what was sent (``bot.engine.Outbox``)."""

    async def mark_sent(self, outbox_ids: Sequence[int]) -> None:
        """The channel delivered these; they will not be returned again."""
        ...

    async def pending(self, channel: str, *, limit: int = 100,
                      user_keys: Collection[str] | None = None) -> list[Outgoing]:
        """Unsent replies for ``channel``: counsellor replies from the console, and leftovers of a crash.
        ``user_keys``: only these users' (the web chat asks for the people connected to it)."""
        ...

    async def claim_pending(self, channel: str, *, limit: int = 100, lease_seconds: float = 30.0,
                            exclude: Sequence[int] = ()) -> list[Outgoing]:
        """Like :meth:`pending`, but each returned reply is leased to the caller for ``lease_seconds``:
        with several replicas, only one delivery loop sends it. ``exclude``: ids the caller is already
        sending by another path (they are neither returned nor leased)."""
        ...


class ChatPort(ConversationPort, OutboxPort, Protocol):
    """What a channel adapter needs: hand over what people do, send what is waiting. The engine
    provides both (its outbox is a separate object it delegates to); test fakes provide both."""
