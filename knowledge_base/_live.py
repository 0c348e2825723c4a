"""The live knowledge base in the database: import, export, publish a revision, load what serves.

Why revisions carry vectors: publishing embeds only the texts that changed (the rest are copied
from the revision before), once, in the process that publishes; every other worker and replica
reads the vectors and rebuilds its index without loading a model's worth of work. The content
version (one row) tells workers that something changed: a cheap read per few seconds.

The caller owns the session and the transaction (keyword-only ``session``). Roles, four-eyes
review and the audit log are the caller's business (``bot.content``): this module only keeps the
content consistent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ._config import IndexConfig, SearchConfig
from ._embedder import Embedder
from ._entries import Entry, Problem, Topic, english_revision, load_topics, validate_entry
from ._search import EmbeddingCache, KnowledgeBase
from ._yamlio import dump_entry, parse_entry_text
from .tables import KbContentVersion, KbEntry, KbRevision, KbTranslation

__all__ = [
    "ContentInvalid",
    "ImportReport",
    "LiveContent",
    "build_live_knowledge_base",
    "bump_content_version",
    "content_version",
    "entry_data",
    "export_content",
    "import_content",
    "load_live",
    "publish_revision",
    "served_entry",
    "touch_entry",
]

_VERSION_ROW = 1


class ContentInvalid(ValueError):
    """Content the validator refused; ``problems`` name file (or entry), field and fix."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        super().__init__(f"{len(self.problems)} content error(s):\n{shown}")


@dataclass
class ImportReport:
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    embedded: int = 0
    version: int = 0


@dataclass
class LiveContent:
    """What serves now: the content version, the served entries and their texts' vectors.

    ``revisions`` (entry id -> the revision it serves) lets the next load read only what changed.
    """

    version: int
    entries: list[Entry]
    cache: EmbeddingCache
    revisions: dict[str, int] = field(default_factory=dict)
    #: revisions read from the database by the load that produced this
    fetched: int = 0


def entry_data(entry: Entry) -> dict[str, Any]:
    """The entry as stored: the fields its author wrote (not defaults), dates as ISO strings."""
    data: dict[str, Any] = entry.model_dump(mode="json", exclude_unset=True)
    return data


def _texts(entry: Entry, config: IndexConfig) -> list[tuple[str, str]]:
    queries, passages, _ = KnowledgeBase._texts([entry], config.embed_answers, config.embed_summaries)
    return [("query", t) for t in queries] + [("passage", t) for t in passages]


def _embed(entry: Entry, cache: EmbeddingCache, embedder: Embedder, config: IndexConfig) -> tuple[bytes, int]:
    """Vectors for every text of ``entry``: those the cache lacks are embedded now."""
    pairs = _texts(entry, config)
    before = len(cache._vectors)
    cache.embed([t for k, t in pairs if k == "query"], "query", lambda t: embedder.embed_queries(t))
    cache.embed([t for k, t in pairs if k == "passage"], "passage", lambda t: embedder.embed_passages(t))
    return cache.export(pairs), len(cache._vectors) - before


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
    blob, embedded = _embed(entry, cache, embedder, index_config)
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
    topics = dict(topics) if topics is not None else load_topics()
    files = sorted(Path(directory).glob("*.yml")) + sorted(Path(directory).glob("*.yaml"))
    problems: list[Problem] = []
    loaded: list[tuple[Entry, str]] = []
    seen: dict[str, str] = {}
    for path in files:
        text = path.read_text(encoding="utf-8")
        try:
            raw = parse_entry_text(text)
        except Exception as exc:  # yaml.YAMLError and friends: name the file, keep going
            problems.append(Problem(str(path), "(file)", f"malformed YAML ({exc})",
                                    "fix the indentation or quote values that contain ':' or '#'"))
            continue
        entry, found = validate_entry(raw, file=str(path), topics=topics, stem=path.stem, seen=seen)
        problems.extend(p for p in found if p.severity == "error")
        if entry is not None:
            seen[entry.id] = str(path)
            loaded.append((entry, text))
    if problems:
        raise ContentInvalid(problems)
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
                                          embedder=_CachedEmbedder(embedder, shared), index_config=index_config,
                                          layout=text, bump=False)
        report.embedded += revision.embedded
        (report.updated if current is not None else report.added).append(entry.id)
    if report.added or report.updated or await content_version(session=session) == 0:
        report.version = await bump_content_version(session=session)
    else:
        report.version = await content_version(session=session)
    return report


class _CachedEmbedder:
    """An embedder that answers from a shared cache first (the index's cache on import)."""

    def __init__(self, inner: Embedder, cache: EmbeddingCache) -> None:
        self._inner = inner
        self._cache = cache

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dim(self) -> int:
        return self._inner.dim

    def embed_queries(self, texts: Sequence[str]) -> Any:
        return self._cache.embed(list(texts), "query", lambda t: self._inner.embed_queries(t))

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> Any:
        return self._cache.embed(list(texts), "passage", lambda t: self._inner.embed_passages(t))


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


def served_entry(data: Mapping[str, Any], suspended: Iterable[str] = ()) -> Entry | None:
    """The entry as it serves: suspended translations left out (readers fall back along their chain)."""
    entry = Entry.model_validate(data)
    stop = set(suspended)
    if not stop:
        return entry
    kept = {lang: tr for lang, tr in entry.translations.items() if lang not in stop}
    if not kept:
        return None
    return entry.model_copy(update={"translations": kept})


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


def build_live_knowledge_base(live: LiveContent, embedder: Embedder, index_config: IndexConfig,
                              search_config: SearchConfig, *, previous: KnowledgeBase | None = None,
                              **kwargs: Any) -> KnowledgeBase:
    """A knowledge base from live content: no text is embedded again (vectors come with it), the
    out-of-scope examples' vectors are taken over from the knowledge base it replaces."""
    entries = sorted(live.entries, key=lambda e: e.id)
    index, rows, manifest = KnowledgeBase.build_index(entries, embedder, index_config, cache=live.cache)
    if previous is not None:
        kwargs.setdefault("_oos_vectors", previous._oos)
        # the lexical tokens of unchanged texts are the same: tokenising them again was most of a swap
        kwargs.setdefault("_token_cache", previous._tokens_cache)
        kwargs.setdefault("fallbacks", previous.fallbacks)
        kwargs.setdefault("default_lang", previous.default_lang)
    return KnowledgeBase(entries, embedder, index, rows, search_config, manifest=manifest, **kwargs)


async def touch_entry(*, session: AsyncSession, entry_id: str) -> None:
    """Bump an entry's optimistic version (a draft was saved against it)."""
    await session.execute(update(KbEntry).where(KbEntry.id == entry_id).values(version=KbEntry.version + 1))
