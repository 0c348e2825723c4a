"""Compiled rule lexicons (``data/lexicon.yml``): social phrases, ask-a-human, crisis, frames, stage.

Rules sit beside the embedder because some decisions must not depend on a similarity threshold:
a person typing "they locked me in" in Tajik must reach a counsellor even if the embedder has never
seen a Tajik example like it. Patterns are folded exactly like messages (:func:`nlu._text.fold`),
so one pattern covers the common keyboard spellings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, cast

from ._data import NluDataError, load_data_file
from ._text import fold, tokens
from ._types import CRISIS_KINDS, STAGES, CrisisKind, DialogueAct, Stage

__all__ = ["Lexicon", "compile_pattern", "first_match", "load_lexicon"]

_SOCIAL_ACTS: Final[tuple[DialogueAct, ...]] = ("greet", "thanks", "goodbye")


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Everything in ``lexicon.yml``, compiled."""

    social: Mapping[DialogueAct, frozenset[tuple[str, ...]]]
    filler: frozenset[str]
    emoji: Mapping[DialogueAct, frozenset[str]]
    ask_human: tuple[re.Pattern[str], ...]
    #: whole-message phrases that open the menu ("help", "menu", "yordam", "помощь")
    menu: frozenset[tuple[str, ...]]
    crisis: Mapping[CrisisKind, tuple[re.Pattern[str], ...]]
    generic_frames: tuple[re.Pattern[str], ...]
    conditional_frames: tuple[re.Pattern[str], ...]
    #: Conditional verb endings (Sinhala, Tamil) that frame the whole sentence wherever they stand.
    conditional_anywhere: tuple[re.Pattern[str], ...]
    #: A message opening with a question word (vetoes an embedder-only crisis, never a lexicon hit).
    interrogative: tuple[re.Pattern[str], ...]
    stage: Mapping[Stage, tuple[re.Pattern[str], ...]]
    #: A cry for help ("help us", "помогите"): lowers the embedder's crisis margin, never decides alone.
    plea: tuple[re.Pattern[str], ...]
    #: Longest social phrase, in tokens (bounds the phrase search).
    longest_phrase: int


def _fold_regex(pattern: str) -> str:
    """Fold a regex's literal characters but leave escapes (``\\b``, ``\\W``, ``\\S``) untouched."""
    pattern = unicodedata.normalize("NFKC", pattern)
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(pattern[i : i + 2])
            i += 2
            continue
        out.append(fold(ch))
        i += 1
    folded = "".join(out)
    # An apostrophe is optional: Uzbek "qo'ydi" is often typed "qoydi".
    return folded.replace("'?", "'").replace("'", "'?")


def compile_pattern(pattern: str, *, where: str) -> re.Pattern[str]:
    """Compile one lexicon pattern; a bad one fails loudly with its place in the file."""
    try:
        return re.compile(_fold_regex(pattern))
    except re.error as exc:
        raise NluDataError(f"nlu/data/lexicon.yml: {where}: bad pattern {pattern!r}: {exc}") from exc


def _patterns(raw: Any, where: str) -> tuple[re.Pattern[str], ...]:
    if not isinstance(raw, list) or not raw:
        raise NluDataError(f"nlu/data/lexicon.yml: {where}: expected a non-empty list of patterns")
    return tuple(compile_pattern(str(p), where=where) for p in raw)


def _phrase(text: str) -> tuple[str, ...]:
    return tuple(tokens(fold(unicodedata.normalize("NFKC", text))))


def load_lexicon() -> Lexicon:
    """Read and compile ``nlu/data/lexicon.yml``."""
    data = load_data_file("lexicon.yml")
    social_raw = data.get("social")
    if not isinstance(social_raw, dict):
        raise NluDataError("nlu/data/lexicon.yml: 'social' must be a mapping")
    social: dict[DialogueAct, frozenset[tuple[str, ...]]] = {}
    for act in _SOCIAL_ACTS:
        phrases = social_raw.get(act)
        if not isinstance(phrases, list) or not phrases:
            raise NluDataError(f"nlu/data/lexicon.yml: social.{act}: expected a list of phrases")
        social[act] = frozenset(p for p in (_phrase(str(x)) for x in phrases) if p)
    filler = frozenset(t for x in social_raw.get("filler") or () for t in _phrase(str(x)))
    emoji_raw = social_raw.get("emoji") or {}
    emoji: dict[DialogueAct, frozenset[str]] = {
        cast(DialogueAct, act): frozenset(str(chars)) for act, chars in emoji_raw.items() if act in _SOCIAL_ACTS
    }

    crisis_raw = data.get("crisis")
    if not isinstance(crisis_raw, dict):
        raise NluDataError("nlu/data/lexicon.yml: 'crisis' must be a mapping of kind -> patterns")
    unknown = set(crisis_raw) - set(CRISIS_KINDS)
    if unknown:
        raise NluDataError(f"nlu/data/lexicon.yml: crisis: unknown kinds {sorted(unknown)}")
    crisis = {cast(CrisisKind, k): _patterns(v, f"crisis.{k}") for k, v in crisis_raw.items()}
    missing = set(CRISIS_KINDS) - set(crisis)
    if missing:
        raise NluDataError(f"nlu/data/lexicon.yml: crisis: no patterns for {sorted(missing)}")

    frames = data.get("frames") or {}
    stage_raw = data.get("stage") or {}
    stage = {cast(Stage, s): _patterns(stage_raw.get(s), f"stage.{s}") for s in STAGES}
    return Lexicon(
        social=social,
        filler=filler,
        emoji=emoji,
        ask_human=_patterns(data.get("ask_human"), "ask_human"),
        menu=frozenset(p for p in (_phrase(str(x)) for x in data.get("menu") or ()) if p),
        crisis=crisis,
        generic_frames=_patterns(frames.get("generic"), "frames.generic"),
        conditional_frames=_patterns(frames.get("conditional"), "frames.conditional"),
        conditional_anywhere=_patterns(frames.get("conditional_anywhere"), "frames.conditional_anywhere"),
        interrogative=_patterns(frames.get("interrogative"), "frames.interrogative"),
        stage=stage,
        plea=_patterns(data.get("plea"), "plea"),
        longest_phrase=max(len(p) for phrases in social.values() for p in phrases),
    )


def first_match(patterns: Sequence[re.Pattern[str]], text: str) -> re.Match[str] | None:
    """The earliest match of any pattern in ``text``."""
    best: re.Match[str] | None = None
    for pattern in patterns:
        match = pattern.search(text)
        if match is not None and (best is None or match.start() < best.start()):
            best = match
    return best
