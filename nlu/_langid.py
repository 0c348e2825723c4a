"""Language identification for short chat messages in Hamroh's 14 languages.

Three kinds of evidence, each where it is strongest:

1. **Script and letters.** Sinhala, Tamil and Bengali are decided by their script alone. Within
   Cyrillic and Arabic script, letters that only some alphabets have (Kyrgyz ө ү ң, Kazakh ә ұ і һ,
   Tajik ҷ ӣ ӯ, Uzbek ў; Urdu ٹ ڈ ڑ ں ے, Pashto ټ ډ ړ ښ ڼ, Sorani ە ێ ۆ ڕ ڵ) count for the alphabets
   that have them and against those that do not.
2. **Our own character n-gram model and keyword lists** (``data/langid.yml``), for varieties no
   library knows: Uzbek, Kyrgyz, Tajik, Sorani, Pashto, and romanised Russian, Urdu and Bengali.
3. **lingua**, restricted to the few languages that matter for the script at hand, for what it knows
   well: Russian vs. other Cyrillic, English vs. other Latin text, Arabic vs. Persian vs. Urdu.

The user's chosen language and the conversation's current language then act as priors: strong for
one- or two-word messages ("ok", "Салам", "Рахмат" keep the conversation's language), weak otherwise,
and powerless where the letters rule a language out.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import languages

from ._data import NluDataError, load_data_file
from ._ngram import CharNgramModel
from ._text import clean, script_counts, tokens
from ._types import LANGUAGES, LangSource, LanguageHint, Script

if TYPE_CHECKING:
    from lingua import LanguageDetector

__all__ = ["LanguageDecision", "LanguageIdentifier"]

#: Text beyond this many characters adds nothing to the decision, only time.
_WINDOW: Final = 600

#: Varieties (language-script) that the statistical model separates, per script.
_VARIETIES: Final[Mapping[Script, tuple[str, ...]]] = {
    "Latn": ("en-Latn", "uz-Latn", "ru-Latn", "ur-Latn", "bn-Latn"),
    "Cyrl": ("ru-Cyrl", "uz-Cyrl", "ky-Cyrl", "tg-Cyrl", "kk-Cyrl"),
    "Arab": ("ar-Arab", "ur-Arab", "ckb-Arab", "ps-Arab", "prs-Arab"),
}
#: Scripts that name their language by themselves (Bengali, Sinhala, Tamil).
_SCRIPT_LANG: Final[Mapping[str, str]] = languages.sole_language_of_script()

# Letters outside the Russian alphabet (Cyrillic) or the basic Arabic alphabet, per variety. A letter
# from this union that a variety's alphabet lacks counts against that variety; one it has counts for.
_SPECIAL: Final[Mapping[str, frozenset[str]]] = {
    "ru-Cyrl": frozenset("ыщъь"),
    "uz-Cyrl": frozenset("ўқғҳъь"),
    "ky-Cyrl": frozenset("өүңыщъь"),
    "kk-Cyrl": frozenset("әғқңөұүһіыщъь"),
    "tg-Cyrl": frozenset("ғӣқӯҳҷъ"),
    "ar-Arab": frozenset("ةىيكأإؤئءآ"),
    "ur-Arab": frozenset("ٹڈڑںےۓہھۃپچژگکیئءآؤ"),
    "ckb-Arab": frozenset("ەێۆڕڵڤپچژگکیئھ"),
    "ps-Arab": frozenset("ټډړږښګڼۍېځڅپچژگکیئءآؤ"),
    "prs-Arab": frozenset("پچژگکیئءآؤأۀ"),
}
_SPECIAL_UNION: Final[Mapping[Script, frozenset[str]]] = {
    "Cyrl": frozenset().union(*(v for k, v in _SPECIAL.items() if k.endswith("Cyrl"))),
    "Arab": frozenset().union(*(v for k, v in _SPECIAL.items() if k.endswith("Arab"))),
}
# Letters that are weak evidence: shared by most alphabets or swapped by common keyboards.
_WEAK_LETTERS: Final = frozenset("ъьیکئءآؤ")

#: Small priors: Uzbek is mostly written in Latin today; English is the commonest Latin-script language.
_PRIORS: Final[Mapping[str, float]] = {"uz-Cyrl": -0.4, "en-Latn": 0.3}

_LETTER_FOR: Final = 1.2
_LETTER_AGAINST: Final = 2.5
_LETTER_CAP: Final = 4
_KEYWORD_WEIGHT: Final = 1.2
_NGRAM_TEMPERATURE: Final = 3.0
_LINGUA_WEIGHT: Final = 1.0
_LINGUA_FLOOR: Final = 0.02
_HINT_BOOST: Final = 1.0
_HISTORY_SHARE: Final = 0.8
_CONFIDENT: Final = 0.75


@dataclass(frozen=True, slots=True)
class LanguageDecision:
    """The language of one message and where it came from."""

    lang: str
    script: Script
    confident: bool
    source: LangSource
    #: Posterior per language after priors (empty when the text had no letters).
    scores: Mapping[str, float]


class LanguageIdentifier:
    """Identifies the language of a message; all models are built on first use, not at import.

    Thread-safe: the lazy build is guarded by a lock, and scoring only reads the built models.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._model: dict[Script, CharNgramModel] | None = None
        self._keywords: dict[str, dict[str, float]] = {}
        self._lingua: dict[Script, LanguageDetector] = {}
        self._lingua_ok = True

    # ----------------------------------------------------------------------------------- building
    def warm_up(self) -> None:
        """Build the n-gram models and load lingua's models now rather than on the first message."""
        self._models()
        scripts: tuple[Script, ...] = ("Latn", "Cyrl", "Arab")
        for script in scripts:
            self._lingua_detector(script)

    def _models(self) -> dict[Script, CharNgramModel]:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._build()
        return self._model

    def _build(self) -> dict[Script, CharNgramModel]:
        data = load_data_file("langid.yml")
        samples = data.get("samples")
        keywords = data.get("keywords")
        if not isinstance(samples, dict) or not isinstance(keywords, dict):
            raise NluDataError("nlu/data/langid.yml: needs 'samples' and 'keywords' mappings")
        models: dict[Script, CharNgramModel] = {}
        for script, varieties in _VARIETIES.items():
            missing = [v for v in varieties if not str(samples.get(v, "")).strip()]
            if missing:
                raise NluDataError(f"nlu/data/langid.yml: no samples for {', '.join(missing)}")
            models[script] = CharNgramModel(
                {v: [ln for ln in str(samples[v]).splitlines() if ln.strip()] for v in varieties}
            )
        # A keyword listed under k varieties is worth 1/k to each: shared words decide nothing.
        owners: dict[str, list[str]] = {}
        for variety, words in keywords.items():
            for word in words or ():
                owners.setdefault(_key(str(word)), []).append(str(variety))
        self._keywords = {
            word: {v: _KEYWORD_WEIGHT / len(vs) for v in vs} for word, vs in owners.items() if vs
        }
        return models

    def _lingua_detector(self, script: Script) -> LanguageDetector | None:
        """lingua restricted to the languages that matter for ``script``; None if unavailable."""
        if script not in ("Latn", "Cyrl", "Arab") or not self._lingua_ok:
            return None
        detector = self._lingua.get(script)
        if detector is not None:
            return detector
        with self._lock:
            detector = self._lingua.get(script)
            if detector is None:
                try:
                    from lingua import Language, LanguageDetectorBuilder
                except ImportError:  # pragma: no cover - lingua is a declared dependency
                    self._lingua_ok = False
                    return None
                # Besides the languages we serve, a few "sink" languages absorb text lingua cannot
                # place, so that e.g. Kyrgyz does not inflate Russian and Banglish does not look English.
                languages = {
                    "Latn": [Language.ENGLISH, Language.TURKISH, Language.INDONESIAN, Language.TAGALOG,
                             Language.SWAHILI, Language.POLISH, Language.SLOVAK, Language.AZERBAIJANI],
                    "Cyrl": [Language.RUSSIAN, Language.KAZAKH, Language.MONGOLIAN, Language.UKRAINIAN],
                    "Arab": [Language.ARABIC, Language.PERSIAN, Language.URDU],
                }[script]  # fmt: skip
                detector = (
                    LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models().build()
                )
                self._lingua[script] = detector
        return detector

    # ----------------------------------------------------------------------------------- scoring
    def scores(self, text: str) -> tuple[Script, dict[str, float]]:
        """Dominant script and a log-score per variety (text only, no hint). Empty if no letters."""
        script, logits, _ = self._scores(text)
        return script, logits

    def _scores(self, text: str) -> tuple[Script, dict[str, float], frozenset[str]]:
        """Like :meth:`scores`, plus the varieties whose alphabet lacks a letter of the text."""
        window = clean(text)[:_WINDOW]
        counts = script_counts(window)
        if not counts:
            return "Zyyy", {}, frozenset()
        script = counts.most_common(1)[0][0]
        if script in _SCRIPT_LANG:
            return script, {f"{_SCRIPT_LANG[script]}-{script}": 0.0}, frozenset()
        if script not in _VARIETIES:
            return script, {}, frozenset()
        model = self._models()[script]
        loglik, n = model.log_likelihood(window)
        temperature = _NGRAM_TEMPERATURE * math.sqrt(max(n, 1) / 8)
        logits = {v: loglik[v] / temperature + _PRIORS.get(v, 0.0) for v in model.classes}
        excluded = self._add_letters(script, window, logits)
        self._add_keywords(window, logits)
        self._add_lingua(script, window, logits)
        return script, logits, excluded

    @staticmethod
    def _add_letters(script: Script, text: str, logits: dict[str, float]) -> frozenset[str]:
        special = _SPECIAL_UNION.get(script)
        if not special:
            return frozenset()
        lowered = text.lower()
        seen = {ch: lowered.count(ch) for ch in set(lowered) if ch in special}
        excluded = {
            v for v in logits if any(ch not in _SPECIAL.get(v, frozenset()) and ch not in _WEAK_LETTERS for ch in seen)
        }
        for variety in logits:
            alphabet = _SPECIAL.get(variety, frozenset())
            bonus = 0.0
            for ch, k in seen.items():
                weight = 0.3 if ch in _WEAK_LETTERS else 1.0
                if ch in alphabet:
                    bonus += weight * _LETTER_FOR * min(k, _LETTER_CAP) / len(alphabet) ** 0.5
                else:
                    bonus -= weight * _LETTER_AGAINST * min(k, _LETTER_CAP)
            logits[variety] += bonus
        return frozenset(excluded)

    def _add_keywords(self, text: str, logits: dict[str, float]) -> None:
        for token in tokens(text):
            for variety, weight in self._keywords.get(_key(token), {}).items():
                if variety in logits:
                    logits[variety] += weight

    def _add_lingua(self, script: Script, text: str, logits: dict[str, float]) -> None:
        detector = self._lingua_detector(script)
        if detector is None:
            return
        conf = {c.language.name: c.value for c in detector.compute_language_confidence_values(text)}
        if not conf:
            return

        def lw(p: float) -> float:
            return _LINGUA_WEIGHT * math.log(max(p, _LINGUA_FLOOR))

        if script == "Latn":
            p_en = conf.get("ENGLISH", 0.0)
            for v in logits:
                logits[v] += lw(p_en) if v == "en-Latn" else lw(1.0 - p_en)
        elif script == "Cyrl":
            p_ru = conf.get("RUSSIAN", 0.0)
            for v in logits:
                logits[v] += lw(p_ru) if v == "ru-Cyrl" else lw(1.0 - p_ru)
        else:
            p = {"ar-Arab": conf.get("ARABIC", 0.0), "ur-Arab": conf.get("URDU", 0.0)}
            p_fa = conf.get("PERSIAN", 0.0)
            for v in logits:
                logits[v] += lw(p.get(v, p_fa))

    # ----------------------------------------------------------------------------------- deciding
    def identify(self, text: str, hint: LanguageHint | None = None) -> LanguageDecision:
        """Decide the message's language, combining the text's evidence with the hint as priors."""
        hint = hint or LanguageHint()
        chosen = hint.chosen if hint.chosen in LANGUAGES else None
        current = hint.current if hint.current in LANGUAGES else None
        script, logits, excluded = self._scores(text)
        if not logits:
            # Nothing to read (emoji, digits, an unsupported script): stay with what we know.
            if current:
                return LanguageDecision(current, script, False, "history", {})
            if chosen:
                return LanguageDecision(chosen, script, False, "hint", {})
            return LanguageDecision("en", script, False, "detected", {})

        by_lang = _merge(CharNgramModel.softmax(logits))
        detected = max(by_lang, key=by_lang.__getitem__)
        if script in _SCRIPT_LANG:
            return LanguageDecision(detected, script, True, "detected", by_lang)
        if len(tokens(clean(text)[:_WINDOW])) <= 2:
            # One or two words say little: keep the conversation's language (else the chosen one)
            # unless the letters rule it out ("Сәлем" is not Kyrgyz, "شکریہ" is not English).
            options: tuple[tuple[str | None, LangSource], ...] = ((current, "history"), (chosen, "hint"))
            for lang, from_hint in options:
                compatible = [v for v in logits if v.split("-")[0] == lang and v not in excluded]
                if lang is not None and compatible:
                    src: LangSource = "detected" if lang == detected else from_hint
                    return LanguageDecision(lang, script, True, src, by_lang)
            return LanguageDecision(detected, script, False, "detected", by_lang)
        priors = dict(logits)
        for lang, boost in ((chosen, _HINT_BOOST), (current, _HINT_BOOST * _HISTORY_SHARE)):
            for variety in priors:
                if lang is not None and variety.split("-")[0] == lang:
                    priors[variety] += boost
        posterior = _merge(CharNgramModel.softmax(priors))
        lang = max(posterior, key=posterior.__getitem__)
        source: LangSource = "detected"
        if lang != detected:
            source = "history" if lang == current and lang != chosen else "hint"
        return LanguageDecision(lang, script, posterior[lang] >= _CONFIDENT, source, posterior)


def _merge(posterior: Mapping[str, float]) -> dict[str, float]:
    merged: dict[str, float] = {}
    for variety, p in posterior.items():
        lang = variety.split("-")[0]
        merged[lang] = merged.get(lang, 0.0) + p
    return merged


def _key(word: str) -> str:
    return word.lower().replace("\u200c", "").replace("\u200d", "")
