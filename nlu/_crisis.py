"""Crisis triage by rules: first-person, present-danger phrases in every language, minus framing.

Why rules first: principle 2 says a person in danger reaches a person. A lexicon hit does not depend
on a similarity threshold, works in languages the embedder knows poorly, and names the kind of danger.
Framing words that come *before* a hit in the same sentence ("what are my rights **if** the police
detain me", "**signs** that I am being trafficked") turn it into a question about danger, which the
knowledge base answers; the embedder then gets the last word (``nlu._understand``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._lexicon import Lexicon
from ._types import CrisisKind

__all__ = ["CrisisRules", "CrisisSignal"]

_SENTENCE_END: Final = re.compile(r"[.!?؟।۔\n;]+")  # ۔ is the Urdu full stop
_CLAUSE_BREAK: Final = re.compile(r"[,،:]|\b(then|то|тогда)\b")


@dataclass(frozen=True, slots=True)
class CrisisSignal:
    """What the lexicon saw in one message."""

    #: Kind of the first unframed hit (kinds are tried in lexicon order), or None.
    kind: CrisisKind | None = None
    #: Kind of a hit that framing turned into a question, or None.
    framed_kind: CrisisKind | None = None
    #: The message contains framing words anywhere (a question about danger, a hypothetical), or is
    #: one sentence that opens with a question word.
    framed: bool = False
    #: The message cries for help ("help us", "помогите").
    plea: bool = False


class CrisisRules:
    """Scans folded text with the crisis lexicon."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._crisis = lexicon.crisis
        self._generic = lexicon.generic_frames
        self._conditional = lexicon.conditional_frames
        self._anywhere = lexicon.conditional_anywhere
        self._interrogative = lexicon.interrogative
        self._plea = lexicon.plea

    def _framed(self, sentence: str, kind: CrisisKind, match: re.Match[str]) -> bool:
        """Whether a framing word turns this hit into a question or a hypothetical.

        A hit counts as framed when a framing word ends before the hit does: the hit may start
        earlier than the frame ("у меня права, если меня задержали" matches from the first "меня").
        For threats, a conditional frames only its own clause ("if I leave, they will kill me").
        """
        for pattern in self._generic:
            frame = pattern.search(sentence)
            if frame is not None and frame.end() <= match.end():
                return True
        for pattern in self._conditional:
            frame = pattern.search(sentence)
            if frame is None or frame.end() > match.end():
                continue
            if kind != "threatened" or not _CLAUSE_BREAK.search(sentence, frame.end(), max(frame.end(), match.start())):
                return True
        return kind != "threatened" and any(p.search(sentence) for p in self._anywhere)

    def scan(self, folded: str) -> CrisisSignal:
        """Look for danger reported now, sentence by sentence."""
        framed_kind: CrisisKind | None = None
        plea = any(p.search(folded) for p in self._plea)
        sentences = [s for s in _SENTENCE_END.split(folded) if s.strip()]
        framed = any(p.search(folded) for p in (*self._generic, *self._conditional, *self._anywhere)) or (
            len(sentences) == 1 and any(p.search(sentences[0]) for p in self._interrogative)
        )
        for kind, patterns in self._crisis.items():
            for sentence in sentences:
                for pattern in patterns:
                    for match in pattern.finditer(sentence):
                        if self._framed(sentence, kind, match):
                            framed_kind = framed_kind or kind
                            continue
                        return CrisisSignal(kind=kind, framed_kind=framed_kind, framed=framed, plea=plea)
        return CrisisSignal(kind=None, framed_kind=framed_kind, framed=framed, plea=plea)
