"""The project's languages, in one place: codes, native names, direction, scripts, aliases, locales.

Every package reads the language list from here (``nlu``, ``knowledge_base``, ``bot`` and the web
widget's ``i18n/languages.json``, which ``hamroh web languages`` writes from this registry). It is
the lowest package of the project: it imports nothing of it, so any package may import it.

Adding a language: one :class:`Language` row below (in the content spec's order), then the
content, the bot's and the widget's labels, and ``hamroh web languages``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

__all__ = [
    "LANGUAGES",
    "REGISTRY",
    "Direction",
    "Language",
    "canonical",
    "get",
    "is_rtl",
    "sole_language_of_script",
    "widget_index",
    "widget_json",
]

Direction = Literal["ltr", "rtl"]


@dataclass(frozen=True, slots=True)
class Language:
    """One language the project serves."""

    #: the project's code (``shared/content-spec.md``): ISO 639-1 where it exists, else 639-3
    #: (``ckb`` Central Kurdish, ``prs`` Dari)
    code: str
    #: the name in the language itself, for pickers and buttons
    name: str
    english: str
    dir: Direction
    #: ISO 15924 scripts it is written in, the usual one first (Uzbek: Latin today, Cyrillic too)
    scripts: tuple[str, ...]
    #: codes a browser or phone may send instead (``fa`` for Dari, ``ku`` for Kurdish)
    aliases: tuple[str, ...] = ()
    #: the CLDR locale for dates, numbers and country names (Dari is Afghan Persian)
    locale: str = ""


_ROWS: Final[tuple[Language, ...]] = (
    Language("en", "English", "English", "ltr", ("Latn",), locale="en"),
    Language("ru", "Русский", "Russian", "ltr", ("Cyrl",), locale="ru"),
    Language("uz", "Oʻzbekcha", "Uzbek", "ltr", ("Latn", "Cyrl"), locale="uz_Latn"),
    Language("ky", "Кыргызча", "Kyrgyz", "ltr", ("Cyrl",), locale="ky"),
    Language("tg", "Тоҷикӣ", "Tajik", "ltr", ("Cyrl",), locale="tg"),
    Language("kk", "Қазақша", "Kazakh", "ltr", ("Cyrl",), locale="kk"),
    Language("bn", "বাংলা", "Bengali", "ltr", ("Beng",), locale="bn"),
    Language("ur", "اردو", "Urdu", "rtl", ("Arab",), locale="ur_PK"),
    Language("ar", "العربية", "Arabic", "rtl", ("Arab",), locale="ar"),
    Language("ckb", "کوردی", "Central Kurdish (Sorani)", "rtl", ("Arab",), aliases=("ku",), locale="ckb_IQ"),
    Language("si", "සිංහල", "Sinhala", "ltr", ("Sinh",), locale="si"),
    Language("ta", "தமிழ்", "Tamil", "ltr", ("Taml",), locale="ta"),
    Language("ps", "پښتو", "Pashto", "rtl", ("Arab",), locale="ps"),
    Language("prs", "دری", "Dari", "rtl", ("Arab",), aliases=("fa",), locale="fa_AF"),
)

#: every language by code, in the content spec's order
REGISTRY: Final[Mapping[str, Language]] = MappingProxyType({row.code: row for row in _ROWS})
#: the codes, in the content spec's order
LANGUAGES: Final[tuple[str, ...]] = tuple(REGISTRY)
_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {alias: row.code for row in _ROWS for alias in row.aliases}
)


def get(code: str) -> Language:
    """The language for a project code; ``KeyError`` naming the known codes otherwise."""
    try:
        return REGISTRY[code]
    except KeyError:
        raise KeyError(f"unknown language code {code!r}; use one of {', '.join(LANGUAGES)}") from None


def canonical(tag: str | None) -> str | None:
    """The project's code for a code or BCP 47 tag (``fa-AF`` → ``prs``, ``ku`` → ``ckb``,
    ``ru-RU`` → ``ru``); ``None`` for a language the project does not serve."""
    if not tag:
        return None
    code = tag.strip().lower().replace("_", "-").split("-")[0]
    code = _ALIASES.get(code, code)
    return code if code in REGISTRY else None


def is_rtl(code: str) -> bool:
    """Whether text in this language runs right to left (unknown codes: left to right)."""
    row = REGISTRY.get(code)
    return row is not None and row.dir == "rtl"


def sole_language_of_script() -> dict[str, str]:
    """Scripts that only one of the project's languages is written in (Bengali, Sinhala, Tamil):
    text in them names its language by itself."""
    users: dict[str, list[str]] = {}
    for row in _ROWS:
        for script in row.scripts:
            users.setdefault(script, []).append(row.code)
    return {script: codes[0] for script, codes in users.items() if len(codes) == 1}


def widget_index() -> dict[str, dict[str, object]]:
    """What the web widget needs (``bot/web/i18n/languages.json``): name, direction and aliases."""
    index: dict[str, dict[str, object]] = {}
    for row in _ROWS:
        entry: dict[str, object] = {"name": row.name, "dir": row.dir}
        if row.aliases:
            entry["aliases"] = list(row.aliases)
        index[row.code] = entry
    return index


def widget_json() -> str:
    """The text of ``bot/web/i18n/languages.json``, as ``hamroh web languages`` writes it."""
    return json.dumps(widget_index(), ensure_ascii=False, indent=1) + "\n"
