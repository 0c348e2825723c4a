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

from handoff import AnswerSearch, ConsoleSettings, CuratedAnswer, MediaSource, OutboundPort, create_console_app
from knowledge_base import Embedder, KnowledgeBase, QueryError
from storage import RateLimiter

from .content import Publisher, content_router
from .privacy import local_secret
from .settings import Settings

__all__ = ["KnowledgeBaseAnswers", "build_console", "console_settings", "media_source", "session_secret"]


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


def console_settings(settings: Settings) -> ConsoleSettings:
    """config.yml's MRCs and ``console`` block as the console's settings (one schema, passed down).

    Why no ``cookie_secure=False`` default any more: it overrode the console's own secure default
    and kept cookies without ``Secure`` and HSTS off even behind HTTPS. Now ``console.cookie_secure``
    forces them, and HTTPS (an https ``public_url``, or the request's scheme) turns them on.
    """
    c = settings.console
    limits = settings.rate_limits
    return ConsoleSettings(mrcs=tuple(m.console() for m in settings.mrcs), session_secret=session_secret(settings),
                           cookie_secure=c.cookie_secure or (c.public_url or "").startswith("https://"),
                           public_url=c.public_url, poll_seconds=c.poll_seconds,
                           idle_claim_minutes=c.idle_claim_minutes, session_idle_minutes=c.session_idle_minutes,
                           session_max_hours=c.session_max_hours, telegram_group_chat_id=c.telegram_group_chat_id,
                           login_per_address=limits.login_per_address, login_per_account=limits.login_per_account,
                           media_days=settings.retention.conversations_days)


def build_console(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                  kb: Callable[[], KnowledgeBase | None], embedder: Embedder, outbound: OutboundPort,
                  limiter: RateLimiter | None = None) -> FastAPI:
    app = create_console_app(console_settings(settings), sessions, outbound,
                             answers=KnowledgeBaseAnswers(kb), embedder=embedder, limiter=limiter,
                             media=media_source(settings))
    # the content editor and review workflow (bot/content): its own route module
    app.include_router(content_router(settings, sessions, kb, lambda: Publisher(embedder, settings.index)))
    return app


def media_source(settings: Settings) -> MediaSource | None:
    """Voice notes, photos and files on tickets come from Telegram, fetched with the bot's token on
    the server (the browser never has it); without a token the console shows the lines only."""
    if settings.telegram_bot_token is None:
        return None
    from .channels.telegram import TelegramMediaSource

    return TelegramMediaSource(settings.telegram_bot_token.get_secret_value(), base_url=settings.telegram.base_url)
