"""A curated answer as a person on a cheap phone sees it: the short answer first, the rest on request.

Why: a 1,700-character answer is almost four screens on a 360x740 phone, and people stop reading
after the first. The ``summary`` of the translation (written and reviewed with the answer) comes
first, with a "More details" button; the sources follow once, with their titles in the reader's
language, and the review date in that language's own format (CLDR, Gregorian calendar).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Protocol

from knowledge_base import Answer, Entry, uz_latin_to_cyrillic
from languages import REGISTRY

from ..i18n import Translator
from ._types import Button, Reply

__all__ = ["LANGUAGE_NAMES", "Catalogue", "answer_reply", "babel_locale", "details_reply", "format_day", "short_title",
           "to_script"]



class Catalogue(Protocol):
    """What rendering (and the dialogue policy) reads of the knowledge base: entries and their
    texts, never a search. ``knowledge_base.KnowledgeBase`` is one; tests use a small fake."""

    @property
    def entries(self) -> Sequence[Entry]: ...

    def get(self, entry_id: str) -> Entry | None: ...

    def answer_for(self, entry: Entry, lang: str | None) -> Answer: ...


#: native names for the language picker (from the one language registry)
LANGUAGE_NAMES: dict[str, str] = {code: row.name for code, row in REGISTRY.items()}
_SUMMARY_CHARS = 450
_BUTTON_CHARS = 32


def babel_locale(lang: str) -> str:
    """The CLDR locale for one of our language codes (Dari is Afghan Persian, Uzbek is Latin).
    Always the Gregorian calendar (CLDR's default for these locales)."""
    row = REGISTRY.get(lang)
    return row.locale if row is not None and row.locale else lang


def format_day(day: dt.date, lang: str) -> str:
    """A date as the reader writes it ("7 декабря 2026 г.", "7-dekabr, 2026"), never "2026 M12 7"."""
    from babel.dates import format_date

    for locale in (babel_locale(lang), "en"):
        try:
            text = str(format_date(day, format="long", locale=locale))
        except Exception:  # a locale Babel lacks: try the next
            continue
        if not re.search(r"\bM\d", text):  # CLDR's placeholder month names for thin locales
            return text
    return day.isoformat()


def to_script(text: str, lang: str, script: str | None) -> str:
    """Uzbek written in Cyrillic is answered in Cyrillic; every other text is left as it is."""
    if lang == "uz" and script == "Cyrl":
        return uz_latin_to_cyrillic(text)
    return text


def short_title(title: str, short: str | None, limit: int = _BUTTON_CHARS) -> str:
    """A label that fits a button whole: the editor's short title, else the title cut at a word."""
    if short:
        return short
    if len(title) <= limit:
        return title
    head = title.split(":")[0].strip()
    if 3 <= len(head) <= limit:
        return head
    cut = title[: limit - 1].rsplit(" ", 1)[0].rstrip(",;:-–")
    return f"{cut}…"


def _summary(text: str, summary: str | None) -> tuple[str, bool]:
    """The short answer and whether more is left to show."""
    body = text.strip()
    if summary:
        return summary.strip(), True
    paragraphs = [p.strip() for p in body.split("\n\n") if p.strip()]
    if len(body) <= _SUMMARY_CHARS or not paragraphs:
        return body, False
    first = paragraphs[0]
    if len(first) > _SUMMARY_CHARS:
        first = first[:_SUMMARY_CHARS].rsplit(" ", 1)[0] + "…"
    return first, True


def answer_reply(kb: Catalogue, t: Translator, entry_id: str, lang: str, *, script: str | None = None,
                 details: bool = False) -> Reply:
    """A curated answer: title, the short answer (or, with ``details``, the whole answer), every
    source once, the review date, and the buttons "More details", 👍/👎 and a counsellor.
    Shared by the engine and the Rasa action API."""
    entry = kb.get(entry_id)
    assert entry is not None
    a = kb.answer_for(entry, lang)
    translation = entry.translations.get(a.lang)
    summary = translation.summary if translation is not None else None
    shown, more = (a.text.strip(), False) if details else _summary(a.text, summary)
    parts = [a.title, shown]
    if a.fell_back:
        parts.insert(0, t(lang, "fallback_note", language=LANGUAGE_NAMES.get(a.lang, a.lang)))
    parts.append(t(lang, "feedback_question"))
    text = to_script("\n\n".join(parts), a.lang, script)
    own = tuple(translation.sources) if translation is not None else ()
    sources = tuple((to_script(s.title_in(a.lang), a.lang, script), s.url) for s in (*a.sources, *own))
    checked = to_script(t(lang, "checked_on", date=format_day(a.reviewed_on, a.lang)), a.lang, script)
    rows: list[tuple[Button, ...]] = []
    if more:
        rows.append((Button(to_script(t(lang, "more_details"), a.lang, script), f"more:{a.entry_id}"[:64]),))
    rows.append((Button(t(lang, "helpful_yes"), f"fb:up:{a.entry_id}"[:64]),
                 Button(t(lang, "helpful_no"), f"fb:down:{a.entry_id}"[:64])))
    rows.append((Button(to_script(t(lang, "talk_to_counsellor"), a.lang, script), "human:ask"),))
    first = sources[0] if sources else (None, None)
    extra = {"script": script} if script else {}
    if details:
        extra["part"] = "details"
    return Reply("answer", text, a.lang, buttons=tuple(rows), source_title=first[0], source_url=first[1],
                 reviewed_on=a.reviewed_on, entry_id=a.entry_id, fell_back=a.fell_back, sources=sources,
                 reviewed_label=checked, topic=entry.topic, extra=extra)


def details_reply(kb: Catalogue, t: Translator, entry_id: str, lang: str, *, script: str | None = None) -> Reply:
    """The whole answer, for the "More details" button."""
    return answer_reply(kb, t, entry_id, lang, script=script, details=True)
