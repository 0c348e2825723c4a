"""The lexical channels' postings (BM25 over words, TF-IDF over character n-grams, the entries'
word bags), built so that the next knowledge base reuses the work of the previous one.

Why: publishing one entry at 10,000 entries rebuilt every posting, and tokenising and n-gramming
18,000 documents in Python was most of a minute. Per-document work (tokens, n-grams, their counts)
is kept in a :class:`Lexicon` keyed by the document's text; the next knowledge base copies the
vocabularies (ids stay valid: they only grow) and computes only the documents it has not seen.

Why everything corpus-wide is recomputed: IDF, BM25's average document length and the n-gram
vectors' norms depend on every document, so one edited entry changes the weights of postings in
thousands of others. Those are a few vectorised numpy passes over the cached per-document arrays
(well under a second at 10,000 entries). No figure depends on the vocabulary's numbering (a
document's postings are summed in its own first-occurrence order, a query's in the query's order),
so a knowledge base derived from the previous one scores exactly like one built from scratch;
``tests/knowledge_base/test_incremental.py`` checks it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import regex
from bm25s.scoring import _select_idf_scorer, _select_tfc_scorer
from scipy import sparse

from ._textnorm import fold

__all__ = ["BM25Postings", "CharIndex", "DocPostings", "Lexicon", "bm25_postings", "char_ngrams"]

_WORD = regex.compile(r"[\p{L}\p{M}\p{N}]+")


def char_ngrams(text: str, lo: int = 3, hi: int = 5) -> list[str]:
    """Character n-grams of the folded words, each padded with spaces (``char_wb``-style).

    Why: Tajik and Kyrgyz morphology and spelling variants (``регистратсия`` / ``регистрация``,
    ``patent``/``патент``) share n-grams where whole words and a small model's vectors do not.
    """
    out: list[str] = []
    for word in _WORD.findall(fold(text)):
        padded = f" {word} "
        for n in range(lo, hi + 1):
            if len(padded) < n:
                break
            out.extend(padded[i:i + n] for i in range(len(padded) - n + 1))
    return out


def _count(items: Sequence[str], vocab: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
    """Distinct ids (in order of first occurrence, adding new items to ``vocab``) and their counts."""
    counts = Counter(items)
    ids = np.fromiter((vocab.setdefault(g, len(vocab)) for g in counts), dtype=np.int32, count=len(counts))
    return ids, np.fromiter(counts.values(), dtype=np.int64, count=len(counts))


def _postings_t(items: np.ndarray, lengths: np.ndarray, values: np.ndarray, n_vocab: int,
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Item-major postings (CSR data, indices, indptr) from document-major ones (``items`` of each
    document in turn, ``lengths`` per document): each item's documents in document order.

    scipy's CSR to CSC conversion is a counting sort in C: ten times faster than sorting."""
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    by_doc = sparse.csr_matrix((values, items, indptr), shape=(len(lengths), n_vocab))
    by_item = by_doc.tocsc()
    return by_item.data, by_item.indices, by_item.indptr


@dataclass(frozen=True)
class DocPostings:
    """One lexical document's distinct words and n-grams (ids of the lexicon that made them)."""

    tokens: np.ndarray
    token_tf: np.ndarray
    length: int
    grams: np.ndarray
    gram_tf: np.ndarray


