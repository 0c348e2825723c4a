"""Wiring the counsellor console (``handoff``) into the application.

``handoff`` knows nothing of ``config.yml`` or the knowledge base; this module adapts both:
settings become ``ConsoleSettings``, the knowledge base becomes the ``AnswerSearch`` counsellors
use to insert curated answers. Replies go to the ``OutboundPort`` the
conversation engine implements: it queues them in its outbox for the user's channel.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import AnswerSearch, ConsoleSettings, CuratedAnswer, MrcSettings, OutboundPort, create_console_app
from knowledge_base import Embedder, KnowledgeBase, QueryError

from .privacy import local_secret
from .settings import Settings

__all__ = ["KnowledgeBaseAnswers", "build_console", "console_settings", "session_secret"]


class KnowledgeBaseAnswers(AnswerSearch):
    """Curated answers for the console, in the user's language (falling back along the chain)."""

    def __init__(self, kb: Callable[[], KnowledgeBase | None]) -> None:
        self._kb = kb  # resolved per call: the app opens the knowledge base after start-up

    def search(self, query: str, lang: str, limit: int = 5) -> list[CuratedAnswer]:
        kb = self._kb()
        if kb is None:
            return []
        try:
            result = kb.search(query, lang, limit=limit)
        except QueryError:
            return []
        out = []
        for hit in result.hits[:limit]:
            a = kb.answer_for(hit.entry, lang)
            out.append(CuratedAnswer(a.entry_id, a.title, a.text, a.sources[0].title, a.sources[0].url,
                                     a.reviewed_on))
        return out


def session_secret(settings: Settings) -> str:
    """The console's cookie-signing secret: the environment's, else one kept in ``data/`` (0600).

    A laptop install must work with one command; a production install sets HAMROH_SESSION_SECRET.
    """
    env = settings.session_secret.get_secret_value() if settings.session_secret else None
    return local_secret(settings.path(Path("data/session_secret")), env)


def console_settings(settings: Settings, *, cookie_secure: bool = False) -> ConsoleSettings:
    mrcs = tuple(MrcSettings(id=m.id, name=m.name, country=m.country, timezone=m.timezone,
                             languages=tuple(m.languages), office_hours=dict(m.office_hours))
                 for m in settings.mrcs)
    return ConsoleSettings(mrcs=mrcs, session_secret=session_secret(settings),
                           cookie_secure=cookie_secure)


def build_console(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                  kb: Callable[[], KnowledgeBase | None], embedder: Embedder, outbound: OutboundPort) -> FastAPI:
    return create_console_app(console_settings(settings), sessions, outbound,
                              answers=KnowledgeBaseAnswers(kb), embedder=embedder)
