"""Dialogue acts: rules for the short social phrases, few-shot nearest neighbours for the rest.

Greetings, thanks and goodbyes are a closed set of phrases in each language, so a rule is more
reliable than a similarity score on two words; "talk to a human" is the same. Everything else is
classified by comparing the message's embedding with the embedded examples of ``data/nlu.yml``
(mean similarity of the k nearest examples of each act), which generalises across languages and
paraphrases without training a model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, cast

import numpy as np
import numpy.typing as npt

from ._data import NluDataError, TrainingExample, parse_rasa_nlu, read_data_text
from ._lexicon import Lexicon
from ._text import tokens
from ._types import ACTS, CRISIS_KINDS, RULE_ONLY_ACTS, CrisisKind, DialogueAct, QueryEmbedder

__all__ = ["ActScores", "ExampleIndex", "SocialRules", "load_training_examples"]

#: Messages longer than this are never "just a greeting", whatever their words.
_SOCIAL_MAX_TOKENS: Final = 10
_K: Final = 3
_PRIORITY: Final[tuple[DialogueAct, ...]] = ("goodbye", "thanks", "greet")
#: A cached example matrix is trusted only if the live model still embeds a probe example this close.
_CACHE_CHECK: Final = 0.999

_log = logging.getLogger(__name__)


class SocialRules:
    """Recognises messages made only of greeting, thanks or goodbye phrases (and filler words)."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._social = lexicon.social
        self._filler = lexicon.filler
        self._emoji = lexicon.emoji
        self._longest = lexicon.longest_phrase
        self._ask_human = lexicon.ask_human
        self._menu = lexicon.menu

    def asks_for_menu(self, folded: str) -> bool:
        """The whole message asks what the bot can do: "help", "menu", "?", "yordam", "помощь".

        Only the bare word (with filler such as "please"): "help me, they beat me" is a plea that
        the crisis rules see first, and "help with my patent" is a question.
        """
        stripped = folded.strip()
        if stripped and set(stripped) <= set("?？؟ "):
            return True
        toks = tokens(folded)
        if not toks or len(toks) > 4:
            return False
        rest = [t for t in toks if t not in self._filler]
        if not rest:
            return False
        phrase = tuple(rest)
        return any(phrase == p for p in self._menu)

    def social_act(self, folded: str) -> DialogueAct | None:
        """The social act of a message that is nothing but social phrases, else None.

        With several ("thanks, bye") the conversation-closing one wins: goodbye > thanks > greet.
        """
        toks = tokens(folded)
        if not toks:
            chars = set(folded)
            for act in _PRIORITY:
                if chars & self._emoji.get(act, frozenset()):
                    return act
            return None
        if len(toks) > _SOCIAL_MAX_TOKENS:
            return None
        found: set[DialogueAct] = set()
        i = 0
        while i < len(toks):
            for n in range(min(self._longest, len(toks) - i), 0, -1):
                phrase = tuple(toks[i : i + n])
                matched = [a for a in _PRIORITY if phrase in self._social[a]]
                if matched:
                    found.add(matched[0])
                    i += n
                    break
            else:
                if toks[i] not in self._filler:
                    return None
                i += 1
        return next((a for a in _PRIORITY if a in found), None)

    def asks_for_human(self, folded: str) -> bool:
        """The message asks for a person (operator, counsellor, "not a bot")."""
        return any(p.search(folded) for p in self._ask_human)


def load_training_examples() -> list[TrainingExample]:
    """The examples of ``nlu/data/nlu.yml``, checked against the acts and crisis kinds we know."""
    examples = parse_rasa_nlu(read_data_text("nlu.yml"), source="nlu/data/nlu.yml")
    for ex in examples:
        if ex.intent not in ACTS:
            raise NluDataError(f"nlu/data/nlu.yml: unknown intent {ex.intent!r}")
        if ex.intent == "crisis" and ex.sub not in CRISIS_KINDS:
            raise NluDataError(f"nlu/data/nlu.yml: crisis examples need a kind, e.g. crisis/violence: {ex.text!r}")
    missing = set(ACTS) - set(RULE_ONLY_ACTS) - {ex.intent for ex in examples}
    if missing:
        raise NluDataError(f"nlu/data/nlu.yml: no examples for {sorted(missing)}")
    return examples


