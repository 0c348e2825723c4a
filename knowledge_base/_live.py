"""Live content, the parts that need no database: what a revision stores and how a worker builds
its knowledge base from published revisions.

Why revisions carry vectors: publishing embeds only the texts that changed (the rest are copied
from the revision before), once, in the process that publishes; every other worker and replica
reads the vectors and rebuilds its index without running the model. The tables, the workflow and
the database reads live in ``bot.content`` (``knowledge_base`` imports no other package).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._config import IndexConfig, SearchConfig
from ._embedder import Embedder
from ._entries import Entry, Problem, Topic, content_hash, load_topics, validate_entry
from ._index import FaissIndex, IndexManifest, VectorIndex
from ._search import EmbeddingCache, KnowledgeBase, _Row
from ._yamlio import parse_entry_text

__all__ = [
    "CachedEmbedder",
    "ContentInvalid",
    "LiveContent",
    "build_live_knowledge_base",
    "derive_index",
    "embed_revision",
    "entry_data",
    "load_baseline",
    "served_entry",
]


class ContentInvalid(ValueError):
    """Content the validator refused; ``problems`` name file (or entry), field and fix."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        shown = "\n".join(f"  {p}" for p in self.problems[:20])
        super().__init__(f"{len(self.problems)} content error(s):\n{shown}")


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


def embed_revision(entry: Entry, cache: EmbeddingCache, embedder: Embedder, config: IndexConfig) -> tuple[bytes, int]:
    """Vectors for every text of ``entry``: those the cache lacks are embedded now."""
    pairs = _texts(entry, config)
    before = len(cache._vectors)
    cache.embed([t for k, t in pairs if k == "query"], "query", lambda t: embedder.embed_queries(t))
    cache.embed([t for k, t in pairs if k == "passage"], "passage", lambda t: embedder.embed_passages(t))
    return cache.export(pairs), len(cache._vectors) - before


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


def build_live_knowledge_base(live: LiveContent, embedder: Embedder, index_config: IndexConfig,
                              search_config: SearchConfig, *, previous: KnowledgeBase | None = None,
                              max_changed: float = 0.10, **kwargs: Any) -> KnowledgeBase:
    """A knowledge base from live content: no text is embedded again (vectors come with it), the
    out-of-scope examples' vectors are taken over from the knowledge base it replaces.

    With ``previous`` (what serves now) and at most ``max_changed`` of the entries added, changed
    or withdrawn, the vector index is derived from the previous one (:func:`derive_index`) instead
    of built; the lexical postings of unchanged documents are reused in either case. ``previous``
    is never changed: requests still running keep searching it.
    """
    entries = sorted(live.entries, key=lambda e: e.id)
    if previous is not None:
        kwargs.setdefault("_oos_vectors", previous._oos)
        kwargs.setdefault("_lexicon", previous._lexicon)
        kwargs.setdefault("fallbacks", previous.fallbacks)
        kwargs.setdefault("default_lang", previous.default_lang)
        derived = derive_index(previous, entries, live.cache, embedder, index_config, max_changed=max_changed)
        if derived is not None:
            index, rows, manifest = derived
            return KnowledgeBase(entries, embedder, index, rows, search_config, manifest=manifest, **kwargs)
    index, rows, manifest = KnowledgeBase.build_index(entries, embedder, index_config, cache=live.cache)
    return KnowledgeBase(entries, embedder, index, rows, search_config, manifest=manifest, **kwargs)


def _row_counts(entry: Entry, config: IndexConfig) -> tuple[int, int]:
    """How many query rows (questions, titles) and passage rows (answers, summaries) an entry has."""
    queries = sum(len(tr.questions) + 1 for tr in entry.translations.values())
    passages = sum(int(config.embed_answers) + int(bool(config.embed_summaries and tr.summary))
                   for tr in entry.translations.values())
    return queries, passages


def _old_same(same: Sequence[int | None], n_old: int) -> list[int | None]:
    """For each previous entry, the position of the same (unchanged) entry now, else None."""
    back: list[int | None] = [None] * n_old
    for i, j in enumerate(same):
        if j is not None:
            back[j] = i
    return back


def _derive_hnsw(previous: KnowledgeBase, old_index: FaissIndex, entries: Sequence[Entry], same: list[int | None],
                 cache: EmbeddingCache, embedder: Embedder, config: IndexConfig, max_changed: float,
                 ) -> tuple[VectorIndex, list[Any], IndexManifest] | None:
    """An HNSW index cannot drop rows: the previous graph is copied, the rows of changed and
    withdrawn entries are excluded from every search, the new rows inserted (ids after the last).
    Once excluded rows pass ``max_changed`` of the index, None: a build is due."""
    started = time.perf_counter()
    back = _old_same(same, len(previous.entries))
    shifted = any(i is not None and i != j for j, i in enumerate(back))
    removed: Any = _Row(-1, "", "removed")
    rows: list[Any] = []
    dead: list[int] = []
    for rid, row in enumerate(previous.rows):
        now = back[row.entry] if row.entry >= 0 else None
        if now is None:
            if row.entry >= 0:
                dead.append(rid)
            rows.append(removed)
        else:
            rows.append(row._replace(entry=now) if shifted else row)
    if len(old_index.excluded) + len(dead) > max_changed * max(1, len(rows) - len(old_index.excluded)):
        return None
    vectors: list[np.ndarray] = []
    for i, (entry, j) in enumerate(zip(entries, same, strict=True)):
        if j is not None:
            continue
        queries, passages, fresh = KnowledgeBase._texts([entry], config.embed_answers, config.embed_summaries)
        rows.extend(r._replace(entry=i) for r in fresh)
        if queries:
            vectors.append(cache.embed(queries, "query", embedder.embed_queries))
        if passages:
            vectors.append(cache.embed(passages, "passage", embedder.embed_passages))
    added = np.concatenate(vectors) if vectors else np.zeros((0, old_index.dim), np.float32)
    index = old_index.with_rows(added, dead)
    manifest = IndexManifest(model_id=embedder.model_id, dim=old_index.dim, content_hash=content_hash(entries),
                             vectors=index.size - len(index.excluded), kind=index.kind, built_at=time.time(),
                             build_seconds=round(time.perf_counter() - started, 2))
    return index, rows, manifest


