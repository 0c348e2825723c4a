"""What the bot remembers of a conversation between two messages, and questions kept before consent.

Why a small JSON document on the user's row and not more columns: the dialogue state changes with
the policy (a follow-up slot, a question waiting for a profile answer, a language streak), and a
document read and written with the row costs no extra round trip. It holds no message text beyond
the last question (needed to answer a follow-up), and it goes with the row on /delete and retention.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cachetools import TTLCache

__all__ = ["ConversationState", "PendingQuestion", "PendingQuestions"]


@dataclass
class ConversationState:
    #: the country the person is in now (a shared location, "я в Москве", a button)
    location: str | None = None
    #: profile questions already asked ("origin"): asked once, never again
    asked: list[str] = field(default_factory=list)
    #: what the bot asked and is waiting for: "origin" (citizenship), "crisis_location"
    waiting: str | None = None
    #: the question to answer once the person answers the bot's question
    waiting_question: str | None = None
    last_question: str | None = None
    last_topic: str | None = None
    last_entry: str | None = None
    #: messages in a row with no verified answer: a counsellor is offered at two
    misses: int = 0
    #: Uzbek script of the person's last Uzbek message: "Latn" or "Cyrl"
    script: str | None = None
    #: a language the person keeps writing in, other than the chosen one, and how many times
    other_lang: str | None = None
    other_count: int = 0

    @classmethod
    def load(cls, data: Any) -> ConversationState:
        if not isinstance(data, dict):
            return cls()
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def dump(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PendingQuestion:
    text: str
    lang: str


class PendingQuestions:
    """A question sent before consent, kept in memory (never stored) until the person consents.

    Why memory: nothing about a person is written before they agree. The cost: a question sent to
    one server process and a consent pressed on another (several workers, webhook mode) is not
    answered automatically; the welcome then asks the person to write it again. Bounded in size
    and kept an hour at most (a ``cachetools.TTLCache``).
    """

    def __init__(self, size: int = 10_000, ttl_seconds: float = 3600.0) -> None:
        self._items: TTLCache[str, PendingQuestion] = TTLCache(maxsize=size, ttl=ttl_seconds)

    def put(self, user_key: str, text: str, lang: str) -> None:
        self._items[user_key] = PendingQuestion(text, lang)

    def peek(self, user_key: str) -> PendingQuestion | None:
        return self._items.get(user_key)

    def pop(self, user_key: str) -> PendingQuestion | None:
        return self._items.pop(user_key, None)
