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
import io
import json
import math
import os
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, NamedTuple, overload

import bm25s
import numpy as np

from ._config import IndexConfig, SearchConfig
from ._embedder import Embedder
from ._entries import Entry, Source, Translation, content_hash
from ._index import FaissIndex, IndexManifest, IndexMismatch, VectorIndex
from ._lexical import CharIndex, Lexicon, bm25_postings
from ._textnorm import lexical_tokens
from ._translit import uz_cyrillic_to_latin

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
_KINDS = ("question", "title", "answer", "summary")


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

    def admits(self, entry: Entry) -> bool:
        """Whether ``entry`` is written for this person (an empty filter on the entry admits all)."""
        if self.origin and entry.origin and self.origin not in entry.origin:
            return False
        if self.destination and entry.destination and self.destination not in entry.destination:
            return False
        return not (self.stage and entry.stage not in ("any", self.stage))


@dataclass(frozen=True)
class Hit:
    entry: Entry
    fused: float
    dense: float
    dense_rank: int | None
    bm25_rank: int | None
    char_rank: int | None = None
    char: float = 0.0


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
    #: the answerability features of the top hit (see ``KnowledgeBase.features``)
    features: dict[str, float] = field(default_factory=dict)
    #: the calibrated probability that the top entry answers the question (1.0 with no model)
    answerable: float = 1.0

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


class _Row(NamedTuple):
    """One indexed text. A named tuple, not a frozen dataclass: a live swap at 10,000 entries makes
    200,000 of them, and a frozen dataclass's ``__init__`` costs several times a tuple's."""

    entry: int
    lang: str
    kind: str
    #: the position of a question among its translation's questions (0 for other kinds)
    n: int = 0


