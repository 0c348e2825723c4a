"""What the content validator says, in the reader's language: one catalogue, by problem code.

Why codes: the same finding is printed by ``hamroh kb validate`` (English, for whoever runs it)
and shown next to the field in the console's editor, where an MRC's counsellor may read Russian or
Tajik better than English. A code and the values it names (``params``) let each caller render it;
the catalogue (``data/problems.yml``) is the only place the wording lives.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

__all__ = ["PROBLEM_LANGUAGES", "problem_catalogue", "render_problem"]

_FILE = Path(__file__).with_name("data") / "problems.yml"


@lru_cache(maxsize=1)
def _load() -> tuple[tuple[str, ...], dict[str, dict[str, tuple[str, str]]]]:
    raw: Any = yaml.safe_load(_FILE.read_text(encoding="utf-8"))
    codes = {code: {lang: (str(pair[0]), str(pair[1])) for lang, pair in texts.items()}
             for code, texts in raw["codes"].items()}
    return tuple(raw["languages"]), codes


def problem_catalogue() -> dict[str, dict[str, tuple[str, str]]]:
    """Every code's ``(message, fix)`` per language (a copy: callers may not change the catalogue)."""
    return {code: dict(texts) for code, texts in _load()[1].items()}


#: the languages every problem is written in (MRC staff languages and English)
PROBLEM_LANGUAGES: tuple[str, ...] = _load()[0]


def render_problem(code: str, lang: str | None, params: Mapping[str, str]) -> tuple[str, str]:
    """``(message, fix)`` of ``code`` in ``lang`` (English when the language or the code has none).

    A value a problem names is inserted as it is (an id, a URL, a number), never translated.
    """
    texts = _load()[1].get(code)
    if texts is None:
        raise KeyError(f"no problem code {code!r} in {_FILE.name}")
    message, fix = texts.get(lang or "en") or texts["en"]
    values = dict(params)
    return message.format(**values), fix.format(**values)