class CharIndex:
    """TF-IDF over character n-grams (sublinear tf, l2-normalised), cosine by one sparse product.

    ``groups``: the entry each document belongs to; an n-gram's rarity (IDF) is counted over
    entries. A document is one translation, so counting documents makes a language's own function
    words ("kadom", "uchun": "which", "for") look rarer than a content word every language shares
    ("patent", "Rossiya"), and a Tajik question matched the entry with the most Tajik "which"s.
    Over entries (Dec 2026): held-out R@1 0.713 -> 0.731 (plain folds), 0.550 -> 0.574 (grouped).
    """

    def __init__(self, docs: Iterable[Sequence[str]], groups: Sequence[int] | None = None) -> None:
        vocab: dict[str, int] = {}
        counted = [_count(grams, vocab) for grams in docs]
        self._assemble([c[0] for c in counted], [c[1] for c in counted], vocab, groups)

    @classmethod
    def from_postings(cls, docs: Sequence[DocPostings], vocab: dict[str, int],
                      groups: Sequence[int] | None = None) -> CharIndex:
        index = cls.__new__(cls)
        index._assemble([d.grams for d in docs], [d.gram_tf for d in docs], vocab, groups)
        return index

    def _assemble(self, ids_per_doc: Sequence[np.ndarray], counts_per_doc: Sequence[np.ndarray],
                  vocab: dict[str, int], groups: Sequence[int] | None = None) -> None:
        n_docs = len(ids_per_doc)
        n_vocab = max(1, len(vocab))
        lengths = np.fromiter((len(a) for a in ids_per_doc), dtype=np.int64, count=n_docs)
        ids = np.concatenate(ids_per_doc) if n_docs else np.zeros(0, np.int32)
        counts = np.concatenate(counts_per_doc) if n_docs else np.zeros(0, np.int64)
        doc_of = np.repeat(np.arange(n_docs, dtype=np.int32), lengths)
        if groups is not None and len(ids):
            width = n_vocab + 1
            owners = np.repeat(np.asarray(groups, dtype=np.int64), lengths)
            used = np.unique(owners * width + ids)
            df = np.bincount(used % width, minlength=n_vocab)[:n_vocab]
            n_units = len(set(groups))
        else:
            df = np.bincount(ids, minlength=n_vocab)
            n_units = n_docs
        idf = (np.log((1 + max(1, n_units)) / (1 + df)) + 1.0).astype(np.float32)
        # an n-gram no document uses any more (the vocabulary is shared with earlier builds) is
        # unknown, exactly as in a knowledge base built from scratch
        idf[df == 0] = 0.0
        values = (1.0 + np.log(counts)).astype(np.float32) * idf[ids]
        # each document's squared weights summed in its own order: the same whatever the numbering
        sums = np.bincount(doc_of, weights=values * values, minlength=n_docs)
        norms = np.sqrt(sums).astype(np.float32)
        norms[norms == 0] = 1.0
        values = values * (np.float32(1.0) / norms)[doc_of]
        data, indices, indptr = _postings_t(ids, lengths, values, n_vocab)
        # only the postings (n-gram -> documents) are kept: a query touches few n-grams
        self.matrix_t = sparse.csr_matrix((data, indices, indptr), shape=(n_vocab, max(1, n_docs)))
        self.idf = idf
        self.idf_max = float(idf.max()) if len(idf) else 0.0
        self.n_docs = n_docs
        self.vocab = vocab
        self.used = int(np.count_nonzero(df))

    def scores(self, text: str) -> np.ndarray:
        grams = char_ngrams(text)
        counts: dict[int, int] = {}
        for g in grams:
            j = self.vocab.get(g)
            if j is not None and j < len(self.idf) and self.idf[j] > 0:
                counts[j] = counts.get(j, 0) + 1
        if not counts:
            return np.zeros(self.n_docs, np.float32)
        idx = np.fromiter(counts, dtype=np.int64)
        w = (1.0 + np.log(np.fromiter(counts.values(), dtype=np.float32))) * self.idf[idx]
        # unknown n-grams still count in the query's norm: a question mostly made of words the
        # knowledge base never uses must not look like a perfect match
        norm = math.sqrt(float(np.sum(w * w)) + max(0, len(grams) - int(sum(counts.values()))) * self.idf_max ** 2)
        sub = self.matrix_t[idx]
        return np.asarray(sub.T @ (w / max(norm, 1e-9))).ravel()


@dataclass(frozen=True)
class BM25Postings:
    """What ``bm25s.BM25.get_scores_from_ids`` reads (its ``scores`` attribute)."""

    data: np.ndarray
    indices: np.ndarray
    indptr: np.ndarray
    num_docs: int

    def as_bm25s(self) -> dict[str, object]:
        return {"data": self.data, "indices": self.indices, "indptr": self.indptr, "num_docs": self.num_docs}


def bm25_postings(docs: Sequence[DocPostings], n_vocab: int, *, k1: float, b: float, method: str,
                  idf_method: str, dtype: str = "float32") -> BM25Postings:
    """The eager BM25 score matrix bm25s builds in ``BM25.index``, from cached per-document counts.

    Same formulas (bm25s's own scorer functions, applied to arrays), same float types, so the
    scores are bitwise those of ``bm25s.BM25.index`` (``test_incremental`` compares them). Only the
    variants without a non-occurrence term are supported (lucene, the default, and its kin).
    """
    if method in ("bm25l", "bm25+"):
        raise ValueError(f"BM25 variant {method} is not supported by the incremental index")
    n_docs = len(docs)
    n_vocab = max(1, n_vocab)
    doc_len = np.array([d.length for d in docs])
    avg_doc_len = doc_len.mean() if n_docs else 0.0
    distinct = np.fromiter((len(d.tokens) for d in docs), dtype=np.int64, count=n_docs)
    ids = np.concatenate([d.tokens for d in docs]) if n_docs else np.zeros(0, np.int32)
    tf = np.concatenate([d.token_tf for d in docs]) if n_docs else np.zeros(0, np.float32)
    doc_of = np.repeat(np.arange(n_docs, dtype=np.int32), distinct)
    df = np.bincount(ids, minlength=n_vocab)
    idf_fn: Callable[..., float] = _select_idf_scorer(idf_method)
    # bm25s computes each token's IDF in Python floats and stores it as float32: so do we, once
    # per distinct document frequency
    values, inverse = np.unique(df, return_inverse=True)
    idf = np.array([idf_fn(int(v), N=n_docs) if v else 0.0 for v in values.tolist()])[inverse].astype(dtype)
    tfc = _select_tfc_scorer(method)(tf_array=tf, l_d=doc_len[doc_of] if n_docs else doc_len, l_avg=avg_doc_len,
                                     k1=k1, b=b, delta=None)
    scores = (idf[ids] * tfc).astype(dtype)
    data, indices, indptr = _postings_t(ids, distinct, scores, n_vocab)
    return BM25Postings(data, indices, indptr, n_docs)


