"""The entry point: one message in, one :class:`Understanding` out.

Order of decisions, most safety-critical first:

1. crisis lexicon (a hit is a crisis, whatever the embedder thinks);
2. social phrases and "talk to a human" (closed sets, rules are exact);
3. the embedder's nearest examples, which may still find a crisis the lexicon missed (a paraphrase,
   a language with few patterns) when it is clearly closer to crisis examples than to anything else
   and the message is not framed as a question about danger.

Nothing is loaded at import or construction time: lexicons, the n-gram model, lingua and the example
embeddings are built on first use (or by :meth:`Understander.warm_up` at start-up).
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from ._acts import ActScores, ExampleIndex, SocialRules, load_training_examples
from ._crisis import CrisisRules, CrisisSignal
from ._entities import EntityExtractor
from ._langid import LanguageDecision, LanguageIdentifier
from ._lexicon import Lexicon, load_lexicon
from ._text import clean, fold, tokens
from ._types import CrisisKind, DialogueAct, Entities, LanguageHint, QueryEmbedder, Understanding

__all__ = ["Thresholds", "Understander", "understand"]

_log = logging.getLogger(__name__)

#: The embedder sees at most this many characters: the start of a message carries its intent, and
#: the model's sequence limit would cut the rest anyway.
_EMBED_CHARS: Final = 1000
_SOCIAL_EMBED_MAX_TOKENS: Final = 5
#: a message of this many words that no closed phrase list settles is a request, not small talk
_SOCIAL_QUESTION_TOKENS: Final = 4


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Decision margins on cosine similarity (multilingual-e5-small scale); see ``bench/`` and tests.

    ``crisis_margin``: how much closer to crisis examples than to any other act a message with no
    lexicon hit must be to count as a crisis; ``plea_crisis_margin`` the margin when the message cries
    for help ("помогите"); ``framed_crisis_margin`` the stricter margin for a message framed as a
    question about danger ("what are my rights if they detain me").
    """

    crisis_margin: float = 0.015
    crisis_min: float = 0.80
    framed_crisis_margin: float = 0.06
    plea_crisis_margin: float = 0.0
    act_margin: float = 0.01
    ask_human_margin: float = 0.03
    softmax_temperature: float = 0.02


@dataclass(frozen=True, slots=True)
class _Rules:
    lexicon: Lexicon
    social: SocialRules
    crisis: CrisisRules
    entities: EntityExtractor