def derive_index(previous: KnowledgeBase, entries: Sequence[Entry], cache: EmbeddingCache, embedder: Embedder,
                 config: IndexConfig, *, max_changed: float = 0.10,
                 ) -> tuple[VectorIndex, list[Any], IndexManifest] | None:
    """The vector index of ``entries`` (sorted by id) derived from ``previous``'s, or None when a
    build is due: more than ``max_changed`` of the entries differ, an index that cannot be spliced
    (HNSW, int8 storage), a masked knowledge base, or a size that calls for HNSW.

    Unchanged entries' rows are copied from the previous index in runs; changed and new entries'
    vectors come from ``cache`` (stored with their revisions). Rows keep the order of a build from
    scratch (queries of every entry, then passages), so search results are the same as a build's.
    """
    old_index = previous.index
    if previous._hidden_rows or previous._hidden_entries or not isinstance(old_index, FaissIndex):
        return None
    # each kind keeps the storage its setting names (an HNSW index: ``approximate_storage``)
    wanted = (config.approximate_storage or config.storage) if old_index.kind == "hnsw" else config.storage
    if old_index.storage != wanted or len(previous.rows) != old_index.size:
        return None
    if old_index.kind != "hnsw" and not old_index.spliceable:
        return None
    old_at = {e.id: i for i, e in enumerate(previous.entries)}
    same: list[int | None] = []
    for entry in entries:
        j = old_at.get(entry.id)
        old = previous.entries[j] if j is not None else None
        same.append(j if old is not None and (old is entry or old == entry) else None)
    # entries added or changed, and entries withdrawn
    changes = sum(1 for j in same if j is None) + len(old_at.keys() - {e.id for e in entries})
    if changes > max(1.0, max_changed * max(len(entries), 1)):
        return None
    if old_index.kind == "hnsw":
        return _derive_hnsw(previous, old_index, entries, same, cache, embedder, config, max_changed)
    new_counts = [_row_counts(e, config) for e in entries]
    by_id = {e.id: c for e, c in zip(entries, new_counts, strict=True)}
    old_counts = [by_id[e.id] if e.id in by_id and j is not None else _row_counts(e, config)
                  for e, j in zip(previous.entries, _old_same(same, len(previous.entries)), strict=True)]
    old_queries = sum(q for q, _ in old_counts)
    if old_queries + sum(p for _, p in old_counts) != old_index.size or len(previous.rows) != old_index.size:
        return None  # built with other index settings
    if sum(q + p for q, p in new_counts) > config.approximate_above:
        return None
    old_start = ([0], [old_queries])
    for q, p in old_counts:
        old_start[0].append(old_start[0][-1] + q)
        old_start[1].append(old_start[1][-1] + p)
    # rows and vectors per section (queries of every entry, then passages), as a build orders them:
    # an unchanged entry's rows are the previous ones (renumbered only when entries before it were
    # added or withdrawn), a changed entry's are made afresh with their vectors from the cache
    rows: tuple[list[Any], list[Any]] = ([], [])
    pieces: tuple[list[tuple[int, int] | np.ndarray], list[tuple[int, int] | np.ndarray]] = ([], [])
    for i, (entry, counts, j) in enumerate(zip(entries, new_counts, same, strict=True)):
        if j is not None:
            for section in (0, 1):
                start = old_start[section][j]
                stop = start + counts[section]
                block = previous.rows[start:stop]
                rows[section].extend(block if i == j else [r._replace(entry=i) for r in block])
                last = pieces[section][-1] if pieces[section] else None
                if isinstance(last, tuple) and last[1] == start:
                    pieces[section][-1] = (last[0], stop)
                elif stop > start:
                    pieces[section].append((start, stop))
            continue
        queries, passages, fresh = KnowledgeBase._texts([entry], config.embed_answers, config.embed_summaries)
        fresh = [r._replace(entry=i) for r in fresh]
        rows[0].extend(fresh[:len(queries)])
        rows[1].extend(fresh[len(queries):])
        if queries:
            pieces[0].append(cache.embed(queries, "query", embedder.embed_queries))
        if passages:
            pieces[1].append(cache.embed(passages, "passage", embedder.embed_passages))
    started = time.perf_counter()
    index = old_index.spliced([*pieces[0], *pieces[1]])
    manifest = IndexManifest(model_id=embedder.model_id, dim=old_index.dim, content_hash=content_hash(entries),
                             vectors=index.size, kind=index.kind, built_at=time.time(),
                             build_seconds=round(time.perf_counter() - started, 2))
    return index, rows[0] + rows[1], manifest


def load_baseline(directory: Path, topics: Mapping[str, Topic] | None = None) -> list[tuple[Entry, str]]:
    """Every entry file of ``directory`` with its text, validated; any error refuses them all."""
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
            problems.append(Problem.of(str(path), "(file)", "malformed_yaml", detail=exc))
            continue
        entry, found = validate_entry(raw, file=str(path), topics=topics, stem=path.stem, seen=seen)
        problems.extend(p for p in found if p.severity == "error")
        if entry is not None:
            seen[entry.id] = str(path)
            loaded.append((entry, text))
    if problems:
        raise ContentInvalid(problems)
    return loaded


class CachedEmbedder:
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