class _RowTable(Sequence[_Row]):
    """The indexed texts' rows kept as four small arrays, read back as ``_Row`` values.

    Why: a knowledge base of 10,000 entries indexes a million texts; a million ``_Row`` objects
    cost about 110 MB of Python objects, these arrays 8 MB.
    """

    def __init__(self, rows: Iterable[_Row]) -> None:
        langs: dict[str, int] = {}
        kinds: dict[str, int] = {}
        entry: list[int] = []
        lang: list[int] = []
        kind: list[int] = []
        n: list[int] = []
        for r in rows:
            entry.append(r.entry)
            lang.append(langs.setdefault(r.lang, len(langs)))
            kind.append(kinds.setdefault(r.kind, len(kinds)))
            n.append(r.n)
        self._entry = np.asarray(entry, dtype=np.int32)
        self._lang = np.asarray(lang, dtype=np.uint16)
        self._kind = np.asarray(kind, dtype=np.uint8)
        self._n = np.asarray(n, dtype=np.int32)
        self._langs = tuple(langs)
        self._kinds = tuple(kinds)

    def __len__(self) -> int:
        return len(self._entry)

    def __eq__(self, other: object) -> bool:
        """Row by row, as the lists of ``_Row`` they stand for compare."""
        if not isinstance(other, Sequence) or isinstance(other, str):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable-like container semantics, as a list

    def _row(self, i: int) -> _Row:
        return _Row(int(self._entry[i]), self._langs[self._lang[i]], self._kinds[self._kind[i]], int(self._n[i]))

    @overload
    def __getitem__(self, i: int) -> _Row: ...

    @overload
    def __getitem__(self, i: slice) -> list[_Row]: ...

    def __getitem__(self, i: int | slice) -> _Row | list[_Row]:
        if isinstance(i, slice):
            return [self._row(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError("row index out of range")
        return self._row(i)

    def __iter__(self) -> Iterator[_Row]:
        for e, lang, kind, n in zip(self._entry.tolist(), self._lang.tolist(), self._kind.tolist(),
                                    self._n.tolist(), strict=True):
            yield _Row(e, self._langs[lang], self._kinds[kind], n)


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
    return profile is None or profile.admits(entry)


# ---------------------------------------------------------------------------- scripts
_SCRIPT_NAMES = {"LATIN": "Latn", "CYRILLIC": "Cyrl", "ARABIC": "Arab", "BENGALI": "Beng", "SINHALA": "Sinh",
                 "TAMIL": "Taml", "DEVANAGARI": "Deva"}


def script_of(text: str) -> str | None:
    """The script most of the question's letters are written in (``Cyrl``, ``Arab``, ``Latn``...).

    Why: channel weights are calibrated per script as well as per language, and the script is read
    from the text itself, so Russian typed in Latin letters gets the Latin weights.
    """
    counts: dict[str, int] = {}
    for ch in text[:300]:
        if ch.isalpha():
            name = unicodedata.name(ch, "").split(" ", 1)[0]
            code = _SCRIPT_NAMES.get(name)
            if code:
                counts[code] = counts.get(code, 0) + 1
    return max(counts, key=lambda c: counts[c]) if counts else None


# ---------------------------------------------------------------------------- vector cache
class EmbeddingCache:
    """Vectors of texts already embedded, on disk, keyed by model, prefix kind and text.

    Why: embedding every answer with PyTorch takes minutes on two cores; an edited entry should cost
    the embedding of what changed, not of the whole knowledge base (and the 12 new topics only
    their own texts).
    """

    def __init__(self, path: Path | None, model_id: str, *, fresh: bool = False) -> None:
        self.path = path
        self.model_id = model_id
        self._vectors: dict[str, np.ndarray] = {}
        self._dirty = False
        # fresh: a forced rebuild (``kb build --rebuild``) embeds everything again, e.g. after the
        # model files were replaced under the same name
        if path is not None and not fresh:
            try:
                with np.load(path, allow_pickle=False) as data:
                    keys, vectors = data["keys"], data["vectors"]
                    self._vectors = {str(k): v for k, v in zip(keys, vectors, strict=True)}
            except (OSError, ValueError, KeyError):
                self._vectors = {}

    def _key(self, kind: str, text: str) -> str:
        return hashlib.sha256(f"{self.model_id}\x00{kind}\x00{text}".encode()).hexdigest()[:24]

    def embed(self, texts: Sequence[str], kind: str, fn: Callable[[list[str]], np.ndarray]) -> np.ndarray:
        keys = [self._key(kind, t) for t in texts]
        missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in self._vectors}.items())
        if missing:
            vectors = fn([t for _, t in missing])
            for (k, _), v in zip(missing, vectors, strict=True):
                self._vectors[k] = np.asarray(v, dtype=np.float32)
            self._dirty = True
        if not texts:
            return np.zeros((0, 0), np.float32)
        return np.stack([self._vectors[k] for k in keys]).astype(np.float32, copy=False)

    def export(self, texts: Sequence[tuple[str, str]]) -> bytes:
        """The vectors of ``(kind, text)`` pairs already embedded, as npz bytes (stored with a revision)."""
        keys = sorted({self._key(kind, text) for kind, text in texts} & self._vectors.keys())
        buf = io.BytesIO()
        vectors = np.stack([self._vectors[k] for k in keys]) if keys else np.zeros((0, 0), np.float32)
        np.savez(buf, keys=np.array(keys, dtype=str), vectors=vectors.astype(np.float32))
        return buf.getvalue()

    def merge(self, blob: bytes) -> int:
        """Add vectors exported by :meth:`export` (another process embedded them); returns how many."""
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            keys, vectors = data["keys"], data["vectors"]
            for k, v in zip(keys, vectors, strict=True):
                self._vectors[str(k)] = v
        return len(keys)

    def save(self) -> None:
        if self.path is None or not self._dirty:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as fh:
                keys = list(self._vectors)
                np.savez(fh, keys=np.array(keys), vectors=np.stack([self._vectors[k] for k in keys]))
            os.replace(tmp, self.path)
            self._dirty = False
        except OSError:
            pass  # read-only: the next build embeds again


