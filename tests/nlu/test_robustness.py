"""Odd input never breaks the dialogue engine: every message gets a sensible Understanding."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import nlu

from .conftest import BrokenEmbedder, HashingEmbedder

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   \n\t ",
        "😀😀😀",
        "🙂👍",
        "1234567 +998 90 123 45 67",
        "?!...",
        "\x00\x01\x02\ufffe\x7f",
        "\ud800 broken surrogate",
        "Привет hello سلام হ্যালো வணக்கம் 你好",
        "http://example.com/?q=%00%ff",
        "ÿØÿà\x00\x10JFIF\x00\x01\x01\x00",
        "a" * 10_000,
        "помогите " * 2_000,
        "日本語のメッセージです",
        "नमस्ते, मुझे मदद चाहिए",
    ],
)
def test_never_raises_and_returns_a_valid_understanding(fake_understander: nlu.Understander, text: str) -> None:
    result = fake_understander.understand(text, nlu.LanguageHint(chosen="uz", current="ru"))
    assert result.lang in nlu.LANGUAGES
    assert result.act in nlu.ACTS
    assert 0.0 <= result.confidence <= 1.0
    assert (result.crisis_kind is None) == (result.act != "crisis")


def test_non_string_input_does_not_raise(fake_understander: nlu.Understander) -> None:
    for junk in (None, b"\xff\xfe\x00binary", 42):
        result = fake_understander.understand(junk)  # type: ignore[arg-type]
        assert result.act in nlu.ACTS


def test_empty_message_keeps_the_conversation_language(fake_understander: nlu.Understander) -> None:
    result = fake_understander.understand("", nlu.LanguageHint(chosen="tg", current="tg"))
    assert (result.lang, result.lang_source, result.lang_confident) == ("tg", "history", False)
    assert result.confidence == 0.0


def test_long_message_with_danger_at_the_start_is_a_crisis(fake_understander: nlu.Understander) -> None:
    text = "They locked me in the house. " + "I do not know what to do. " * 400
    assert fake_understander.understand(text).act == "crisis"


def test_embedder_failure_falls_back_to_rules() -> None:
    understander = nlu.Understander(BrokenEmbedder())
    assert understander.understand("Меня избили, помогите").act == "crisis"
    assert understander.understand("Спасибо").act == "thanks"
    result = understander.understand("How do I renew my patent?")
    assert result.act == "question"


def test_rules_settle_social_messages_without_embedding() -> None:
    embedder = HashingEmbedder()
    understander = nlu.Understander(embedder)
    understander.understand("Assalomu alaykum")
    understander.understand("they beat me every day")
    assert embedder.calls == 0


def test_import_loads_no_model_or_heavy_library() -> None:
    code = (
        "import sys, nlu; u = nlu.Understander(object()); "
        "heavy = [m for m in ('lingua', 'torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == ""
