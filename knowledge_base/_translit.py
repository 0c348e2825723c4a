"""Uzbek in both its alphabets: Cyrillic questions are searched in Latin letters, Latin answers shown in Cyrillic.

Why here: the knowledge base's Uzbek is written in Latin letters, so search turns a Cyrillic
question into Latin before embedding it and matching words (``KnowledgeBase.search``); the bot
renders a reviewed Latin answer in Cyrillic for a person who writes Cyrillic. One module serves
both, and ``knowledge_base`` imports nothing of ``bot``.

Why a transliteration and not a second translation: Uzbek Latin and Cyrillic are one language with
a one-to-one official correspondence (the 1995 alphabet), so a deterministic mapping of the reviewed
Latin text keeps one reviewed source of facts. Digits, URLs and Latin-script names of sources and
institutions (``mvd.ru``, ``RuID``) are kept as they are.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["uz_cyrillic_to_latin", "uz_latin_to_cyrillic"]

_APOS: Final = "'ʻʼ‘’`"
#: two-letter sequences first (the order matters: "sh" before "s")
_DIGRAPHS: Final[tuple[tuple[str, str], ...]] = (
    ("o'", "ў"), ("g'", "ғ"), ("sh", "ш"), ("ch", "ч"), ("yo", "ё"), ("yu", "ю"), ("ya", "я"),
    ("ye", "е"),
)
_SINGLE: Final[dict[str, str]] = {
    "a": "а", "b": "б", "d": "д", "e": "е", "f": "ф", "g": "г", "h": "ҳ", "i": "и", "j": "ж", "k": "к",
    "l": "л", "m": "м", "n": "н", "o": "о", "p": "п", "q": "қ", "r": "р", "s": "с", "t": "т", "u": "у",
    "v": "в", "x": "х", "y": "й", "z": "з", "c": "с", "w": "в",
}  # fmt: skip
#: tokens that are not Uzbek words: addresses, acronyms in capitals, product names with digits
_KEEP: Final = re.compile(r"https?://\S+|\S+\.(?:ru|uz|kz|kg|tj|org|com|gov|int|net)\S*|\b[A-Z][A-Za-z]*[A-Z]\w*\b|\w*\d\w*")
_WORD: Final = re.compile(r"[A-Za-z" + re.escape(_APOS) + r"]+")


def _word(word: str) -> str:
    lower = word.lower()
    for apos in _APOS:
        lower = lower.replace(apos, "'")
    out: list[str] = []
    i = 0
    while i < len(lower):
        pair = lower[i:i + 2]
        mapped = next((cyr for lat, cyr in _DIGRAPHS if pair == lat), None)
        if pair == "yo" and lower[i + 2:i + 3] == "'":
            mapped = None  # yo'l → йўл: the o belongs to o'
        if mapped is not None:
            # "ye" and "e" at the start of a word are "е"/"э": Cyrillic writes э for a word-initial e
            out.append(mapped)
            i += 2
            continue
        ch = lower[i]
        if ch == "'":
            out.append("ъ")  # the tutuq belgisi (glottal stop) after a vowel: ma'no → маъно
        elif ch == "e" and i == 0:
            out.append("э")
        else:
            out.append(_SINGLE.get(ch, ch))
        i += 1
    text = "".join(out)
    if word.isupper() and len(word) > 1:
        return text.upper()
    if word[:1].isupper():
        return text[:1].upper() + text[1:]
    return text


def uz_latin_to_cyrillic(text: str) -> str:
    """The same Uzbek text in Cyrillic letters; addresses, acronyms and codes are left untouched."""
    parts: list[str] = []
    last = 0
    for keep in _KEEP.finditer(text):
        parts.append(_WORD.sub(lambda m: _word(m.group(0)), text[last:keep.start()]))
        parts.append(keep.group(0))
        last = keep.end()
    parts.append(_WORD.sub(lambda m: _word(m.group(0)), text[last:]))
    return "".join(parts)


_TO_LATIN: Final[dict[str, str]] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "j", "з": "z", "и": "i",
    "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r", "с": "s", "т": "t",
    "у": "u", "ф": "f", "х": "x", "ц": "ts", "ч": "ch", "ш": "sh", "щ": "sh", "ъ": "'", "ы": "i", "ь": "",
    "э": "e", "ю": "yu", "я": "ya", "ў": "o'", "қ": "q", "ғ": "g'", "ҳ": "h",
}  # fmt: skip


def uz_cyrillic_to_latin(text: str) -> str:
    """Uzbek Cyrillic in Latin letters, so a question typed in Cyrillic meets the Latin content's
    words in lexical search (the dense model already sees both)."""
    out = []
    for ch in text:
        low = ch.lower()
        mapped = _TO_LATIN.get(low)
        if mapped is None:
            out.append(ch)
        else:
            out.append(mapped.capitalize() if ch != low else mapped)
    return "".join(out)