def _return_free_memory() -> None:
    """Hand the heap's free pages back to the system after building the lexical indexes (glibc only).

    Why: building them for 10,000 entries allocates and frees gigabytes of mid-sized arrays and
    lists; glibc keeps the freed heap, so a server that had built a large knowledge base stayed that
    much larger for its whole life. ``malloc_trim`` returns every free page; where it does not
    exist (musl, macOS) nothing happens.
    """
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).malloc_trim(0)


# ---------------------------------------------------------------------------- fusion
def fuse(mode: str, rrf_k: int, w_dense: float, w_bm25: float, w_char: float, dense: Mapping[int, float],
         lexical: Mapping[int, float], chars: Mapping[int, float]) -> dict[int, float]:
    """One score per entry from the three channels (``SearchConfig.fusion``)."""
    fused: dict[int, float] = {}
    if mode == "score":
        floor = min(dense.values()) if dense else 0.0  # an entry the dense channel did not return
        best_lex = max(lexical.values()) if lexical else 1.0
        for e in {*dense, *(chars if w_char > 0 else {}), *(lexical if w_bm25 > 0 else {})}:
            fused[e] = (w_dense * dense.get(e, floor) + w_char * chars.get(e, 0.0)
                        + w_bm25 * lexical.get(e, 0.0) / best_lex)
        return fused
    for scores, weight in ((dense, w_dense), (lexical, w_bm25), (chars, w_char)):
        if weight <= 0:
            continue
        for r, e in enumerate(sorted(scores, key=lambda e: -scores[e])):
            fused[e] = fused.get(e, 0.0) + weight / (rrf_k + r + 1)
    return fused


# ---------------------------------------------------------------------------- answerability
def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, x))))


@dataclass(frozen=True)
class _Doc:
    """One translation's lexical document: the entry, its language and which questions it keeps."""

    entry: int
    lang: str
    texts: tuple[str, ...]


