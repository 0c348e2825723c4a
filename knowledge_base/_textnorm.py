"""Script normalisation for lexical retrieval.

Why: the same word reaches us in several spellings. Uzbek is written in Latin and Cyrillic,
Russian is often typed in Latin letters on phones without a Cyrillic keyboard ("registraciya",
"registratsiya"), Arabic-script languages mix Arabic and Persian letter forms. BM25 only matches
identical tokens, so every text is folded to one Latin "skeleton" before tokenising: Cyrillic is
transliterated, competing Latin spellings of one sound are merged, doubled letters collapse, and
long words are cut to a prefix (a crude stemmer that works for Russian and Turkic endings).
"""

from __future__ import annotations

import unicodedata

import regex

__all__ = ["fold", "lexical_tokens"]

_CYR = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "yo", "ж": "j", "з": "z",
    "и": "i", "й": "y", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o", "п": "p", "р": "r",
    "с": "s", "т": "t", "у": "u", "ф": "f", "х": "h", "ц": "c", "ч": "ch", "ш": "sh", "щ": "sh",
    "ъ": "", "ы": "i", "ь": "", "э": "e", "ю": "yu", "я": "ya",
    # Uzbek, Tajik, Kyrgyz, Kazakh letters
    "ў": "o", "қ": "k", "ғ": "g", "ҳ": "h", "ҷ": "j", "ӣ": "i", "ӯ": "u", "ө": "o", "ү": "u",
    "ң": "n", "ә": "a", "ұ": "u", "һ": "h", "і": "i",
}
_CYR_TABLE = str.maketrans(_CYR)
# ordered Latin folds: one sound, one spelling
_LATIN_FOLDS: list[tuple[regex.Pattern[str], str]] = [
    (regex.compile(p), r)
    for p, r in [
        (r"shch|sch", "\x01"), (r"ch", "\x02"), (r"sh", "\x01"), (r"zh", "j"), (r"kh", "h"),
        (r"ts|tc", "c"), (r"x", "h"), (r"q", "k"), (r"w", "v"), (r"yo|ye", "e"), (r"ja", "ya"),
        (r"ju", "yu"), (r"iy", "i"), (r"y", "i"), (r"(.)\1+", r"\1"),
        (r"\x01", "sh"), (r"\x02", "ch"),
    ]
]
_ARABIC_FOLD = str.maketrans({
    "ي": "ی", "ى": "ی", "ې": "ی", "ۍ": "ی", "ے": "ی", "ك": "ک", "ګ": "گ", "ة": "ه", "ۀ": "ه", "ھ": "ه",
    "ہ": "ه", "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ؤ": "و", "ئ": "ی", "\u200c": " ", "\u200d": "",
})
_APOSTROPHES = regex.compile(r"[''ʻʼ`´‘’]")
_TOKEN = regex.compile(r"[\p{L}\p{M}\p{N}]+")
_LATIN_WORD = regex.compile(r"^[a-z0-9]+$")
_MARKS = regex.compile(r"[\u064B-\u065F\u0670\u06D6-\u06ED]")  # Arabic harakat and Quranic marks
_STEM = 6


def fold(text: str) -> str:
    """Lowercase and fold scripts so that spelling variants of one word coincide."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = text.translate(_CYR_TABLE).translate(_ARABIC_FOLD)
    text = _MARKS.sub("", text)
    return _APOSTROPHES.sub("", text)


def lexical_tokens(text: str) -> list[str]:
    """Tokens for BM25: folded words, Latin ones spelled canonically and cut to a prefix."""
    out = []
    for token in _TOKEN.findall(fold(text)):
        if _LATIN_WORD.match(token):
            for pattern, repl in _LATIN_FOLDS:
                token = pattern.sub(repl, token)
        if len(token) > _STEM:
            token = token[:_STEM]
        if len(token) > 1 or token.isdigit():
            out.append(token)
    return out
