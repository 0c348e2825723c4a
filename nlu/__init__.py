"""Natural-language understanding for Hamroh: language, dialogue act, crisis triage, entities.

Importing this package loads nothing heavy: lingua, the n-gram models, the lexicons and the example
embeddings are built on first use. Typical use::

    understander = nlu.Understander(embedder)      # embedder: knowledge_base.SplitEngineEmbedder
    understander.warm_up()                         # optional, at start-up
    result = nlu.understand(text, nlu.LanguageHint(chosen="tg", current="ru"), understander=understander)

``nlu`` imports nothing else of the project; the embedder comes in through :class:`QueryEmbedder`.
"""

from ._data import NluDataError, TrainingExample, parse_rasa_nlu
from ._evaluate import evaluate_file, evaluate_items, format_report
from ._langid import LanguageDecision, LanguageIdentifier
from ._types import (
    ACTS,
    CRISIS_KINDS,
    LANGUAGES,
    RULE_ONLY_ACTS,
    STAGES,
    CrisisKind,
    DialogueAct,
    Entities,
    LangSource,
    LanguageHint,
    QueryEmbedder,
    Script,
    Stage,
    Understanding,
)
from ._understand import Thresholds, Understander, understand

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
    "LanguageDecision",
    "LanguageHint",
    "LanguageIdentifier",
    "NluDataError",
    "QueryEmbedder",
    "Script",
    "Stage",
    "Thresholds",
    "TrainingExample",
    "Understander",
    "Understanding",
    "evaluate_file",
    "evaluate_items",
    "format_report",
    "parse_rasa_nlu",
    "understand",
]