class KnowledgeBase:
    """Curated entries, their vectors, BM25 and character n-gram postings, and the decision rule."""

    def __init__(self, entries: Sequence[Entry], embedder: Embedder, index: VectorIndex, rows: Sequence[_Row],
                 config: SearchConfig, *, fallbacks: Mapping[str, Sequence[str]] | None = None,
                 default_lang: str = "en", manifest: IndexManifest | None = None,
                 out_of_scope: Sequence[str] | None = None, cache_dir: Path | None = None,
                 hidden_rows: Iterable[int] = (), hidden_entries: Iterable[int] = (),
                 _oos_vectors: np.ndarray | None = None, _lexicon: Lexicon | None = None) -> None:
        self.entries = list(entries)
        self.embedder = embedder
        self.index = index
        self.rows: Sequence[_Row] = rows if isinstance(rows, _RowTable) else _RowTable(rows)
        self.config = config
        self.fallbacks = {k: list(v) for k, v in (fallbacks or {}).items()}
        self.default_lang = default_lang
        self.manifest = manifest
        self._by_id = {e.id: e for e in self.entries}
        self._hidden_rows = frozenset(hidden_rows)
        self._hidden_entries = frozenset(hidden_entries)
        if _oos_vectors is not None:
            self._oos: np.ndarray | None = _oos_vectors
        else:
            examples = list(out_of_scope if out_of_scope is not None else load_out_of_scope())
            self._oos = _embed_cached(embedder, examples, cache_dir) if examples else None
        # the previous knowledge base's lexicon (a live swap) saves tokenising what did not change
        lexicon = self._lexicon = Lexicon(lexical_tokens, _lexicon)
        hidden_questions = {(r.entry, r.lang, r.n) for r in (self.rows[i] for i in self._hidden_rows)
                            if r.kind == "question"}
        docs: list[_Doc] = []
        # answerability: what each entry says in any language (titles, kept questions, summaries,
        # answers), as sorted arrays of token ids (a set of strings per entry would cost hundreds of
        # MB at 10,000 entries), and how rare each token is across entries
        self._entry_bags: dict[int, np.ndarray] = {}
        self._title_bags: dict[int, np.ndarray] = {}
        for i, entry in enumerate(self.entries):
            if i in self._hidden_entries:
                continue
            bag_texts: list[str] = []
            titles: list[str] = []
            for lang, tr in entry.translations.items():
                kept = [q for n, q in enumerate(tr.questions) if (i, lang, n) not in hidden_questions]
                docs.append(_Doc(i, lang, (tr.title, *kept)))
                bag_texts.extend((tr.title, tr.summary or "", tr.answer, *kept))
                titles.extend((tr.title, tr.short_title or ""))
            self._entry_bags[i] = lexicon.bag(tuple(bag_texts))
            self._title_bags[i] = lexicon.bag(tuple(titles))
        self._docs = docs
        self._bm25_docs = [d.entry for d in docs]
        keys = [" ".join(d.texts) for d in docs]
        postings = [lexicon.doc(key) for key in keys]
        # one vocabulary for BM25 and the word bags; a word no document or bag uses any more (a
        # vocabulary carried over from earlier builds) scores nothing, as if it were unknown
        self._tok_id = lexicon.tokens
        self._bm25 = bm25s.BM25()
        same = lexicon.same_documents(keys, self._bm25_docs)
        if same is not None:
            built, self._vocab, self._char = same
        else:
            built = bm25_postings(postings, len(lexicon.tokens), k1=self._bm25.k1, b=self._bm25.b,
                                  method=self._bm25.method, idf_method=self._bm25.idf_method,
                                  dtype=self._bm25.dtype)
            self._vocab = lexicon.tokens
            self._char = CharIndex.from_postings(postings, lexicon.grams, self._bm25_docs)
        self._bm25.scores = built.as_bm25s()
        self._bm25.vocab_dict = self._vocab
        self._bm25.nonoccurrence_array = None
        df = np.bincount(np.concatenate(list(self._entry_bags.values())) if self._entry_bags
                         else np.zeros(0, np.int32), minlength=len(lexicon.tokens))
        n_entries = max(1, len(self._entry_bags))
        self._known = df > 0
        self._idf = (np.log((1 + n_entries) / (0.5 + df))).astype(np.float32)
        self._idf_unknown = math.log((1 + n_entries) / 0.5)
        lexicon.seal(tokens_used=int(np.count_nonzero(self._known)), grams_used=self._char.used)
        lexicon.built = (keys, self._bm25_docs, built, self._vocab, self._char)
        _return_free_memory()

    def masked(self, *, rows: Iterable[int] = (), entries: Iterable[int] = ()) -> KnowledgeBase:
        """The same knowledge base without some indexed texts or whole entries, for held-out evaluation.

        Why masking and not re-embedding: the vectors do not change when a text is left out, so a fold
        costs a flat index over the kept vectors and the lexical postings, not minutes of PyTorch.
        """
        hidden_entries = set(entries)
        hidden_rows = set(rows) | {i for i, r in enumerate(self.rows) if r.entry in hidden_entries}
        vectors = self.vectors()
        keep = np.array([i for i in range(len(self.rows)) if i not in hidden_rows], dtype=np.int64)
        index = FaissIndex.build(vectors[keep], keep, approximate_above=10**9)
        return KnowledgeBase(self.entries, self.embedder, index, self.rows, self.config, fallbacks=self.fallbacks,
                             default_lang=self.default_lang, manifest=self.manifest, hidden_rows=hidden_rows,
                             hidden_entries=hidden_entries, _oos_vectors=self._oos, _lexicon=self._lexicon)

    def vectors(self) -> np.ndarray:
        """Row vectors in row order (the held-out evaluation reuses a question's own vector as the query)."""
        cached = getattr(self, "_vectors", None)
        if cached is None:
            cached = self._vectors = self.index.vectors()
        return cached

    # ------------------------------------------------------------------ building
    @staticmethod
    def _texts(entries: Sequence[Entry], embed_answers: bool,
               embed_summaries: bool = False) -> tuple[list[str], list[str], list[_Row]]:
        queries: list[str] = []
        passages: list[str] = []
        rows_q: list[_Row] = []
        rows_p: list[_Row] = []
        for i, entry in enumerate(entries):
            for lang, tr in entry.translations.items():
                for n, q in enumerate(tr.questions):
                    queries.append(q)
                    rows_q.append(_Row(i, lang, "question", n))
                queries.append(tr.title)
                rows_q.append(_Row(i, lang, "title"))
                if embed_answers:
                    passages.append(tr.answer)
                    rows_p.append(_Row(i, lang, "answer"))
                if embed_summaries and tr.summary:
                    passages.append(tr.summary)
                    rows_p.append(_Row(i, lang, "summary"))
        return queries, passages, rows_q + rows_p

    @classmethod
    def build_index(cls, entries: Sequence[Entry], embedder: Embedder, config: IndexConfig, *,
                    progress: bool = False, cache: EmbeddingCache | None = None,
                    ) -> tuple[FaissIndex, list[_Row], IndexManifest]:
        start = time.perf_counter()
        queries, passages, rows = cls._texts(entries, config.embed_answers, config.embed_summaries)
        cache = cache or EmbeddingCache(None, embedder.model_id)

        def embed_queries(texts: list[str]) -> np.ndarray:
            chunks: list[np.ndarray] = []
            step = 256
            iterator: Iterable[int] = range(0, len(texts), step)
            if progress:
                from tqdm import tqdm

                iterator = tqdm(iterator, desc="embedding questions", unit="batch",
                                total=(len(texts) + step - 1) // step)
            for lo in iterator:
                chunks.append(embedder.embed_queries(texts[lo:lo + step]))
            return np.concatenate(chunks)

        chunks = [cache.embed(queries, "query", embed_queries)] if queries else []
        if passages:
            chunks.append(cache.embed(passages, "passage", lambda t: embedder.embed_passages(t, progress=progress)))
        cache.save()
        vectors = np.concatenate(chunks) if chunks else np.zeros((0, embedder.dim), np.float32)
        index = FaissIndex.build(vectors, approximate_above=config.approximate_above, hnsw_m=config.hnsw_m,
                                 ef_construction=config.hnsw_ef_construction, ef_search=config.hnsw_ef_search,
                                 storage=config.storage, approximate_storage=config.approximate_storage)
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
        expected_rows = cls._texts(entries, index_config.embed_answers, index_config.embed_summaries)[2]
        if not rebuild:
            try:
                index, manifest, version = FaissIndex.load(directory, expect_model=embedder.model_id,
                                                           expect_dim=embedder.dim, expect_hash=digest)
                stored = json.loads((version / "rows.json").read_text())
                # indexes written before rows carried a question's position hold the same rows in
                # the same order: compare entry, language and kind only
                if [list(r)[:3] for r in stored] != [[r.entry, r.lang, r.kind] for r in expected_rows]:
                    raise IndexMismatch("the index holds other texts than the configuration asks for")
                wanted, key = ((index_config.approximate_storage, "approximate_storage") if index.kind == "hnsw"
                               else (index_config.storage, "storage"))
                if index.storage != wanted:
                    raise IndexMismatch(f"the index keeps {index.storage} vectors, index.{key} asks for {wanted}")
                rows = expected_rows
                return cls(entries, embedder, index, rows, search_config, manifest=manifest, cache_dir=directory,
                           **kwargs)
            except (IndexMismatch, OSError, ValueError, TypeError) as exc:
                if on_build:
                    on_build(f"building the index ({exc})")
        cache = EmbeddingCache(directory / "embeddings.npz" if save else None, embedder.model_id, fresh=rebuild)
        index, rows, manifest = cls.build_index(entries, embedder, index_config, progress=progress, cache=cache)
        if save:
            blob = json.dumps([[r.entry, r.lang, r.kind, r.n] for r in rows]).encode()
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

    def _visible(self, entry: int, profile: Profile | None) -> bool:
        return entry not in self._hidden_entries and _eligible(self.entries[entry], profile)

    def _dense(self, qvec: np.ndarray, profile: Profile | None) -> dict[int, float]:
        return self._dense_rows(qvec, profile)[1]

    def _dense_rows(self, qvec: np.ndarray, profile: Profile | None,
                    ) -> tuple[dict[int, float], dict[int, float], list[tuple[int, float, _Row]]]:
        """The best cosine per entry, the pooled cosine per entry (``dense_pool``), and the nearest
        visible rows (entry, cosine, row), best first.

        An entry with fewer than ``dense_pool`` rows among the candidates gets the lowest candidate
        cosine for the missing ones: it is no nearer than that.
        """
        scores, ids = self.index.search(qvec[None, :], self.config.dense_candidates)
        pool = self.config.dense_pool
        best: dict[int, float] = {}
        tops: dict[int, list[float]] = {}
        near: list[tuple[int, float, _Row]] = []
        floor = 0.0
        for score, row_id in zip(scores[0], ids[0], strict=True):
            if row_id < 0:
                continue
            floor = float(score)
            row = self.rows[int(row_id)]
            if not self._visible(row.entry, profile):
                continue
            if len(near) < 20:
                near.append((row.entry, float(score), row))
            if row.entry not in best:
                best[row.entry] = float(score)
            if pool > 1:
                got = tops.setdefault(row.entry, [])
                if len(got) < pool:
                    got.append(float(score))
        if pool == 1:
            return best, best, near
        pooled = {e: (sum(v) + floor * (pool - len(v))) / pool for e, v in tops.items()}
        return best, pooled, near

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
        return self._best_per_entry(scores, positive, profile)

    def _chars(self, query: str, profile: Profile | None) -> dict[int, float]:
        scores = self._char.scores(query)
        positive = np.flatnonzero(scores > 0)
        return self._best_per_entry(scores, positive[np.argsort(-scores[positive], kind="stable")][:100], profile)

    def _best_per_entry(self, scores: np.ndarray, docs: np.ndarray, profile: Profile | None) -> dict[int, float]:
        """Each visible entry's best document score, documents taken best first (stable ties)."""
        ordered = docs[np.argsort(-scores[docs], kind="stable")]
        best: dict[int, float] = {}
        for doc in ordered.tolist():
            entry = self._bm25_docs[doc]
            if entry not in best and self._visible(entry, profile):
                best[entry] = float(scores[doc])
        return best

    def _known_ids(self, query: str) -> tuple[np.ndarray, int]:
        """The ids of the question's distinct words that some entry uses, and how many distinct
        words it has."""
        tokens = set(lexical_tokens(query))
        ids = np.array([self._tok_id[t] for t in tokens if t in self._tok_id], dtype=np.int32)
        ids = ids[ids < len(self._known)]
        return ids[self._known[ids]], len(tokens)

    def _add_title_matches(self, fused: dict[int, float], query: str, weight: float) -> None:
        """Add ``weight`` times the IDF-weighted share of the question's known words that the entry's
        titles (any language) use.

        Why: "which documents for a patent in Russia" shares "which documents" with the documents
        checklist and "patent" with the patent entry; the title says what an entry is about, and a
        question naming it is asking about it. Held-out R@1 0.731 -> 0.739 (plain folds), 0.574 ->
        0.592 (grouped folds) at 0.03; removed topics answered with another entry unchanged.
        """
        ids, _ = self._known_ids(query)
        weights = self._idf[ids]
        total = float(weights.sum())
        if total <= 0:
            return
        for e in fused:
            bag = self._title_bags.get(e)
            if bag is not None and len(bag):
                fused[e] += weight * float(weights[np.isin(ids, bag, assume_unique=True)].sum()) / total

    def coverage(self, query: str, entry: int) -> tuple[float, float]:
        """How much of the question the entry speaks about: IDF-weighted share of its words found
        in the entry (any language), over the words the knowledge base knows and over all words.

        Why: "open a bank account in Russia" is near the returnee-business entry in meaning, but
        "bank" and "account" appear nowhere in it; a question an entry answers shares its rare words.
        """
        ids, n_tokens = self._known_ids(query)
        weights = self._idf[ids]
        bag = self._entry_bags.get(entry, np.zeros(0, np.int32))
        total_known = float(weights.sum())
        hit = float(weights[np.isin(ids, bag, assume_unique=True)].sum()) if len(ids) else 0.0
        unknown = n_tokens - len(ids)
        total_all = total_known + unknown * self._idf_unknown
        return (hit / total_known if total_known else 0.0, hit / total_all if total_all else 0.0)

    def search(self, query: str, lang: str | None = None, profile: Profile | None = None,
               *, limit: int = 10, qvec: np.ndarray | None = None) -> SearchResult:
        text = _clean_query(query, self.config.max_query_chars)
        script = script_of(text)
        if lang == "uz" and script == "Cyrl":
            # the knowledge base's Uzbek is written in Latin letters: meet it in its own alphabet
            # (the model and the n-grams both match Latin Uzbek better than a Cyrillic spelling)
            text = uz_cyrillic_to_latin(text)
        if qvec is None:
            qvec = self.embedder.embed_queries([text])[0]
        weights = self.config.weights_for(lang, script)
        dense, pooled, near = self._dense_rows(qvec, profile)
        lexical = self._lexical(text, profile)
        chars = self._chars(text, profile) if weights.char > 0 or self.config.answerability else {}
        cfg = self.config
        dense_rank = {e: r for r, e in enumerate(sorted(pooled, key=lambda e: -pooled[e]))}
        lex_rank = {e: r for r, e in enumerate(sorted(lexical, key=lambda e: -lexical[e]))}
        char_rank = {e: r for r, e in enumerate(sorted(chars, key=lambda e: -chars[e]))}
        fused = fuse(cfg.fusion, cfg.rrf_k, weights.dense, weights.bm25, weights.char, pooled, lexical, chars)
        if cfg.title_weight > 0:
            self._add_title_matches(fused, text, cfg.title_weight)
        order = sorted(fused, key=lambda e: (-fused[e], -dense.get(e, 0.0)))[:limit]
        hits = [Hit(self.entries[e], fused[e], dense.get(e, 0.0), dense_rank.get(e), lex_rank.get(e),
                    char_rank.get(e), chars.get(e, 0.0)) for e in order]
        oos = float(np.max(self._oos @ qvec)) if self._oos is not None else 0.0
        features: dict[str, float] = {}
        if order:
            features = self.features(text, lang, script, order[0], hits, dense_rank, lex_rank, char_rank, chars,
                                     oos, near)
        return self._decide(hits, lang, oos, features)

    def channels(self, text: str, qvec: np.ndarray, profile: Profile | None = None, *, chars: bool = True,
                 ) -> tuple[dict[int, float], dict[int, float], dict[int, float]]:
        """Each channel's best score per entry: dense cosine, BM25, character n-gram cosine."""
        return (self._dense(qvec, profile), self._lexical(text, profile),
                self._chars(text, profile) if chars else {})

    def features(self, text: str, lang: str | None, script: str | None, top: int, hits: Sequence[Hit],
                 dense_rank: Mapping[int, int], lex_rank: Mapping[int, int], char_rank: Mapping[int, int],
                 chars: Mapping[int, float], oos: float,
                 near: Sequence[tuple[int, float, _Row]] = ()) -> dict[str, float]:
        """Answerability features of the top entry (names match ``search.answerability`` in config.yml)."""
        top_hit = hits[0]
        topic = top_hit.entry.topic
        rivals = [h for h in hits[1:] if h.entry.topic != topic]

        def leads(ranks: Mapping[int, int]) -> float:
            first = min(ranks, key=lambda e: ranks[e]) if ranks else None
            return 1.0 if first is not None and self.entries[first].topic == topic else 0.0

        known, everything = self.coverage(text, top)
        char_top = chars.get(top, 0.0)
        feats = {
            "dense": top_hit.dense,
            "gap": top_hit.dense - max((h.dense for h in rivals), default=0.0),
            "margin": (top_hit.fused - rivals[0].fused) / top_hit.fused if rivals and top_hit.fused else 1.0,
            "agree": (leads(dense_rank) + leads(lex_rank) + leads(char_rank)) / 3.0,
            "coverage": known,
            "coverage_all": everything,
            "char": char_top,
            "oos_gap": top_hit.dense - oos,
            # the entry's other rows near the question: an entry that answers it is usually close
            # in several phrasings and languages, a merely-nearest one in a single row
            "support": sum(1 for e, _, _ in near[:10] if self.entries[e].topic == topic) / 10.0,
            "second": sorted((c for e, c, _ in near if e == top), reverse=True)[1:2][0]
            if sum(1 for e, _, _ in near if e == top) > 1 else 0.0,
            "same_lang": max((c for e, c, r in near if e == top and r.lang == lang), default=0.0),
            "bm25_rr": 1.0 / (1 + lex_rank[top]) if top in lex_rank else 0.0,
            "char_rr": 1.0 / (1 + char_rank[top]) if top in char_rank else 0.0,
        }
        if script:
            feats[f"script:{script}"] = 1.0
        return feats

    def answerability(self, features: Mapping[str, float]) -> float:
        model = self.config.answerability
        if not model or not features:
            return 1.0
        z = model.get("bias", 0.0) + sum(w * features.get(name, 0.0) for name, w in model.items() if name != "bias")
        return _sigmoid(z)

    def _decide(self, hits: list[Hit], lang: str | None, oos: float = 0.0,
                features: Mapping[str, float] | None = None) -> SearchResult:
        t = self.config.thresholds
        feats = dict(features or {})
        p = self.answerability(feats)
        if not hits:
            return SearchResult("handoff", "nothing in the knowledge base matches", hits, out_of_scope=oos,
                                features=feats, answerable=p)
        top = hits[0]
        top_dense = max(h.dense for h in hits[:3])
        if top_dense < t.handoff_below:
            return SearchResult("handoff", f"best similarity {top_dense:.3f} < {t.handoff_below}", hits,
                                out_of_scope=oos, features=feats, answerable=p)
        if oos >= top_dense - t.out_of_scope_margin:
            return SearchResult("handoff", f"closer to out-of-scope examples ({oos:.3f} vs {top_dense:.3f})",
                                hits, out_of_scope=oos, features=feats, answerable=p)
        # entries of the same topic are variants of one answer (e.g. per country): they do not compete
        rivals = [h for h in hits[1:] if h.entry.topic != top.entry.topic]
        margin = (top.fused - rivals[0].fused) / top.fused if rivals else 1.0
        gap = top.dense - max((h.dense for h in rivals), default=0.0)
        same_topic = [h for h in hits[1:4] if h.entry.topic == top.entry.topic and h.fused >= 0.9 * top.fused]
        why = f"similarity {top.dense:.3f}, gap {gap:.3f}, margin {margin:.2f}, answerable {p:.2f}"
        if top.dense >= t.answer_min and gap >= t.answer_gap and margin >= t.answer_margin and not same_topic \
                and p >= t.answerable_min:
            return SearchResult("answer", why, hits, answer=self.answer_for(top.entry, lang), out_of_scope=oos,
                                features=feats, answerable=p)
        close = [top, *[h for h in hits[1:] if h.dense >= top.dense - t.clarify_within][:2]]
        if len(close) < 2:
            close = hits[:2]
        candidates = []
        for h in close:
            code, tr, _ = self.localise(h.entry, lang)
            candidates.append(Candidate(h.entry.id, h.entry.topic, tr.title, code))
        return SearchResult("clarify", why, hits, candidates=candidates, out_of_scope=oos, features=feats,
                            answerable=p)
