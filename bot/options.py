"""The engine's options from ``config.yml``: MRC routing tables, emergency numbers, languages.

Why a module of its own: the engine (``bot.services``) and the Rasa action API (``bot.rasa``) both
need them, and neither may import the other (that was an import cycle).
"""

from __future__ import annotations

from .engine import EmergencyContact, EngineOptions
from .settings import Settings

__all__ = ["engine_options"]


def engine_options(settings: Settings) -> EngineOptions:
    by_country: dict[str, str] = {}
    by_lang: dict[str, str] = {}
    for mrc in settings.mrcs:
        by_country.setdefault(mrc.country, mrc.id)
        for lang in mrc.languages:
            if lang != "en":
                by_lang.setdefault(lang, mrc.id)
    emergency = {country: tuple(EmergencyContact(c.label, c.phone, c.url, c.kind, c.source) for c in contacts)
                 for country, contacts in settings.emergency.items()}
    return EngineOptions(languages=tuple(settings.languages), default_language=settings.default_language,
                         emergency=emergency, mrc_by_country=by_country, mrc_by_language=by_lang,
                         default_mrc=settings.mrcs[0].id if settings.mrcs else "",
                         mrc_languages={m.id: tuple(m.languages) for m in settings.mrcs})
