"""Import, export and first-start seeding of the live content, for the CLI and the server.

Why the index's embedding cache: the first import embeds every text of every entry; the index
build has already done that (``data/index/embeddings.npz``), so an import after ``kb build``
embeds nothing and takes seconds.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handoff import AuditAction, audit
from knowledge_base import Embedder, EmbeddingCache
from storage import create_engine, session_factory

from ..settings import Settings
from ._repo import ImportReport, content_version, export_content, import_content

__all__ = ["export_live", "import_baseline", "import_with", "seed_if_empty"]


def _index_cache(settings: Settings, embedder: Embedder) -> EmbeddingCache:
    path = settings.path(settings.index.dir) / "embeddings.npz"
    return EmbeddingCache(path if path.exists() else None, embedder.model_id)


async def import_with(sessions: async_sessionmaker[AsyncSession], settings: Settings, directory: Path,
                      embedder: Embedder) -> ImportReport:
    async with sessions() as db, db.begin():
        report = await import_content(session=db, directory=directory, embedder=embedder,
                                      index_config=settings.index, cache=_index_cache(settings, embedder))
        if report.added or report.updated:
            await audit(db, None, AuditAction.CONTENT_IMPORT,
                        detail=f"{directory.name}/: {len(report.added)} added, {len(report.updated)} updated")
    return report


async def import_baseline(settings: Settings, url: str, directory: Path, *, embedder: Embedder) -> ImportReport:
    engine = create_engine(url)
    try:
        return await import_with(session_factory(engine), settings, Path(directory), embedder)
    finally:
        await engine.dispose()


async def export_live(url: str, directory: Path) -> list[Path]:
    engine = create_engine(url)
    try:
        async with session_factory(engine)() as db, db.begin():
            return await export_content(session=db, directory=Path(directory))
    finally:
        await engine.dispose()


async def seed_if_empty(sessions: async_sessionmaker[AsyncSession], settings: Settings,
                        embedder: Embedder) -> ImportReport | None:
    """First start: load the shipped YAML into the database once (several workers may race: the
    loser's insert conflicts and it simply uses what the winner imported)."""
    async with sessions() as db:
        if await content_version(session=db) > 0:
            return None
    try:
        return await import_with(sessions, settings, settings.path(settings.content_dir), embedder)
    except IntegrityError:
        return None
