"""Language identification: what the user types decides the language the bot answers in."""

from __future__ import annotations

import pytest

import nlu

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def ident() -> nlu.LanguageIdentifier:
    return nlu.LanguageIdentifier()


@pytest.mark.parametrize(
    ("text", "lang", "script"),
    [
        ("Where can I renew my work permit?", "en", "Latn"),
        ("Сколько стоит медосмотр для мигрантов?", "ru", "Cyrl"),
        ("kak poluchit patent", "ru", "Latn"),
        ("gde mozhno sdelat registraciyu v moskve", "ru", "Latn"),
        ("Qaysi bankdan pul jo'natish arzon?", "uz", "Latn"),
        ("Ҳужжатларимни қаерда топшираман?", "uz", "Cyrl"),
        ("Бишкекке кайткандан кийин жумуш табууга ким жардам берет?", "ky", "Cyrl"),
        ("Кантип патент алса болот?", "ky", "Cyrl"),
        ("Барои кор дар Маскав чӣ ҳуҷҷатҳо лозим?", "tg", "Cyrl"),
        ("ман мехохам ба Русия равам", "tg", "Cyrl"),
        ("Алматыда тіркелу үшін қандай құжат керек?", "kk", "Cyrl"),
        ("বিদেশে টাকা পাঠানোর নিরাপদ উপায় কী?", "bn", "Beng"),
        ("ami bidesh jete chai", "bn", "Latn"),
        ("saudi jete koto taka lage", "bn", "Latn"),
        ("میں سعودی عرب جانا چاہتا ہوں", "ur", "Arab"),
        ("mujhe visa chahiye", "ur", "Latn"),
        ("bhai saudia ka visa kitne ka hai", "ur", "Latn"),
        ("كيف أجدد الإقامة في الكويت؟", "ar", "Arab"),
        ("ویزە چۆن وەربگرم؟", "ckb", "Arab"),
        ("زه غواړم جرمني ته لاړ شم", "ps", "Arab"),
        ("من در کابل زندگی می کنم و می خواهم به ترکیه بروم", "prs", "Arab"),
        ("මට ජපානයට යන්න ඕනේ", "si", "Sinh"),
        ("நான் துபாய் போக வேண்டும்", "ta", "Taml"),
    ],
)
def test_detects_language_and_script_without_hint(ident: nlu.LanguageIdentifier, text: str, lang: str,
                                                  script: str) -> None:
    decision = ident.identify(text)
    assert (decision.lang, decision.script) == (lang, script)
    assert decision.source == "detected"


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("Мен Бишкектен келдим, үй-бүлөм менен сүйлөшкүм келет", "ky"),  # ө ү ң: not Russian
        ("Мен Шымкенттен келдім, әйелім Алматыда тұрады", "kk"),  # ә і ұ: Kazakh, not Kyrgyz
        ("Ман ҳоло дар Маскав ҳастам ва ҷои кор меҷӯям", "tg"),  # ҷ ӣ ӯ: Tajik
        ("Мен ҳозир Москвада ишлаяпман, ўғлим мактабда", "uz"),  # ў: Uzbek Cyrillic
    ],
)
def test_central_asian_cyrillic_letters_decide(ident: nlu.LanguageIdentifier, text: str, lang: str) -> None:
    assert ident.identify(text).lang == lang


@pytest.mark.parametrize(
    ("text", "lang"),
    [
        ("مجھے اپنے پاسپورٹ کے بارے میں مدد چاہیے", "ur"),  # ٹ ے
        ("پاسپۆرتەکەم ون بووە", "ckb"),  # ۆ ە
        ("زما پاسپورټ ورک شوی", "ps"),  # ټ
        ("پاسپورتم را گم کرده‌ام، چه کنم؟", "prs"),
        ("فقدت جواز سفري، ماذا أفعل؟", "ar"),
    ],
)
def test_arabic_script_languages_are_told_apart(ident: nlu.LanguageIdentifier, text: str, lang: str) -> None:
    assert ident.identify(text).lang == lang


def test_short_message_keeps_the_conversation_language(ident: nlu.LanguageIdentifier) -> None:
    # "Рахмат" is Kyrgyz, Tajik or Uzbek typed on a Russian keyboard: the conversation decides.
    decision = ident.identify("Рахмат", nlu.LanguageHint(current="tg"))
    assert decision.lang == "tg"
    assert decision.source in ("history", "detected")
    assert ident.identify("ok", nlu.LanguageHint(current="ru")).lang == "ru"  # Russian is typed in Latin too
    assert ident.identify("Патент", nlu.LanguageHint(current="ky")).lang == "ky"


def test_short_message_script_overrides_the_conversation(ident: nlu.LanguageIdentifier) -> None:
    # Kazakh letters (ә) rule Kyrgyz out even for one word; Arabic script rules English out.
    assert ident.identify("Сәлем", nlu.LanguageHint(current="ky")).lang == "kk"
    decision = ident.identify("شکریہ", nlu.LanguageHint(current="en"))
    assert (decision.lang, decision.source) == ("ur", "detected")


def test_hint_breaks_a_tie_but_not_clear_evidence(ident: nlu.LanguageIdentifier) -> None:
    hint = nlu.LanguageHint(chosen="tg", current="tg")
    assert ident.identify("Где мне сделать регистрацию и сколько это стоит?", hint).lang == "ru"
    chosen = ident.identify("Салом", nlu.LanguageHint(chosen="uz"))
    assert (chosen.lang, chosen.source) in (("uz", "hint"), ("uz", "detected"))


def test_no_letters_falls_back_to_what_is_known(ident: nlu.LanguageIdentifier) -> None:
    decision = ident.identify("👍👍 123", nlu.LanguageHint(chosen="bn", current="ur"))
    assert (decision.lang, decision.source, decision.confident) == ("ur", "history", False)
    assert ident.identify("🙂", nlu.LanguageHint(chosen="si")).lang == "si"
    assert ident.identify("", None).lang == "en"


def test_unknown_hint_codes_are_ignored(ident: nlu.LanguageIdentifier) -> None:
    assert ident.identify("Hello, where is the embassy?", nlu.LanguageHint(chosen="xx", current="zz")).lang == "en"