@dataclass(frozen=True, slots=True)
class ActScores:
    """Similarity of one message to each act's nearest examples."""

    by_act: Mapping[DialogueAct, float]
    #: Kind of the nearest crisis example.
    crisis_kind: CrisisKind

    def best(self, *, exclude: Sequence[DialogueAct] = ()) -> tuple[DialogueAct, float]:
        """The act with the highest score among those not excluded."""
        act = max((a for a in self.by_act if a not in exclude), key=self.by_act.__getitem__)
        return act, self.by_act[act]


class ExampleIndex:
    """The embedded training examples; embedded once, on first use, under a lock.

    Embedding a thousand examples takes tens of seconds on a small CPU, which would blow the start-up
    budget on every restart, so with ``cache_dir`` the matrix is kept on disk, keyed by the examples'
    text. A cached matrix is used only after re-embedding one example and finding the same vector, so
    a changed model can never be paired with stale vectors.
    """

    def __init__(
        self, examples: Sequence[TrainingExample], embedder: QueryEmbedder, *, cache_dir: Path | None = None
    ) -> None:
        self._examples = list(examples)
        self._embedder = embedder
        self._cache_dir = cache_dir
        self._lock = threading.Lock()
        self._matrix: npt.NDArray[np.float32] | None = None
        self._rows: dict[DialogueAct, npt.NDArray[np.intp]] = {}
        self._kinds: list[CrisisKind | None] = [
            cast(CrisisKind, ex.sub) if ex.intent == "crisis" else None for ex in self._examples
        ]

    def _cache_file(self) -> Path | None:
        if self._cache_dir is None:
            return None
        digest = hashlib.sha256("\n".join(f"{ex.intent}/{ex.sub}\t{ex.text}" for ex in self._examples).encode())
        return self._cache_dir / f"nlu-examples-{digest.hexdigest()[:16]}.npy"

    def _embed_all(self) -> npt.NDArray[np.float32]:
        texts = [ex.text for ex in self._examples]
        path = self._cache_file()
        if path is not None and path.exists():
            try:
                cached = np.load(path, allow_pickle=False).astype(np.float32, copy=False)
                probe = np.asarray(self._embedder.embed_queries(texts[:1]), dtype=np.float32)
                if cached.shape[0] == len(texts) and cached.shape[1:] == probe.shape[1:] and float(
                    cached[0] @ probe[0]
                ) >= _CACHE_CHECK:
                    return cached
                _log.info("nlu: cached example embeddings do not match the model; re-embedding")
            except (OSError, ValueError):
                _log.warning("nlu: unreadable example-embedding cache; re-embedding")
        matrix = np.asarray(self._embedder.embed_queries(texts), dtype=np.float32)
        if path is not None and matrix.ndim == 2:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
                with os.fdopen(fd, "wb") as fh:
                    np.save(fh, matrix, allow_pickle=False)
                os.replace(tmp, path)  # atomic: a reader never sees half a file
            except OSError:
                _log.warning("nlu: could not write the example-embedding cache")
        return matrix

    def _built(self) -> npt.NDArray[np.float32]:
        if self._matrix is None:
            with self._lock:
                if self._matrix is None:
                    matrix = self._embed_all()
                    if matrix.ndim != 2 or matrix.shape[0] != len(self._examples):
                        raise NluDataError(
                            f"embedder returned shape {matrix.shape} for {len(self._examples)} examples"
                        )
                    labels = np.array([ex.intent for ex in self._examples])
                    self._rows = {act: np.flatnonzero(labels == act) for act in ACTS}
                    self._matrix = matrix
        return self._matrix

    def warm_up(self) -> None:
        """Embed the examples now rather than on the first message."""
        self._built()

    def scores(self, vector: npt.NDArray[np.float32]) -> ActScores:
        """Mean similarity of ``vector`` to the k nearest examples of each act."""
        matrix = self._built()
        sims = matrix @ np.asarray(vector, dtype=np.float32).reshape(-1)
        by_act: dict[DialogueAct, float] = {}
        for act, rows in self._rows.items():
            if len(rows) == 0:  # a rule-only act ("menu") has no examples to compare with
                continue
            values = sims[rows]
            k = min(_K, len(values))
            top = np.partition(values, len(values) - k)[len(values) - k :]
            by_act[act] = float(top.mean())
        crisis_rows = self._rows["crisis"]
        nearest = int(crisis_rows[int(np.argmax(sims[crisis_rows]))])
        return ActScores(by_act, self._kinds[nearest] or "violence")
