"""Composition helpers: turn ``Settings`` into the objects the app and the CLI share.

Why here: ``knowledge_base`` and ``nlu`` know nothing of ``config.yml``; ``bot`` is the one place
that reads settings and wires packages together, so the CLI, the server and tests build the same
objects the same way.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import Notifier
from knowledge_base import (
    Embedder,
    KnowledgeBase,
    LoadReport,
    SentenceTransformerEmbedder,
    create_embedder,
    load_entries,
)
from nlu import Understander

from .engine import ConversationEngine, UnderstandingPort
from .i18n import Translator
from .options import engine_options
from .settings import Settings

__all__ = ["ContentError", "load_content", "open_embedder", "open_knowledge_base", "open_understander",
           "open_understanding"]


class ContentError(RuntimeError):
    """The shipped content has errors; nothing is indexed until they are fixed."""


def load_content(settings: Settings) -> LoadReport:
    return load_entries(settings.path(settings.content_dir))


def open_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    return create_embedder(settings.model, root=settings.root)


def open_understander(settings: Settings, embedder: Embedder) -> Understander:
    """The message understander; its example embeddings are cached beside the index (generated data)."""
    return Understander(embedder, cache_dir=settings.path(settings.index.dir).parent / "cache")


def open_understanding(settings: Settings, builtin: Understander) -> UnderstandingPort:
    """What the engine asks for acts: the built-in understanding, or (``nlu.backend: rasa``) a Rasa
    server with the built-in one as safety net and fallback (see ``bot.rasa``)."""
    if settings.nlu.backend == "rasa":
        from .rasa import RasaUnderstander

        return RasaUnderstander(builtin, settings.nlu.rasa)
    return builtin


def open_knowledge_base(settings: Settings, *, embedder: Embedder | None = None,
                        rebuild: bool = False, progress: bool = False,
                        on_build: Callable[[str], None] | None = None) -> KnowledgeBase:
    """Validate content, then load the index or build it; refuse to serve invalid content."""
    report = load_content(settings)
    if report.errors:
        listing = "\n".join(f"  {p}" for p in report.errors[:20])
        raise ContentError(f"{len(report.errors)} content error(s); run 'hamroh kb validate':\n{listing}")
    return KnowledgeBase.open(report.published, embedder or open_embedder(settings), settings.index,
                              settings.search, root=settings.root, rebuild=rebuild, progress=progress,
                              on_build=on_build, fallbacks=settings.fallback_chains,
                              default_lang=settings.default_language)


def build_engine(settings: Settings, sessions: async_sessionmaker[AsyncSession],
                 kb: Callable[[], KnowledgeBase | None], understander: UnderstandingPort, *,
                 clock: Callable[[], dt.datetime] | None = None,
                 notifier: Notifier | None = None) -> ConversationEngine:
    from .console import console_settings

    if isinstance(understander, Understander):
        understander = open_understanding(settings, understander)
    return ConversationEngine(sessions=sessions, kb=kb, understander=understander,
                              translator=Translator(settings.fallback_chains), options=engine_options(settings),
                              console=console_settings(settings), notifier=notifier,
                              **({"clock": clock} if clock is not None else {}))
