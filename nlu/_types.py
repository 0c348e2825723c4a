"""Public value types of ``nlu``.

They are plain frozen dataclasses and ``Literal`` aliases so that the dialogue engine, the CLI and the
tests can depend on them without pulling in lingua, torch or any model: importing ``nlu`` is cheap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

import languages

__all__ = [
    "ACTS",
    "CRISIS_KINDS",
    "LANGUAGES",
    "RULE_ONLY_ACTS",
    "STAGES",
    "CrisisKind",
    "DialogueAct",
    "Entities",
    "LangSource",
    "LanguageHint",
    "QueryEmbedder",
    "Script",
    "Stage",
    "Understanding",
]

#: The project's language codes (``shared/content-spec.md``), in the spec's order: the one
#: registry's (``languages``), which also has names, direction, scripts and aliases.
LANGUAGES: Final[tuple[str, ...]] = languages.LANGUAGES

DialogueAct = Literal["greet", "thanks", "goodbye", "ask_human", "question", "crisis", "menu"]
ACTS: Final[tuple[DialogueAct, ...]] = ("greet", "thanks", "goodbye", "ask_human", "question", "crisis", "menu")
#: acts decided by closed phrase lists only (no embedded examples): "help", "menu", "?"
RULE_ONLY_ACTS: Final[tuple[DialogueAct, ...]] = ("menu",)

CrisisKind = Literal[
    "locked_in", "violence", "sexual_abuse", "detained", "threatened", "self_harm", "medical", "trafficking"
]
CRISIS_KINDS: Final[tuple[CrisisKind, ...]] = (
    "locked_in", "violence", "sexual_abuse", "detained", "threatened", "self_harm", "medical", "trafficking",
)  # fmt: skip

Stage = Literal["planning", "abroad", "returned"]
STAGES: Final[tuple[Stage, ...]] = ("planning", "abroad", "returned")

#: ISO 15924 codes; ``Zyyy`` (common) when the text has no letters at all.
Script = Literal["Latn", "Cyrl", "Arab", "Beng", "Sinh", "Taml", "Deva", "Zyyy"]

#: Where the reported language came from: the text itself, the user's chosen language, or the
#: language the conversation was already in.
LangSource = Literal["detected", "hint", "history"]


@runtime_checkable
class QueryEmbedder(Protocol):
    """The embedding seam. ``nlu`` defines it itself so that it imports nothing else of the project.

    ``knowledge_base.SplitEngineEmbedder`` satisfies it; tests may pass any object with this
    method. Rows must be L2-normalised float32 so that a dot product is a cosine similarity.
    """

    def embed_queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True, slots=True)
class LanguageHint:
    """What the dialogue engine already knows about the user's language.

    ``chosen`` is the language the user picked (e.g. with the language button); ``current`` is the
    language the conversation is being held in. Both may be ``None`` for a first message.
    """

    chosen: str | None = None
    current: str | None = None


@dataclass(frozen=True, slots=True)
class Entities:
    """Profile facts found in one message; ``None`` means "not said", never "no".

    Countries are ISO 3166-1 alpha-2 codes so that they match knowledge-base filters directly.
    """

    origin: str | None = None
    destination: str | None = None
    stage: Stage | None = None


@dataclass(frozen=True, slots=True)
class Understanding:
    """Everything the dialogue engine needs to route one message.

    ``confidence`` is the confidence in ``act`` (0..1). ``lang_confident`` is False when the
    language was guessed from too little evidence (then the engine may ask, or keep the previous one).
    """

    lang: str
    script: Script
    act: DialogueAct
    crisis_kind: CrisisKind | None = None
    entities: Entities = field(default_factory=Entities)
    confidence: float = 0.0
    lang_confident: bool = False
    lang_source: LangSource = "detected"
