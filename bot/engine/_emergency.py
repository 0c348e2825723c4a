"""What a person in danger is told: a number they can dial where they are now, in their language.

Why its own module: the crisis reply is the most important thing Hamroh says, and the engine, the
Rasa action API and the tests must build it the same way. Numbers come only from ``config.yml``,
each with the official page that states it; where no number is configured, the reply says so and
gives the embassy route instead of inventing one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ..i18n import Translator
from ._render import babel_locale
from ._types import Button

__all__ = [
    "ASK_COUNTRIES",
    "ContactKind",
    "EmergencyContact",
    "country_buttons",
    "country_name",
    "crisis_text",
    "dialable",
]

ContactKind = Literal["emergency", "police", "ambulance", "mental_health", "hotline"]

#: the countries offered as buttons when the bot must ask where the person is: the destinations of
#: the content spec first, then the origin countries (a returnee or a family member at home)
ASK_COUNTRIES: tuple[str, ...] = ("RU", "KZ", "SA", "AE", "QA", "KW", "OM", "BH", "MY", "TR", "IQ",
                                  "UZ", "TJ", "KG", "BD", "PK", "LK", "AF")


@dataclass(frozen=True)
class EmergencyContact:
    label: str
    phone: str | None
    url: str | None
    kind: ContactKind = "emergency"
    source: str = ""


def country_name(code: str, lang: str) -> str:
    """The country's name in the reader's language (CLDR), or the code when CLDR has none."""
    try:
        from babel import Locale

        locale = Locale.parse(babel_locale(lang))
        return str(locale.territories.get(code, code))
    except Exception:  # unknown locale data: the code is still meaningful
        return code


def dialable(phone: str) -> str:
    """A number as Telegram and phones recognise it: digits, an optional leading +, no spaces inside
    short codes (so "112" stays "112" and "+7 800 333-44-34" becomes "+78003334434")."""
    keep = "".join(ch for ch in phone if ch.isdigit() or ch == "+")
    return keep


def country_buttons(lang: str, payload_prefix: str, *, first: Sequence[str] = (),
                    other_label: str | None = None) -> tuple[tuple[Button, ...], ...]:
    """Country choices, two a row, with the likeliest (``first``) at the top."""
    codes = list(dict.fromkeys([*first, *ASK_COUNTRIES]))
    buttons = [Button(country_name(c, lang), f"{payload_prefix}:{c}") for c in codes]
    rows = [tuple(buttons[i:i + 2]) for i in range(0, len(buttons), 2)]
    if other_label:
        rows.append((Button(other_label, f"{payload_prefix}:ZZ"),))
    return tuple(rows)


def _lines(contacts: Sequence[EmergencyContact], lang: str) -> list[str]:
    """One line a number. The labels in config.yml are English (for counsellors, with their sources):
    a reader of another language sees the number alone, which is what they dial."""
    out = []
    for c in contacts:
        target = dialable(c.phone) if c.phone else c.url
        if target:
            out.append(f"{c.label}: {target}" if lang == "en" else target)
    return out


def crisis_text(t: Translator, emergency: Mapping[str, Sequence[EmergencyContact]], country: str | None,
                lang: str, *, kind: str | None = None) -> str:
    """The crisis reply for a person in ``country`` (``None`` when unknown: the caller asks).

    A self-harm crisis gets a compassionate text and the mental-health line first (else the
    emergency number), never the exploitation advice about embassies and a safe return.
    """
    say = t
    self_harm = kind == "self_harm"
    parts = [say(lang, "self_harm" if self_harm else "crisis")]
    if country:
        contacts = list(emergency.get(country, ()))
        if self_harm:
            contacts.sort(key=lambda c: 0 if c.kind == "mental_health" else 1)
        else:
            contacts = [c for c in contacts if c.kind != "mental_health"] or contacts
        lines = _lines(contacts, lang)
        name = country_name(country, lang)
        if lines:
            head = say(lang, "self_harm_numbers" if self_harm else "crisis_numbers", country=name)
            parts.append("\n".join([head, *lines]))
        else:
            parts.append(say(lang, "crisis_no_number", country=name))
    if not self_harm:
        parts.append(say(lang, "crisis_embassy"))
    return "\n\n".join(parts)
