"""The live knowledge base in the database: publish a revision, import, export, load what serves.

The content version (one row) tells workers that something changed: a cheap read every second.
The caller owns the session and the transaction (keyword-only ``session``). Roles, four-eyes
review and the audit log are the workflow's business (``_workflow``): this module only keeps the
content consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from knowledge_base import (
    CachedEmbedder,
    Embedder,
    EmbeddingCache,
    Entry,
    IndexConfig,
    LiveContent,
    Topic,
    dump_entry,
    embed_revision,
    english_revision,
    entry_data,
    load_baseline,
    served_entry,
)

from .tables import KbContentVersion, KbEntry, KbRevision, KbTranslation

__all__ = [
    "ImportReport",
    "bump_content_version",
    "content_version",
    "export_content",
    "import_content",
    "load_live",
    "publish_revision",
    "touch_entry",
]

_VERSION_ROW = 1


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    embedded: int = 0
    version: int = 0


async def content_version(*, session: AsyncSession) -> int:
    """The published content's version; 0 when nothing was ever imported (serve the YAML baseline)."""
    value = await session.scalar(select(KbContentVersion.version).where(KbContentVersion.id == _VERSION_ROW))
    return int(value or 0)


async def bump_content_version(*, session: AsyncSession) -> int:
    row = await session.get(KbContentVersion, _VERSION_ROW, with_for_update=True)
    if row is None:
        row = KbContentVersion(id=_VERSION_ROW, version=0)
        session.add(row)
    row.version += 1
    row.updated_at = dt.datetime.now(dt.UTC)
    await session.flush()
    return row.version


async def _current(session: AsyncSession, entry_id: str) -> KbRevision | None:
    row = await session.get(KbEntry, entry_id)
    if row is None or not row.current_revision:
        return None
    revision: KbRevision | None = await session.scalar(
        select(KbRevision).where(KbRevision.entry_id == entry_id, KbRevision.number == row.current_revision))
    return revision


async def _sync_translations(session: AsyncSession, entry: Entry, suspended: Iterable[str]) -> None:
    """Each language's review state from the published entry: a translation checked against an
    older English text needs re-review (it keeps serving its reviewed text unless suspended)."""
    current = english_revision(entry)
    stop = set(suspended)
    existing = {t.lang: t for t in (await session.scalars(
        select(KbTranslation).where(KbTranslation.entry_id == entry.id))).all()}
    for lang, tr in entry.translations.items():
        row = existing.pop(lang, None)
        if row is None:
            row = KbTranslation(entry_id=entry.id, lang=lang)
            session.add(row)
        if lang == "en":
            state = "reviewed"
        elif lang in stop:
            state = "suspended"
        elif tr.source_version is not None and current and tr.source_version != current:
            state = "needs_review"
        else:
            state = "reviewed"
        row.state = state
        row.reviewed_by = tr.reviewed_by
        row.reviewed_on = tr.reviewed_on
        row.checked_against = tr.source_version if lang != "en" else current
        row.updated_at = dt.datetime.now(dt.UTC)
    for row in existing.values():
        await session.delete(row)


async def publish_revision(*, session: AsyncSession, entry: Entry, by: str, note: str, embedder: Embedder,
                           index_config: IndexConfig, suspended: Iterable[str] = (),
                           layout: str | None = None, bump: bool = True,
                           known_vectors: bytes | None = None) -> KbRevision:
    """Make ``entry`` the one that serves: a new revision (vectors of changed texts embedded now),
    the entry row pointed at it and reinstated, and (``bump``) the content version moved on."""
    row = await session.get(KbEntry, entry.id, with_for_update=True)
    previous = await _current(session, entry.id) if row is not None else None
    cache = EmbeddingCache(None, embedder.model_id)
    if previous is not None and previous.model_id == embedder.model_id:
        cache.merge(previous.vectors)
    if known_vectors is not None:
        cache.merge(known_vectors)
    blob, embedded = embed_revision(entry, cache, embedder, index_config)
    if row is None:
        row = KbEntry(id=entry.id, version=0, current_revision=0, layout=layout)
        session.add(row)
        await session.flush()
    elif layout is not None:
        row.layout = layout
    number = row.current_revision + 1
    latest = await session.scalar(select(KbRevision.number).where(KbRevision.entry_id == entry.id)
                                  .order_by(KbRevision.number.desc()).limit(1))
    number = max(number, (latest or 0) + 1)
    revision = KbRevision(entry_id=entry.id, number=number, data=entry_data(entry), suspended=sorted(set(suspended)),
                          vectors=blob, model_id=embedder.model_id, embedded=embedded,
                          published_at=dt.datetime.now(dt.UTC), published_by=by[:64], note=note[:200])
    session.add(revision)
    row.current_revision = number
    row.version += 1
    row.withdrawn_at = None
    row.withdrawn_reason = None
    row.updated_at = dt.datetime.now(dt.UTC)
    await _sync_translations(session, entry, suspended)
    await session.flush()
    if bump:
        await bump_content_version(session=session)
    return revision


