"""The seams handoff needs from the rest of the application, as Protocols.

``bot`` implements them (it owns the channels, the knowledge base and the model); handoff never
imports a channel or the knowledge base, which keeps the dependency rule of DESIGN.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "AnswerSearch",
    "CuratedAnswer",
    "MediaFile",
    "MediaRef",
    "MediaSource",
    "MediaUnavailable",
    "NoAnswerSearch",
    "NoMediaSource",
    "Notifier",
    "NullNotifier",
    "OutboundMessage",
    "OutboundPort",
    "QueryEmbedder",
]


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A counsellor's reply on its way to the user's channel.

    ``lang`` is the ticket's language so the channel can render its own frame (e.g. "Counsellor
    Dilnoza:") in the user's language.
    """

    text: str
    ticket_id: int
    counsellor_name: str
    lang: str = ""
    #: "reply" (a counsellor's words), or a change the person is told about: "resolved",
    #: "transferred" (``text`` is then the receiving MRC's name)
    kind: str = "reply"


@runtime_checkable
class OutboundPort(Protocol):
    """Delivers a message to the user behind ``user_key`` on whatever channel they used.

    Raise any exception when delivery failed; handoff records the failure and shows a retry.
    """

    async def send(self, user_key: str, message: OutboundMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class CuratedAnswer:
    """A reviewed knowledge-base entry a counsellor can insert into a reply."""

    entry_id: str
    title: str
    text: str
    source_title: str
    source_url: str
    reviewed_on: date | None = None

    def as_reply(self) -> str:
        """The text inserted into the reply box: always with its source and review date."""
        reviewed = f" (reviewed {self.reviewed_on.isoformat()})" if self.reviewed_on else ""
        source = f"{self.source_title} {self.source_url}".strip()
        return f"{self.title}\n\n{self.text.strip()}\n\nSource: {source}{reviewed}"


@runtime_checkable
class AnswerSearch(Protocol):
    """Searches the curated knowledge base in one language (the user's)."""

    def search(self, query: str, lang: str, limit: int = 5) -> list[CuratedAnswer]: ...


@runtime_checkable
class QueryEmbedder(Protocol):
    """Embeds short texts into L2-normalised rows (one per text), for content-gap clustering."""

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.floating]: ...


@runtime_checkable
class Notifier(Protocol):
    """Posts a short alert to the counsellors' Telegram group (bot implements it with PTB)."""

    async def send_group_message(self, chat_id: str, text: str) -> None: ...


class NullNotifier:
    """Used when Telegram is not enabled: alerts appear only live in the console."""

    async def send_group_message(self, chat_id: str, text: str) -> None:
        return None


class NoAnswerSearch:
    """Used when no knowledge base is wired (tests of other parts, console-only deployments)."""

    def search(self, query: str, lang: str, limit: int = 5) -> list[CuratedAnswer]:
        return []


@dataclass(frozen=True, slots=True)
class MediaRef:
    """A voice note, photo or file as the channel knows it: its handle, never its bytes.

    ``file_id`` is Telegram's handle (it names the file for this bot only and carries no user
    id); ``mime`` and ``seconds`` are what the channel reported, for the console's player.
    """

    file_id: str
    mime: str | None = None
    seconds: int | None = None


@dataclass(frozen=True, slots=True)
class MediaFile:
    """A file fetched for a counsellor, streamed through and never written to disk."""

    chunks: AsyncIterator[bytes]
    size: int | None = None


class MediaUnavailable(Exception):
    """The channel cannot give the file (gone, too large, the channel not running); the message
    says which, without the token or the handle."""


@runtime_checkable
class MediaSource(Protocol):
    """Fetches a file by its channel handle when a counsellor opens it (Telegram: ``getFile``)."""

    async def fetch(self, file_id: str) -> MediaFile: ...


class NoMediaSource:
    """Used when no channel that carries files is configured: the console shows the line only."""

    async def fetch(self, file_id: str) -> MediaFile:
        raise MediaUnavailable("no channel is configured to fetch files (TELEGRAM_BOT_TOKEN is not set)")
