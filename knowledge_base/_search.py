"""Hybrid search over curated entries and the answer / clarify / handoff decision.

Why hybrid: the dense multilingual model finds the right topic across languages and paraphrases;
BM25 over script-folded tokens rescues the cases the small model misses (names of agencies such as
BMET or SLBFE, Russian typed in Latin letters, rare languages). Reciprocal rank fusion combines the
two rankings without having to make their scores comparable.

Why a decision and not just a ranking: a confident wrong answer about a visa deadline harms a
person. Only a clear winner is answered; close candidates become clarify buttons; anything far from
every entry goes to a counsellor.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import bm25s
import numpy as np

from ._config import IndexConfig, SearchConfig
from ._embedder import Embedder
from ._entries import Entry, Source, Translation, content_hash
from ._index import FaissIndex, IndexManifest, IndexMismatch
from ._textnorm import lexical_tokens

__all__ = [
    "Answer",
    "Candidate",
    "Decision",
    "Hit",
    "KnowledgeBase",
    "Profile",
    "QueryError",
    "SearchResult",
]

Decision = Literal["answer", "clarify", "handoff"]
_KINDS = ("question", "title", "answer")


_OOS_FILE = Path(__file__).with_name("data") / "out_of_scope.yml"


def load_out_of_scope(path: Path | None = None) -> list[str]:
    """Reference messages outside the MRC's remit (see the file's header)."""
    import yaml

    raw = yaml.safe_load((path or _OOS_FILE).read_text(encoding="utf-8")) or []
    return [str(x) for x in raw]


def _embed_cached(embedder: Embedder, texts: Sequence[str], cache_dir: Path | None) -> np.ndarray:
    """Embed reference texts, keeping the vectors beside the index (keyed by model and texts).

    Why: embedding the out-of-scope set costs seconds on a small CPU at every start; the key holds
    the model id, so a new model or an edited file is simply a cache miss.
    """
    if cache_dir is None:
        return embedder.embed_queries(list(texts))
    key = hashlib.sha256("\n".join([embedder.model_id, *texts]).encode()).hexdigest()[:16]
    path = cache_dir / f"oos-{key}.npy"
    try:
        cached = np.load(path, allow_pickle=False)
        if cached.shape == (len(texts), embedder.dim):
            return cached.astype(np.float32, copy=False)
    except (OSError, ValueError):
        pass
    vectors = embedder.embed_queries(list(texts))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache_dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            np.save(fh, vectors, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only index directory only costs the re-embedding next time
    return vectors


class QueryError(ValueError):
    """The question cannot be searched (empty, or nothing but control characters)."""


@dataclass(frozen=True)
class Profile:
    """What the user told us about themselves; used to filter entries."""

    origin: str | None = None
    destination: str | None = None
    stage: str | None = None  # pre-departure | abroad | return


@dataclass(frozen=True)
class Hit:
    entry: Entry
    fused: float
    dense: float
    dense_rank: int | None
    bm25_rank: int | None


@dataclass(frozen=True)
class Answer:
    """A curated answer ready to show: text in the best available language with its provenance."""

    entry_id: str
    topic: str
    lang: str
    requested_lang: str
    fell_back: bool
    title: str
    text: str
    sources: tuple[Source, ...]
    reviewed_on: dt.date
    safety: str


@dataclass(frozen=True)
class Candidate:
    entry_id: str
    topic: str
    title: str
    lang: str


@dataclass(frozen=True)
class SearchResult:
    decision: Decision
    reason: str
    hits: list[Hit] = field(default_factory=list)
    answer: Answer | None = None
    candidates: list[Candidate] = field(default_factory=list)
    #: similarity to the closest out-of-scope example (chatter, other domains)
    out_of_scope: float = 0.0

    @property
    def top_topic(self) -> str | None:
        return self.hits[0].entry.topic if self.hits else None

    def ranked_topics(self) -> list[str]:
        """Distinct topics in rank order (several entries may share a topic)."""
        seen: list[str] = []
        for hit in self.hits:
            if hit.entry.topic not in seen:
                seen.append(hit.entry.topic)
        return seen


@dataclass(frozen=True)
class _Row:
    entry: int
    lang: str
    kind: str


def _clean_query(text: str, max_chars: int) -> str:
    if not isinstance(text, str):
        raise QueryError("the question must be text")
    cleaned = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in "\n\t\u200c\u200d")
    cleaned = " ".join(cleaned.split())
    if not cleaned:
        raise QueryError("the question is empty")
    return cleaned[:max_chars]


def _eligible(entry: Entry, profile: Profile | None) -> bool:
    if entry.status != "published":
        return False
    if profile is None:
        return True
    if profile.origin and entry.origin and profile.origin not in entry.origin:
        return False
    if profile.destination and entry.destination and profile.destination not in entry.destination:
        return False
    return not (profile.stage and entry.stage not in ("any", profile.stage))


class KnowledgeBase:
    """Curated entries, their vectors and BM25 postings, and the decision rule."""

    def __init__(self, entries: Sequence[Entry], embedder: Embedder, index: FaissIndex, rows: Sequence[_Row],
                 config: SearchConfig, *, fallbacks: Mapping[str, Sequence[str]] | None = None,
                 default_lang: str = "en", manifest: IndexManifest | None = None,
                 out_of_scope: Sequence[str] | None = None, cache_dir: Path | None = None) -> None:
        self.entries = list(entries)
        self.embedder = embedder
        self.index = index
        self.rows = list(rows)
        self.config = config
        self.fallbacks = {k: list(v) for k, v in (fallbacks or {}).items()}
        self.default_lang = default_lang
        self.manifest = manifest
        self._by_id = {e.id: e for e in self.entries}
        examples = list(out_of_scope if out_of_scope is not None else load_out_of_scope())
        self._oos = _embed_cached(embedder, examples, cache_dir) if examples else None
        self._bm25_docs: list[int] = []
        corpus: list[list[str]] = []
        for i, entry in enumerate(self.entries):
            for tr in entry.translations.values():
                corpus.append(lexical_tokens(" ".join([tr.title, *tr.questions])))
                self._bm25_docs.append(i)
        self._bm25 = bm25s.BM25()
        vocab: dict[str, int] = {}
        ids = [[vocab.setdefault(tok, len(vocab)) for tok in doc] for doc in corpus]
        self._vocab = vocab
        self._bm25.index(bm25s.tokenization.Tokenized(ids=ids, vocab=vocab), show_progress=False)

    # ------------------------------------------------------------------ building
    @staticmethod
    def _texts(entries: Sequence[Entry], embed_answers: bool) -> tuple[list[str], list[str], list[_Row]]:
        queries: list[str] = []
        passages: list[str] = []
        rows_q: list[_Row] = []
        rows_p: list[_Row] = []
        for i, entry in enumerate(entries):
            for lang, tr in entry.translations.items():
                for q in tr.questions:
                    queries.append(q)
                    rows_q.append(_Row(i, lang, "question"))
                queries.append(tr.title)
                rows_q.append(_Row(i, lang, "title"))
                if embed_answers:
                    passages.append(tr.answer)
                    rows_p.append(_Row(i, lang, "answer"))
        return queries, passages, rows_q + rows_p

    @classmethod
    def build_index(cls, entries: Sequence[Entry], embedder: Embedder, config: IndexConfig, *,
                    progress: bool = False) -> tuple[FaissIndex, list[_Row], IndexManifest]:
        start = time.perf_counter()
        queries, passages, rows = cls._texts(entries, config.embed_answers)
        chunks: list[np.ndarray] = []
        step = 256
        iterator: Iterable[int] = range(0, len(queries), step)
        if progress:
            from tqdm import tqdm

            iterator = tqdm(iterator, desc="embedding questions", unit="batch",
                            total=(len(queries) + step - 1) // step)
        for lo in iterator:
            chunks.append(embedder.embed_queries(queries[lo:lo + step]))
        if passages:
            chunks.append(embedder.embed_passages(passages, progress=progress))
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), np.float32)
        index = FaissIndex.build(vectors, approximate_above=config.approximate_above, hnsw_m=config.hnsw_m,
                                 ef_construction=config.hnsw_ef_construction, ef_search=config.hnsw_ef_search)
        manifest = IndexManifest(model_id=embedder.model_id, dim=int(vectors.shape[1]),
                                 content_hash=content_hash(entries), vectors=int(vectors.shape[0]),
                                 kind=index.kind, built_at=time.time(),
                                 build_seconds=round(time.perf_counter() - start, 2))
        return index, rows, manifest

    @classmethod
    def open(cls, entries: Sequence[Entry], embedder: Embedder, index_config: IndexConfig,
             search_config: SearchConfig, *, root: Path | None = None, rebuild: bool = False,
             progress: bool = False, save: bool = True, on_build: Callable[[str], None] | None = None,
             **kwargs: Any) -> KnowledgeBase:
        """Load the saved index if it matches content and model, else build (and save) a new one."""
        entries = sorted(entries, key=lambda e: e.id)
        directory = index_config.dir if index_config.dir.is_absolute() or root is None else root / index_config.dir
        digest = content_hash(entries)
        if not rebuild:
            try:
                index, manifest, version = FaissIndex.load(directory, expect_model=embedder.model_id,
                                                           expect_dim=embedder.dim, expect_hash=digest)
                rows = [_Row(*r) for r in json.loads((version / "rows.json").read_text())]
                return cls(entries, embedder, index, rows, search_config, manifest=manifest, cache_dir=directory,
                           **kwargs)
            except (IndexMismatch, OSError, ValueError) as exc:
                if on_build:
                    on_build(f"building the index ({exc})")
        index, rows, manifest = cls.build_index(entries, embedder, index_config, progress=progress)
        if save:
            blob = json.dumps([[r.entry, r.lang, r.kind] for r in rows]).encode()
            index.save(directory, manifest, extra={"rows.json": blob})
        return cls(entries, embedder, index, rows, search_config, manifest=manifest,
                   cache_dir=directory if save else None, **kwargs)

    # ------------------------------------------------------------------ answering
    def fallback_chain(self, lang: str | None) -> list[str]:
        chain: list[str] = []
        for code in [lang, *self.fallbacks.get(lang or "", []), self.default_lang, "en"]:
            if code and code not in chain:
                chain.append(code)
        return chain

    def localise(self, entry: Entry, lang: str | None) -> tuple[str, Translation, bool]:
        """The translation to show: the user's language, else the next one along their chain."""
        for code in self.fallback_chain(lang):
            if code in entry.translations:
                return code, entry.translations[code], code != lang
        code = next(iter(entry.translations))
        return code, entry.translations[code], True

    def answer_for(self, entry: Entry, lang: str | None) -> Answer:
        code, tr, fell_back = self.localise(entry, lang)
        return Answer(entry.id, entry.topic, code, lang or code, fell_back, tr.title, tr.answer,
                      tuple(entry.sources), entry.reviewed_on, entry.safety)

    def get(self, entry_id: str) -> Entry | None:
        return self._by_id.get(entry_id)

    def _dense(self, qvec: np.ndarray, profile: Profile | None) -> dict[int, float]:
        scores, ids = self.index.search(qvec[None, :], self.config.dense_candidates)
        best: dict[int, float] = {}
        for score, row_id in zip(scores[0], ids[0], strict=True):
            if row_id < 0:
                continue
            row = self.rows[int(row_id)]
            if row.entry in best or not _eligible(self.entries[row.entry], profile):
                continue
            best[row.entry] = float(score)
        return best

    def _lexical(self, query: str, profile: Profile | None) -> dict[int, float]:
        tokens = [self._vocab[t] for t in lexical_tokens(query) if t in self._vocab]
        if not tokens:
            return {}
        # scores straight from the postings: bm25s's retrieve() first turns the ids back into
        # strings through a reverse vocabulary it rebuilds on every call (a millisecond per query
        # here, most of the lexical cost)
        scores = self._bm25.get_scores_from_ids(tokens)
        positive = np.flatnonzero(scores > 0)
        k = 100
        if len(positive) > k:
            positive = positive[np.argpartition(-scores[positive], k - 1)[:k]]
        positive = positive[np.argsort(-scores[positive], kind="stable")]
        best: dict[int, float] = {}
        for doc in positive.tolist():
            entry = self._bm25_docs[doc]
            if entry not in best and _eligible(self.entries[entry], profile):
                best[entry] = float(scores[doc])
        return best

    def search(self, query: str, lang: str | None = None, profile: Profile | None = None,
               *, limit: int = 10) -> SearchResult:
        text = _clean_query(query, self.config.max_query_chars)
        qvec = self.embedder.embed_queries([text])[0]
        dense = self._dense(qvec, profile)
        lexical = self._lexical(text, profile)
        cfg = self.config
        dense_rank = {e: r for r, e in enumerate(sorted(dense, key=lambda e: -dense[e]))}
        lex_rank = {e: r for r, e in enumerate(sorted(lexical, key=lambda e: -lexical[e]))}
        fused: dict[int, float] = {}
        for e, r in dense_rank.items():
            fused[e] = fused.get(e, 0.0) + cfg.dense_weight / (cfg.rrf_k + r + 1)
        for e, r in lex_rank.items():
            fused[e] = fused.get(e, 0.0) + cfg.bm25_weight / (cfg.rrf_k + r + 1)
        order = sorted(fused, key=lambda e: (-fused[e], -dense.get(e, 0.0)))[:limit]
        hits = [Hit(self.entries[e], fused[e], dense.get(e, 0.0), dense_rank.get(e), lex_rank.get(e))
                for e in order]
        oos = float(np.max(self._oos @ qvec)) if self._oos is not None else 0.0
        return self._decide(hits, lang, oos)

    def _decide(self, hits: list[Hit], lang: str | None, oos: float = 0.0) -> SearchResult:
        t = self.config.thresholds
        if not hits:
            return SearchResult("handoff", "nothing in the knowledge base matches", hits, out_of_scope=oos)
        top = hits[0]
        top_dense = max(h.dense for h in hits[:3])
        if top_dense < t.handoff_below:
            return SearchResult("handoff", f"best similarity {top_dense:.3f} < {t.handoff_below}", hits,
                                out_of_scope=oos)
        if oos >= top_dense - t.out_of_scope_margin:
            return SearchResult("handoff", f"closer to out-of-scope examples ({oos:.3f} vs {top_dense:.3f})",
                                hits, out_of_scope=oos)
        # entries of the same topic are variants of one answer (e.g. per country): they do not compete
        rivals = [h for h in hits[1:] if h.entry.topic != top.entry.topic]
        margin = (top.fused - rivals[0].fused) / top.fused if rivals else 1.0
        gap = top.dense - max((h.dense for h in rivals), default=0.0)
        same_topic = [h for h in hits[1:4] if h.entry.topic == top.entry.topic and h.fused >= 0.9 * top.fused]
        why = f"similarity {top.dense:.3f}, gap {gap:.3f}, margin {margin:.2f}"
        if top.dense >= t.answer_min and gap >= t.answer_gap and margin >= t.answer_margin and not same_topic:
            return SearchResult("answer", why, hits, answer=self.answer_for(top.entry, lang), out_of_scope=oos)
        close = [top, *[h for h in hits[1:] if h.dense >= top.dense - t.clarify_within][:2]]
        if len(close) < 2:
            close = hits[:2]
        candidates = []
        for h in close:
            code, tr, _ = self.localise(h.entry, lang)
            candidates.append(Candidate(h.entry.id, h.entry.topic, tr.title, code))
        return SearchResult("clarify", why, hits, candidates=candidates, out_of_scope=oos)
