"""Spelling variants of one word must meet in the lexical index."""

from __future__ import annotations

import pytest

from knowledge_base import lexical_tokens

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("патент олиш", "patent olish"),  # Uzbek Cyrillic vs Latin
        ("регистрация", "registraciya"),  # Russian typed in Latin letters
        ("регистрация", "registratsiya"),
        ("ҳужжатлар", "hujjatlar"),  # Uzbek Cyrillic ҳ
        ("Россия", "Rossiya"),
        ("قاچاق", "قاچاق"),
        ("كيف", "کیف"),  # Arabic vs Persian letter forms
    ],
)
def test_variants_share_tokens(a: str, b: str) -> None:
    assert lexical_tokens(a) == lexical_tokens(b)


def test_tokens_ignore_punctuation_and_keep_bengali_words_whole() -> None:
    assert lexical_tokens("বিদেশে যাওয়ার আগে?!") == lexical_tokens("বিদেশে যাওয়ার আগে")
    assert len(lexical_tokens("বিদেশে যাওয়ার আগে")) == 3
