"""Live content, the parts that need no database: what a revision stores and how a worker builds
its knowledge base from published revisions.

Why revisions carry vectors: publishing embeds only the texts that changed (the rest are copied
from the revision before), once, in the process that publishes; every other worker and replica
reads the vectors and rebuilds its index without running the model. The tables, the workflow and
the database reads live in ``bot.content`` (``knowledge_base`` imports no other package).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import IndexConfig, SearchConfig
from ._embedder import Embedder
from ._entries import Entry, Problem, Topic, load_topics, validate_entry
from ._search import EmbeddingCache, KnowledgeBase
from ._yamlio import parse_entry_text

__all__ = [
    "CachedEmbedder",
    "ContentInvalid",
    "LiveContent",
    "build_live_knowledge_base",
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
