"""A small character n-gram naive Bayes model, trained at first use from ``data/langid.yml``.

Why our own model: lingua has no Uzbek, Kyrgyz, Tajik, Sorani or Pashto, and no model of romanised
chat (Russian in Latin letters, Roman Urdu, Banglish). A few hundred sentences per variety are enough
for naive Bayes over 1–4-grams to separate them, it trains in milliseconds, and it needs no new
dependency.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["CharNgramModel", "ngrams"]

_ORDERS: Final = (1, 2, 3, 4)


def _normalise(text: str) -> str:
    # Keep letters, vowel signs, ZWNJ/ZWJ and inner apostrophes; everything else is a word break.
    out = []
    for ch in text.lower():
        if _is_word_char(ch):
            out.append(ch)
        elif ch in "\u200c\u200d":
            continue
        else:
            out.append(" ")
    return " ".join("".join(out).split())


def _is_word_char(ch: str) -> bool:
    if ch.isalpha() or ch == "'":
        return True
    if "\u0300" <= ch <= "\u036f" or "\u064b" <= ch <= "\u065f":
        return True
    return "\u0900" <= ch <= "\u0dff" and not ch.isdigit()


def ngrams(text: str, orders: Sequence[int] = _ORDERS) -> list[str]:
    """Character n-grams of each word padded with spaces, so word starts and ends are features."""
    grams: list[str] = []
    for word in _normalise(text).split():
        padded = f" {word} "
        for n in orders:
            if n == 1:
                grams.extend(word)
                continue
            grams.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
    return grams


class CharNgramModel:
    """Multinomial naive Bayes over character n-grams with add-``alpha`` smoothing per class."""

    def __init__(self, samples: Mapping[str, Iterable[str]], *, alpha: float = 0.1) -> None:
        self.classes: tuple[str, ...] = tuple(samples)
        counts = {c: Counter(g for text in texts for g in ngrams(text)) for c, texts in samples.items()}
        vocab = sorted({g for counter in counts.values() for g in counter})
        self._index: dict[str, int] = {g: i for i, g in enumerate(vocab)}
        table = np.zeros((len(vocab) + 1, len(self.classes)), dtype=np.float64)
        for j, c in enumerate(self.classes):
            counter = counts[c]
            total = sum(counter.values()) + alpha * (len(vocab) + 1)
            for g, k in counter.items():
                table[self._index[g], j] = k
            table[:, j] = np.log((table[:, j] + alpha) / total)
        # The last row is the log-probability of an n-gram never seen in training.
        self._table: npt.NDArray[np.float64] = table
        self._unseen_row = len(vocab)

    def log_likelihood(self, text: str) -> tuple[dict[str, float], int]:
        """Summed log-likelihood of ``text`` per class, and how many n-grams it had."""
        grams = ngrams(text)
        if not grams:
            return dict.fromkeys(self.classes, 0.0), 0
        rows = [self._index.get(g, self._unseen_row) for g in grams]
        sums = self._table[rows].sum(axis=0)
        return {c: float(s) for c, s in zip(self.classes, sums, strict=True)}, len(grams)

    @staticmethod
    def softmax(scores: Mapping[str, float]) -> dict[str, float]:
        """Turn log-scores into probabilities without overflow."""
        top = max(scores.values())
        exp = {k: math.exp(v - top) for k, v in scores.items()}
        total = sum(exp.values())
        return {k: v / total for k, v in exp.items()}
