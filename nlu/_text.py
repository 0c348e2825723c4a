"""Text clean-up shared by every stage: safe input, scripts, tokens and a "folded" matching form.

Chat text arrives from Telegram and a web widget: it may hold control characters, lone surrogates,
presentation-form Arabic, curly apostrophes (Uzbek o‘/gʻ), Persian ZWNJ, or be very long. Everything
downstream works on the result of :func:`clean`, so no later stage has to be defensive about it.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from typing import Final

from ._types import Script

__all__ = ["MAX_CHARS", "clean", "dominant_script", "fold", "script_counts", "tokens"]

#: Longer messages are cut before any processing: the first few thousand characters decide the
#: language and the act, and the cut keeps every stage linear and fast on a 10,000-character paste.
MAX_CHARS: Final = 4000

_APOSTROPHES: Final = str.maketrans({c: "'" for c in "‘’ʻʼ`´ʹ′"})
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ufffe\uffff\ufeff]")
_SPACES: Final = re.compile(r"\s+")

# A word character: any letter, or a combining mark of the scripts we serve (Bengali, Sinhala and
# Tamil vowel signs are marks, which ``\w`` does not match), or ZWJ/ZWNJ inside a word.
_WCHAR: Final = r"(?:[^\W\d_]|[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed" \
    r"\u0900-\u0963\u0971-\u09e5\u09f0-\u0be5\u0bf0-\u0de5\u0df0-\u0dff\u200c\u200d])"
_TOKEN: Final = re.compile(rf"{_WCHAR}+(?:'{_WCHAR}+)*")

_SCRIPT_RANGES: Final[tuple[tuple[int, int, Script], ...]] = (
    (0x0041, 0x005A, "Latn"), (0x0061, 0x007A, "Latn"), (0x00C0, 0x024F, "Latn"),
    (0x1E00, 0x1EFF, "Latn"),
    (0x0400, 0x052F, "Cyrl"),
    (0x0620, 0x064A, "Arab"), (0x066E, 0x06D3, "Arab"), (0x06D5, 0x06D5, "Arab"),
    (0x06EE, 0x06EF, "Arab"), (0x06FA, 0x06FF, "Arab"), (0x0750, 0x077F, "Arab"),
    (0x08A0, 0x08FF, "Arab"), (0xFB50, 0xFDFF, "Arab"), (0xFE70, 0xFEFF, "Arab"),
    (0x0900, 0x0963, "Deva"),
    (0x0980, 0x09E5, "Beng"), (0x09F0, 0x09FF, "Beng"),
    (0x0B80, 0x0BE5, "Taml"), (0x0BF0, 0x0BFF, "Taml"),
    (0x0D80, 0x0DE5, "Sinh"), (0x0DF0, 0x0DFF, "Sinh"),
)  # fmt: skip


def clean(text: object) -> str:
    """Return a safe, NFKC-normalised, whitespace-collapsed string of at most :data:`MAX_CHARS`.

    Accepts anything (``None``, bytes, numbers) because a malformed update must degrade into an
    unhelpful answer, never into an exception in the dialogue engine.
    """
    if text is None:
        return ""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", "replace")
    elif not isinstance(text, str):
        text = str(text)
    text = text[: MAX_CHARS * 2]
    # Lone surrogates (from a bad decode) would make the tokenizer of the embedder raise.
    text = text.encode("utf-8", "ignore").decode("utf-8", "ignore")
    text = unicodedata.normalize("NFKC", text)
    text = _CONTROL.sub(" ", text).translate(_APOSTROPHES)
    return _SPACES.sub(" ", text).strip()[:MAX_CHARS]


def _script_of(ch: str) -> Script | None:
    cp = ord(ch)
    for lo, hi, script in _SCRIPT_RANGES:
        if lo <= cp <= hi:
            return script
    return None


def script_counts(text: str) -> Counter[Script]:
    """Count the characters of each script we serve (letters and vowel signs, not digits)."""
    counts: Counter[Script] = Counter()
    for ch in text:
        if ch.isascii() and not ch.isalpha():
            continue
        script = _script_of(ch)
        if script is not None:
            counts[script] += 1
    return counts


def dominant_script(text: str) -> Script:
    """The script with most characters; ``Zyyy`` when there are none (emoji, digits, punctuation)."""
    counts = script_counts(text)
    if not counts:
        return "Zyyy"
    return counts.most_common(1)[0][0]


def tokens(text: str) -> list[str]:
    """Word tokens that keep Indic vowel signs, ZWNJ and inner apostrophes (o'zbek) together."""
    return _TOKEN.findall(text)


# Folding erases differences that keyboards, not languages, make: Arabic vs Persian yeh/kaf,
# hamza seats, Urdu heh goal, harakat, ZWNJ; Cyrillic letters of Central Asian alphabets typed on a
# Russian keyboard (қ→к, ҳ→х, ў→у ...); Latin diacritics and case. Lexicons are folded the same way
# when compiled, so a pattern written once matches every common spelling.
_FOLD_MAP: Final = str.maketrans(
    {
        "ي": "ی", "ى": "ی", "ئ": "ی", "ۍ": "ی", "ې": "ی", "ێ": "ی",
        "ك": "ک", "ګ": "گ",
        "ة": "ه", "ۀ": "ه", "ہ": "ه", "ۃ": "ه", "ە": "ه", "ھ": "ه",
        "أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا",
        "ؤ": "و", "ۆ": "و",
        "ڕ": "ر", "ڵ": "ل",
        "ـ": None, "\u200c": None, "\u200d": None, "\u200b": None,
        "ё": "е", "қ": "к", "ғ": "г", "ҳ": "х", "ў": "у", "ӯ": "у", "ӣ": "и", "ҷ": "ч",
        "ө": "о", "ү": "у", "ң": "н", "ә": "а", "ұ": "у", "і": "и", "һ": "х",
    }
)  # fmt: skip
_HARAKAT: Final = re.compile(r"[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")


def fold(text: str) -> str:
    """Lower-case and fold ``text`` for lexicon matching (never for language identification)."""
    text = _HARAKAT.sub("", text.lower()).translate(_FOLD_MAP)
    if any("\u00c0" <= ch <= "\u024f" for ch in text):
        text = "".join(_strip_latin_accent(ch) for ch in text)
    return text


def _strip_latin_accent(ch: str) -> str:
    if "\u00c0" <= ch <= "\u024f":
        return unicodedata.normalize("NFD", ch)[0]
    return ch
