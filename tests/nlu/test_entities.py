"""Countries and migration stage: the profile filters the knowledge base uses."""

from __future__ import annotations

import pytest

import nlu

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "origin", "destination"),
    [
        ("I am from Tajikistan. Can I work in Russia?", "TJ", "RU"),
        ("going to Russia next month", None, "RU"),
        ("Я из Таджикистана, работаю в Москве", "TJ", "RU"),
        ("Rossiyada ishlash uchun nima kerak?", None, "RU"),
        ("Men O'zbekistondanman, Koreyaga ketmoqchiman", "UZ", "KR"),
        ("Кыргызстандан Орусияга кантип барам?", "KG", "RU"),
        ("Ман аз Тоҷикистон ҳастам, ба Русия рафтан мехоҳам", "TJ", "RU"),
        ("Ресейде жұмыс істеу үшін не керек?", None, "RU"),
        ("আমি বাংলাদেশ থেকে, রাশিয়ায় যেতে চাই", "BD", "RU"),
        ("main Pakistan se hoon, Saudia mein kaam karta hoon", "PK", "SA"),
        ("mujhe Dubai jana hai", None, "AE"),
        ("أنا من العراق وأعمل في الأردن", "IQ", "JO"),
        ("من از افغانستان هستم و در ایران کار می‌کنم", "AF", "IR"),
        ("Малайзияда иштесе болобу?", None, "MY"),
        ("கத்தாரில் வேலைக்கு என்ன ஆவணங்கள் தேவை?", None, "QA"),
        ("What is emigration clearance in Bangladesh?", "BD", None),
        ("How do I get the protector stamp in Pakistan before going to Saudi Arabia?", "PK", "SA"),
    ],
)
def test_countries_and_roles(fake_understander: nlu.Understander, text: str, origin: str | None,
                             destination: str | None) -> None:
    entities = fake_understander.understand(text).entities
    assert (entities.origin, entities.destination) == (origin, destination)


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("Rossiya", "RU"), ("Россия", "RU"), ("Русия", "RU"), ("Орусия", "RU"), ("রাশিয়া", "RU"),
        ("Saudia", "SA"), ("Dubai", "AE"), ("Малайзия", "MY"), ("сауд арабиясы", "SA"), ("قطر", "QA"),
    ],
)
def test_country_names_in_many_languages(fake_understander: nlu.Understander, text: str, code: str) -> None:
    entities = fake_understander.understand(f"{text}?").entities
    assert code in (entities.origin, entities.destination)


def test_no_country_in_ordinary_words(fake_understander: nlu.Understander) -> None:
    for text in ("Please help us", "I want to go back to my village", "روستای ما خیلی دور است"):
        entities = fake_understander.understand(text).entities
        assert (entities.origin, entities.destination) == (None, None)


@pytest.mark.parametrize(
    ("text", "stage"),
    [
        ("I want to go to Korea to work next year", "planning"),
        ("ami bidesh jete chai", "planning"),
        ("I came back home after three years in Malaysia", "returned"),
        ("Chet eldan qaytdim, endi nima qilay?", "returned"),
        ("I work in Dubai and my employer keeps my passport", "abroad"),
        ("Я сейчас работаю в Москве", "abroad"),
        ("How much does a patent cost?", None),
        ("Can I work in Russia without a patent?", None),
    ],
)
def test_stage(fake_understander: nlu.Understander, text: str, stage: str | None) -> None:
    assert fake_understander.understand(text).entities.stage == stage