class Understander:
    """Understands chat messages. Construct once per process and share; it is thread-safe.

    ``embedder`` is the project's query embedder (``knowledge_base.SplitEngineEmbedder``);
    it is called once per message that rules do not settle, and once, lazily, for the training data
    (whose vectors are kept in ``cache_dir`` when given, so a restart does not re-embed them).
    """

    def __init__(
        self, embedder: QueryEmbedder, *, thresholds: Thresholds | None = None, cache_dir: Path | None = None
    ) -> None:
        self._embedder = embedder
        self._cache_dir = cache_dir
        self._thresholds = thresholds or Thresholds()
        self._langid = LanguageIdentifier()
        self._lock = threading.Lock()
        self._rules_cache: _Rules | None = None
        self._index_cache: ExampleIndex | None = None

    # ------------------------------------------------------------------------------ lazy parts
    def _rules(self) -> _Rules:
        if self._rules_cache is None:
            with self._lock:
                if self._rules_cache is None:
                    lexicon = load_lexicon()
                    self._rules_cache = _Rules(
                        lexicon, SocialRules(lexicon), CrisisRules(lexicon), EntityExtractor(lexicon)
                    )
        return self._rules_cache

    def _index(self) -> ExampleIndex:
        if self._index_cache is None:
            with self._lock:
                if self._index_cache is None:
                    self._index_cache = ExampleIndex(
                        load_training_examples(), self._embedder, cache_dir=self._cache_dir
                    )
        return self._index_cache

    def warm_up(self) -> None:
        """Load everything now (rules, language models, example embeddings): call at start-up so the
        first user does not wait, and so a broken data file fails the start, not a conversation."""
        self._rules()
        self._langid.warm_up()
        self._index().warm_up()

    # ------------------------------------------------------------------------------ the pipeline
    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        """Language, dialogue act, crisis kind and entities of one message. Never raises on input."""
        cleaned = clean(text)
        language = self._langid.identify(cleaned, hint)
        rules = self._rules()
        folded = fold(cleaned)
        entities = rules.entities.extract(folded, language.lang) if cleaned else Entities()
        act, kind, confidence = self._act(cleaned, folded, rules)
        return Understanding(
            lang=language.lang,
            script=language.script,
            act=act,
            crisis_kind=kind if act == "crisis" else None,
            entities=entities,
            confidence=round(confidence, 4),
            lang_confident=language.confident,
            lang_source=language.source,
        )

    def language(self, text: str, hint: LanguageHint | None = None) -> LanguageDecision:
        """Only the language decision (no embedding): for callers that need nothing else."""
        return self._langid.identify(text, hint)

    def _act(self, cleaned: str, folded: str, rules: _Rules) -> tuple[DialogueAct, CrisisKind | None, float]:
        signal = rules.crisis.scan(folded)
        if signal.kind is not None:
            return "crisis", signal.kind, 0.95
        if rules.social.asks_for_menu(folded):
            return "menu", None, 0.95
        social = rules.social.social_act(folded)
        if social is not None:
            return social, None, 0.95
        if rules.social.asks_for_human(folded):
            return "ask_human", None, 0.9
        if not tokens(folded):
            # Emoji, digits or junk: nothing to understand; the engine can ask the user to rephrase.
            return "question", None, 0.0
        scores = self._scores(cleaned)
        if scores is None:
            return "question", None, 0.3
        asks = ("?" in cleaned or "؟" in cleaned or len(tokens(folded)) >= _SOCIAL_QUESTION_TOKENS
                or any(p.search(folded) for p in _question_words(rules.lexicon)))
        return self._decide(scores, signal, len(tokens(folded)), asks)

    def _scores(self, cleaned: str) -> ActScores | None:
        try:
            vectors = self._embedder.embed_queries([cleaned[:_EMBED_CHARS]])
            vector = np.asarray(vectors, dtype=np.float32)[0]
        except Exception:  # the embedder is outside our control; rules still answer
            _log.exception("nlu: the embedder failed; falling back to rules only")
            return None
        if not np.all(np.isfinite(vector)):
            return None
        return self._index().scores(vector)

    def _decide(
        self, scores: ActScores, signal: CrisisSignal, n_tokens: int, asks: bool = False
    ) -> tuple[DialogueAct, CrisisKind | None, float]:
        th = self._thresholds
        crisis = scores.by_act["crisis"]
        _, other_score = scores.best(exclude=("crisis",))
        margin = crisis - other_score
        # A message framed as a question about danger needs a much clearer lead to count as a crisis.
        if signal.framed or signal.framed_kind:
            needed = th.framed_crisis_margin
        else:
            needed = th.plea_crisis_margin if signal.plea else th.crisis_margin
        if margin >= needed and crisis >= th.crisis_min:
            return "crisis", signal.framed_kind or scores.crisis_kind, _sigmoid(margin / th.softmax_temperature)
        candidates = dict(scores.by_act)
        candidates.pop("crisis")
        act = max(candidates, key=candidates.__getitem__)
        lead = candidates[act] - candidates["question"]
        if act in ("greet", "thanks", "goodbye") and (
                n_tokens > _SOCIAL_EMBED_MAX_TOKENS or lead < th.act_margin or asks):
            # A long message that merely resembles "thank you" is still a question, and so is a short
            # one that asks something ("আজকের আবহাওয়া কেমন?"): small talk only when unambiguous,
            # since answering "how is the weather?" with "goodbye" is a confident wrong answer.
            act = "question"
        elif act == "ask_human" and lead < th.ask_human_margin:
            # Handing over costs a counsellor's time: only when the message clearly asks for it.
            act = "question"
        return act, None, _softmax_share(candidates, act, th.softmax_temperature)


def understand(text: str, hint: LanguageHint | None = None, *, understander: Understander) -> Understanding:
    """Module-level convenience: ``understander.understand(text, hint)``."""
    return understander.understand(text, hint)


_QUESTION_WORDS: dict[int, tuple[re.Pattern[str], ...]] = {}


def _question_words(lexicon: Lexicon) -> tuple[re.Pattern[str], ...]:
    """The lexicon's question words anywhere in the message ("ob-havo qanday", "weather how"), not
    only first: enough to veto an embedder-only greeting, never to decide an act alone."""
    found = _QUESTION_WORDS.get(id(lexicon))
    if found is None:
        found = tuple(re.compile(p.pattern.replace("^\\W*", "(?:^|\\s)", 1)) for p in lexicon.interrogative)
        _QUESTION_WORDS[id(lexicon)] = found
    return found


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, x))))


def _softmax_share(scores: dict[DialogueAct, float], act: DialogueAct, temperature: float) -> float:
    top = max(scores.values())
    exp = {a: math.exp((s - top) / temperature) for a, s in scores.items()}
    return exp[act] / sum(exp.values())
