"""Countries of origin and destination, and the migration stage, from one message.

The knowledge base filters answers by the user's profile (origin, destination, stage), so a message
that says "I am from Tajikistan" or "Rossiyaga ketmoqchiman" should fill the profile without a form.
Matching is a gazetteer with stem-plus-ending lookup (``data/countries.yml``); the role comes from the
words and case endings around the name, else from what is typical for an MRC user (Uzbekistan is an
origin, Saudi Arabia a destination).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal, cast

from ._data import NluDataError, load_data_file
from ._lexicon import Lexicon
from ._text import fold, tokens
from ._types import Entities, Stage

__all__ = ["EntityExtractor"]

Role = Literal["origin", "destination", "both"]
_Cue = Literal["origin", "destination", "location"]

_ARABIC_PREFIXES: Final = ("وال", "بال", "فال", "لل", "ال", "و", "ب", "ل", "ف")
_STRIP_FINAL: Final = frozenset("aeаеяьй")
_VIRAMAS: Final = frozenset("\u09cd\u0bcd\u0dca")
_MAX_PHRASE: Final = 4
#: Profile facts are stated early; reading further only costs time on a pasted wall of text.
_MAX_CHARS: Final = 1000
#: Which country a language's speakers most likely come from (for mentions with no cue).
_HOME: Final[Mapping[str, str]] = {
    "uz": "UZ", "tg": "TJ", "ky": "KG", "kk": "KZ", "bn": "BD", "ur": "PK", "si": "LK",
    "ps": "AF", "prs": "AF", "ckb": "IQ",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Name:
    code: str
    prefix: tuple[str, ...]  # leading whole tokens of a multi-word name
    full: str  # the last token as written
    max_suffix: int


@dataclass(frozen=True, slots=True)
class _Mention:
    code: str
    start: int
    end: int
    suffix: str


class EntityExtractor:
    """Finds countries and the migration stage. Built from data files on first use."""

    def __init__(self, lexicon: Lexicon) -> None:
        self._stage = lexicon.stage
        data = load_data_file("countries.yml")
        countries = data.get("countries")
        cues = data.get("cues")
        if not isinstance(countries, dict) or not isinstance(cues, dict):
            raise NluDataError("nlu/data/countries.yml: needs 'countries' and 'cues' mappings")
        self._roles: dict[str, Role] = {}
        self._table: dict[tuple[tuple[str, ...], str], list[_Name]] = {}
        self._starts: set[str] = set()  # first two letters of every name: most words start no name
        self._lengths: set[int] = set()
        for code, entry in countries.items():
            if not isinstance(entry, dict) or entry.get("role") not in ("origin", "destination", "both"):
                raise NluDataError(f"nlu/data/countries.yml: {code}: needs role origin|destination|both")
            self._roles[str(code)] = cast(Role, entry["role"])
            for raw in entry.get("names") or ():
                self._add_name(str(code), str(raw))
        self._cue_words: dict[str, dict[str, _Cue]] = {"before": {}, "after": {}}
        self._cue_suffixes: list[tuple[str, _Cue]] = []
        for cue in ("origin", "destination", "location"):
            for where in ("before", "after"):
                for word in cues.get(f"{cue}_{where}") or ():
                    self._cue_words[where][" ".join(_toks(str(word)))] = cast(_Cue, cue)
            for suffix in cues.get(f"{cue}_suffix") or ():
                self._cue_suffixes.append((fold(unicodedata.normalize("NFKC", str(suffix))), cast(_Cue, cue)))
        self._cue_suffixes.sort(key=lambda item: -len(item[0]))

    def _add_name(self, code: str, raw: str) -> None:
        exact = raw.startswith("=")
        raw = raw.lstrip("=")
        limit: int | None = 0 if exact else None
        if "~" in raw:
            raw, _, n = raw.rpartition("~")
            limit = int(n)
        toks = _toks(raw)
        if not toks:
            return
        *prefix, last = toks
        stems = {last}
        if limit is None and len(last) >= 5 and last[-1] in _STRIP_FINAL:
            stems.add(last[:-1])
        if last[-1] in _VIRAMAS:
            stems.add(last[:-1])
        self._starts.add((prefix[0] if prefix else last)[:2])
        for stem in stems:
            self._lengths.add(len(stem))
            max_suffix = limit if limit is not None else min(7, max(2, len(stem) - 1))
            self._table.setdefault((tuple(prefix), stem), []).append(
                _Name(code, tuple(prefix), last, max_suffix)
            )

    # --------------------------------------------------------------------------------- countries
    def _lookup(self, toks: Sequence[str], i: int) -> _Mention | None:
        if not any(v[:2] in self._starts for v in _variants(toks[i])):
            return None
        for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
            prefix = tuple(toks[i : i + n - 1])
            last = toks[i + n - 1]
            for word in _variants(last):
                for cut in sorted((k for k in self._lengths if k <= len(word)), reverse=True):
                    for name in self._table.get((prefix, word[:cut]), ()):
                        rest = word[len(name.full) :] if word.startswith(name.full) else word[cut:]
                        if len(word) - cut <= name.max_suffix:
                            return _Mention(name.code, i, i + n, rest)
        return None

    def mentions(self, folded: str) -> list[_Mention]:
        """Country mentions in order; a country named twice is reported once."""
        toks = _toks(folded[:_MAX_CHARS])
        found: list[_Mention] = []
        i = 0
        while i < len(toks):
            mention = self._lookup(toks, i)
            if mention is None:
                i += 1
                continue
            if all(m.code != mention.code for m in found):
                found.append(mention)
            i = mention.end
        return found

    def _cue(self, toks: Sequence[str], m: _Mention) -> _Cue | None:
        for suffix, cue in self._cue_suffixes:
            if m.suffix and m.suffix.startswith(suffix):
                return cue
        for n in (2, 1):
            before = " ".join(toks[max(0, m.start - n) : m.start])
            if m.start - n >= 0 and before in self._cue_words["before"]:
                return self._cue_words["before"][before]
        for n in (2, 1):
            after = " ".join(toks[m.end : m.end + n])
            if m.end + n <= len(toks) and after in self._cue_words["after"]:
                return self._cue_words["after"][after]
        return None

    def extract(self, folded: str, lang: str) -> Entities:
        """Origin, destination and stage said in ``folded`` (a message after :func:`fold`)."""
        folded = folded[:_MAX_CHARS]
        toks = _toks(folded)
        origin: str | None = None
        destination: str | None = None
        pending: list[tuple[_Mention, _Cue | None]] = []
        for m in self.mentions(folded):
            cue = self._cue(toks, m)
            role = self._roles.get(m.code, "destination")
            if cue == "origin" or (cue == "location" and role == "origin"):
                origin = origin or m.code
            elif cue in ("destination", "location"):
                destination = destination or m.code
            else:
                pending.append((m, cue))
        for m, _ in pending:
            role = self._roles.get(m.code, "destination")
            if role == "both":
                role = "origin" if _HOME.get(lang) == m.code else "destination"
            if role == "origin" and origin is None and m.code != destination:
                origin = m.code
            elif role == "destination" and destination is None and m.code != origin:
                destination = m.code
            elif origin is None and m.code != destination:
                origin = m.code
            elif destination is None and m.code != origin:
                destination = m.code
        return Entities(origin=origin, destination=destination, stage=self.stage(folded))

    # ------------------------------------------------------------------------------------- stage
    def stage(self, folded: str) -> Stage | None:
        """The migration stage the message states; being abroad outranks plans, plans outrank return."""
        said = {s for s, patterns in self._stage.items() if any(p.search(folded) for p in patterns)}
        if "abroad" in said and "returned" not in said:
            return "abroad"
        if "planning" in said:
            return "planning"
        if "returned" in said:
            return "returned"
        return None


def _toks(text: str) -> list[str]:
    return tokens(fold(unicodedata.normalize("NFKC", text)))


def _variants(word: str) -> list[str]:
    """The word, and for Arabic-script words the word without a clitic prefix (بالعراق -> عراق)."""
    out = [word]
    if word and "\u0600" <= word[0] <= "\u06ff":
        for prefix in _ARABIC_PREFIXES:
            if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                out.append(word[len(prefix) :])
    return out