class Lexicon:
    """Vocabularies and per-document postings of one knowledge base, the start of the next one's.

    A derived lexicon copies the vocabularies (copy-on-write: the knowledge base still serving
    keeps its own) and reads the previous documents' postings without changing them.
    """

    def __init__(self, tokenize: Callable[[str], list[str]], previous: Lexicon | None = None) -> None:
        self._tokenize = tokenize
        reuse = previous is not None and previous.reusable()
        self.tokens: dict[str, int] = dict(previous.tokens) if previous is not None and reuse else {}
        self.grams: dict[str, int] = dict(previous.grams) if previous is not None and reuse else {}
        self._old_docs = previous.docs if previous is not None and reuse else {}
        self._old_bags = previous.bags if previous is not None and reuse else {}
        self._old_built = previous.built if previous is not None and reuse else None
        #: what the postings were assembled from and into: the documents' texts and entries, the
        #: BM25 matrix with its vocabulary, the n-gram index
        self.built: tuple[list[str], list[int], BM25Postings, dict[str, int], CharIndex] | None = None
        self.docs: dict[str, DocPostings] = {}
        self.bags: dict[tuple[str, ...], np.ndarray] = {}
        self.tokens_used = 0
        self.grams_used = 0
        #: documents taken over from the previous lexicon / computed here (for reports and tests)
        self.reused = 0
        self.computed = 0

    def reusable(self) -> bool:
        """Whether the next build may extend these vocabularies: not once most of them is dead
        (many edits since the last build from scratch), so memory stays bounded."""
        return len(self.tokens) <= 2 * self.tokens_used + 4096 and len(self.grams) <= 2 * self.grams_used + 16384

    def doc(self, text: str) -> DocPostings:
        got = self.docs.get(text)
        if got is not None:
            return got
        got = self._old_docs.get(text)
        if got is None:
            tokens = self._tokenize(text)
            tok_ids, tok_tf = _count(tokens, self.tokens)
            gram_ids, gram_tf = _count(char_ngrams(text), self.grams)
            got = DocPostings(tok_ids, tok_tf.astype(np.float32), len(tokens), gram_ids, gram_tf)
            self.computed += 1
        else:
            self.reused += 1
        self.docs[text] = got
        return got

    def bag(self, texts: tuple[str, ...]) -> np.ndarray:
        """The distinct token ids of an entry's texts (sorted)."""
        got = self.bags.get(texts)
        if got is None:
            got = self._old_bags.get(texts)
            if got is None:
                bag: set[int] = set()
                for text in texts:
                    bag.update(self.tokens.setdefault(t, len(self.tokens)) for t in self._tokenize(text))
                got = np.fromiter(sorted(bag), dtype=np.int32, count=len(bag))
            self.bags[texts] = got
        return got

    def same_documents(self, keys: list[str], entries: list[int],
                       ) -> tuple[BM25Postings, dict[str, int], CharIndex] | None:
        """The previous build's BM25 matrix, its vocabulary and n-gram index when it was made from
        exactly these documents (an edit of answers or summaries only): every figure in them is a
        function of the documents alone, so they are reused as they are."""
        old = self._old_built
        if old is None or old[1] != entries or old[0] != keys:
            return None
        return old[2], old[3], old[4]

    def seal(self, *, tokens_used: int, grams_used: int) -> None:
        """Done building: forget the previous lexicon (it belongs to the knowledge base it serves)."""
        self._old_docs = {}
        self._old_bags = {}
        self._old_built = None
        self.tokens_used = tokens_used
        self.grams_used = grams_used