async def import_content(*, session: AsyncSession, directory: Path, embedder: Embedder,
                         index_config: IndexConfig, cache: EmbeddingCache | None = None,
                         topics: Mapping[str, Topic] | None = None, by: str = "import") -> ImportReport:
    """Load the YAML baseline into the database. Idempotent: an entry whose data and layout are
    already live is left alone; a changed file becomes a new revision. Any error refuses it all."""
    loaded = load_baseline(directory, topics)
    report = ImportReport()
    shared = cache or EmbeddingCache(None, embedder.model_id)
    for entry, text in loaded:
        row = await session.get(KbEntry, entry.id)
        current = await _current(session, entry.id) if row is not None else None
        if current is not None and current.data == entry_data(entry):
            if row is not None and row.layout != text:
                row.layout = text
            report.unchanged.append(entry.id)
            continue
        if current is not None and current.model_id == embedder.model_id:
            shared.merge(current.vectors)
        note = f"imported from {Path(directory).name}/"
        revision = await publish_revision(session=session, entry=entry, by=by, note=note,
                                          embedder=CachedEmbedder(embedder, shared), index_config=index_config,
                                          layout=text, bump=False)
        report.embedded += revision.embedded
        (report.updated if current is not None else report.added).append(entry.id)
    if report.added or report.updated or await content_version(session=session) == 0:
        report.version = await bump_content_version(session=session)
    else:
        report.version = await content_version(session=session)
    return report


async def export_content(*, session: AsyncSession, directory: Path) -> list[Path]:
    """Write every live entry (its current revision, withdrawn ones too) as ``<id>.yml`` in its layout."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    rows = (await session.scalars(select(KbEntry).order_by(KbEntry.id))).all()
    for row in rows:
        revision = await _current(session, row.id)
        if revision is None:
            continue
        entry = Entry.model_validate(revision.data)
        text = dump_entry(entry.model_dump(mode="python", exclude_unset=True), row.layout)
        path = directory / f"{row.id}.yml"
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


async def load_live(*, session: AsyncSession, model_id: str, previous: LiveContent | None = None) -> LiveContent:
    """Every served entry (published, not withdrawn) and the vectors of its texts.

    With ``previous`` (what this process serves now) only revisions published since are read: at
    10,000 entries a publication costs one entry's row, not a gigabyte of vectors.
    """
    version = await content_version(session=session)
    rows = (await session.execute(select(KbEntry.id, KbEntry.current_revision, KbEntry.withdrawn_at))).all()
    served = {eid: number for eid, number, withdrawn in rows if withdrawn is None and number > 0}
    known = previous.revisions if previous is not None else {}
    kept = {e.id: e for e in previous.entries} if previous is not None else {}
    cache = previous.cache if previous is not None and previous.cache.model_id == model_id \
        else EmbeddingCache(None, model_id)
    need = sorted(eid for eid, number in served.items() if known.get(eid) != number)
    fresh: dict[str, Entry | None] = {}
    for lo in range(0, len(need), 500):
        chunk = need[lo:lo + 500]
        # plain rows, not ORM objects: at 10,000 entries the session's identity map would otherwise
        # hold every revision's vectors until the load ends
        query = (select(KbRevision.entry_id, KbRevision.data, KbRevision.suspended, KbRevision.vectors,
                        KbRevision.model_id)
                 .join(KbEntry, (KbEntry.id == KbRevision.entry_id) & (KbEntry.current_revision == KbRevision.number))
                 .where(KbRevision.entry_id.in_(chunk)))
        for entry_id, data, suspended, vectors, revision_model in (await session.execute(query)).all():
            entry = served_entry(data, suspended)
            if revision_model == model_id:
                cache.merge(vectors)
            fresh[entry_id] = entry if entry is not None and entry.status == "published" else None
    entries: list[Entry] = []
    for eid in sorted(served):
        entry = fresh[eid] if eid in fresh else kept.get(eid)
        if entry is not None:
            entries.append(entry)
    return LiveContent(version=version, entries=entries, cache=cache, revisions=served, fetched=len(fresh))


async def touch_entry(*, session: AsyncSession, entry_id: str) -> None:
    """Bump an entry's optimistic version (a draft was saved against it)."""
    await session.execute(update(KbEntry).where(KbEntry.id == entry_id).values(version=KbEntry.version + 1))
