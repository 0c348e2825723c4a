"""The pieces of the dialogue policy a person notices, without a model or a database: Uzbek in
the script it was written in, dates as people write them, buttons that fit, the crisis reply's
numbers, and a shared location's country."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.channels._geo import country_at
from bot.engine import EmergencyContact, crisis_text, format_day
from bot.engine._render import short_title
from bot.engine._state import ConversationState, PendingQuestions
from bot.i18n import Translator
from knowledge_base import uz_cyrillic_to_latin, uz_latin_to_cyrillic

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("latin", "cyrillic"), [
    ("O'zbekiston fuqarolari", "Ўзбекистон фуқаролари"),
    ("Yo'l haqi va ma'lumot", "Йўл ҳақи ва маълумот"),
    ("G'alaba, choy, shahar, ertaga", "Ғалаба, чой, шаҳар, эртага"),
    ("Patent 30 kun ichida, mvd.ru va RuID", "Патент 30 кун ичида, mvd.ru ва RuID"),
])
def test_uzbek_latin_becomes_cyrillic_and_keeps_addresses_and_codes(latin: str, cyrillic: str) -> None:
    assert uz_latin_to_cyrillic(latin) == cyrillic


def test_uzbek_cyrillic_question_meets_latin_content_words() -> None:
    assert uz_cyrillic_to_latin("Россияда патент олиш учун қандай ҳужжатлар керак?") == (
        "Rossiyada patent olish uchun qanday hujjatlar kerak?")


def test_every_uzbek_entry_reads_in_cyrillic_without_latin_words_left(kb) -> None:  # type: ignore[no-untyped-def]
    """Each Uzbek answer transliterates whole: no Uzbek word is left in Latin letters (only
    addresses, acronyms and codes, which the reader types as they are)."""
    import re

    for entry in kb.entries:
        tr = entry.translations.get("uz")
        if tr is None:
            continue
        text = uz_latin_to_cyrillic(f"{tr.title}\n{tr.summary or ''}\n{tr.answer}")
        plain = re.sub(r"https?://\S+|\S+\.[a-z]{2,}\S*", " ", text)  # addresses stay as typed
        words = [w for w in re.findall(r"\b[a-z][a-z']{3,}\b", plain)]
        assert not words, (entry.id, words[:5])


@pytest.mark.parametrize(("lang", "expected"), [
    ("ru", "7 декабря 2026"), ("uz", "2026"), ("en", "December 7, 2026"), ("ps", "2026"), ("prs", "2026"),
])
def test_review_dates_read_as_people_write_them(lang: str, expected: str) -> None:
    text = format_day(dt.date(2026, 12, 7), lang)
    assert expected in text
    assert "M12" not in text and "1405" not in text and "Azar" not in text


def test_button_titles_fit_whole_and_never_cut_mid_word() -> None:
    long = "Entering and staying in Russia without a visa: migration card, 90 days, new rules"
    label = short_title(long, None)
    assert len(label) <= 32 and not label.endswith(" ")
    assert short_title(long, "Entry and stay") == "Entry and stay"
    assert short_title("Patent in Russia", None) == "Patent in Russia"


EMERGENCY = {
    "RU": (EmergencyContact("Single emergency number", "112", None),),
    "AE": (EmergencyContact("Police", "999", None), EmergencyContact("Mental health support line", "800 4673", None,
                                                                          kind="mental_health")),
}


def test_the_crisis_reply_gives_the_number_where_the_person_is_now() -> None:
    t = Translator()
    text = crisis_text(t, EMERGENCY, "RU", "ru", kind="violence")
    assert "112" in text and "посольств" in text.lower()


def test_self_harm_gets_the_mental_health_line_first_and_no_exploitation_advice() -> None:
    t = Translator()
    text = crisis_text(t, EMERGENCY, "AE", "en", kind="self_harm")
    assert text.index("8004673") < text.index("999")
    assert "embassy" not in text.lower()


def test_a_country_without_a_verified_number_says_so_instead_of_inventing_one() -> None:
    text = crisis_text(Translator(), EMERGENCY, "QA", "en", kind="violence")
    assert "do not have a verified emergency number" in text


@pytest.mark.parametrize(("lat", "lon", "code"), [
    (55.75, 37.62, "RU"), (41.31, 69.24, "UZ"), (43.24, 76.89, "KZ"), (25.20, 55.27, "AE"), (3.14, 101.69, "MY"),
    (23.81, 90.41, "BD"), (38.56, 68.79, "TJ"), (36.19, 44.01, "IQ"),
])
def test_a_shared_location_names_the_country_for_emergency_numbers(lat: float, lon: float, code: str) -> None:
    assert country_at(lat, lon) == code


def test_state_survives_storage_and_ignores_unknown_keys() -> None:
    state = ConversationState(location="RU", asked=["origin"], last_topic="ru-patent", misses=1)
    again = ConversationState.load({**state.dump(), "from_a_newer_release": 1})
    assert again == state


def test_a_question_before_consent_is_kept_in_memory_once() -> None:
    kept = PendingQuestions(size=2)
    kept.put("a", "patent hujjatlari?", "uz")
    kept.put("b", "x", "en")
    kept.put("c", "y", "en")
    assert kept.peek("a") is None  # bounded: the oldest goes first
    item = kept.pop("c")
    assert item is not None and item.text == "y" and kept.pop("c") is None


@pytest.mark.parametrize(("text", "lang"), [
    ("English please", "en"), ("по-русски пожалуйста", "ru"), ("Говори на русском", "ru"), ("o'zbekcha", "uz"),
    ("bangla", "bn"), ("tamil please", "ta"), ("dari", "prs"),
    ("men uzbek", None), ("patent kerak", None), ("how do I renew my russian patent", None),
])
def test_a_language_asked_for_by_name_is_recognised_and_nationalities_are_not(text: str, lang: str | None) -> None:
    from bot.engine._policy import asked_language as _asked_language

    languages = ("en", "ru", "uz", "ky", "tg", "kk", "bn", "ur", "ar", "ckb", "si", "ta", "ps", "prs")
    assert _asked_language(text, languages) == lang


def test_a_command_typed_in_the_web_chat_is_the_command() -> None:
    from bot.engine import IncomingMessage
    from bot.engine._policy import typed_command as _typed_command

    typed = _typed_command(IncomingMessage(channel="web", user_key="u", message_id="1", text="/delete"))
    assert typed.command == "delete" and typed.text is None
    plain = IncomingMessage(channel="web", user_key="u", message_id="2", text="/what is this")
    assert _typed_command(plain) == plain
