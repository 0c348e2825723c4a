"""End-to-end behaviour with the real multilingual embedder (skipped when the model is not built)."""

from __future__ import annotations

from pathlib import Path

import pytest

import nlu

from .conftest import HELDOUT, SHARED_EVAL

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    ("text", "lang", "act", "kind"),
    [
        ("I was beaten, help", "en", "crisis", "violence"),
        ("Мени бир бөлмөгө камап коюшту, эшикти ачпай жатышат", "ky", "crisis", "locked_in"),
        ("Мне очень плохо, не вижу смысла жить дальше", "ru", "crisis", "self_harm"),
        ("what are signs of trafficking", "en", "question", None),
        ("What rights does a migrant have if the police stop him?", "en", "question", None),
        ("My salary is late again this month", "en", "question", None),
        ("Как продлить патент, если я сменил работу?", "ru", "question", None),
        ("Ish beruvchi maoshni bermayapti, qayerga shikoyat qilsam bo'ladi?", "uz", "question", None),
        ("Hello, how do I check an entry ban?", "en", "question", None),
        ("Good day to you", "en", "greet", None),
    ],
)
def test_understands_messages(understander: nlu.Understander, text: str, lang: str, act: str,
                              kind: str | None) -> None:
    result = understander.understand(text)
    assert (result.lang, result.act, result.crisis_kind) == (lang, act, kind)


@pytest.mark.parametrize(
    "text",
    [
        # No lexicon pattern covers these: the embedder's nearest examples must catch them.
        "nobody gives us food and the gate is chained, we are 20 women inside",
        "Мені ешқайда жібермейді, құжаттарымды алып қойды",
        "Маро ба кор маҷбур мекунанд ва пул намедиҳанд",
    ],
)
def test_embedder_catches_paraphrased_danger(understander: nlu.Understander, text: str) -> None:
    assert understander.understand(text).act == "crisis"


def _check_targets(report: dict, *, min_lang: float, min_per_lang: float) -> None:  # type: ignore[type-arg]
    language = report["language"]
    assert language["accuracy"] >= min_lang, language
    weak = {k: v for k, v in language["per_language"].items() if v["n"] >= 3 and v["accuracy"] < min_per_lang}
    assert not weak, weak
    acts = report.get("acts")
    if acts:
        assert acts["crisis_recall"] == 1.0, acts
        assert acts["false_crisis_rate"] <= 0.05, acts
        assert acts["accuracy"] >= 0.90, acts


def test_heldout_targets(understander: nlu.Understander) -> None:
    _check_targets(nlu.evaluate_file(HELDOUT, understander), min_lang=0.95, min_per_lang=0.85)


@pytest.mark.parametrize("name", ["dialogue-acts-dev.yaml", "retrieval-dev.yaml"])
def test_dev_set_targets(understander: nlu.Understander, name: str) -> None:
    path = Path(SHARED_EVAL) / name
    if not path.exists():
        pytest.skip(f"shared evaluation file not found at {path}")
    _check_targets(nlu.evaluate_file(path, understander), min_lang=0.95, min_per_lang=0.85)


def test_understander_satisfies_the_engine_port(understander: nlu.Understander) -> None:
    result = nlu.understand("Assalomu alaykum", nlu.LanguageHint(chosen="uz"), understander=understander)
    assert (result.lang, result.script, result.act) == ("uz", "Latn", "greet")
