"""The evaluation report behind ``hamroh nlu eval``."""

from __future__ import annotations

from pathlib import Path

import pytest

import nlu

pytestmark = pytest.mark.unit


def test_report_shape_and_figures(fake_understander: nlu.Understander, tmp_path: Path) -> None:
    path = tmp_path / "acts.yaml"
    path.write_text(
        "- {text: 'They locked me in the house, help', lang: en, expect: crisis}\n"
        "- {text: 'Меня избили на работе', lang: ru, expect: crisis}\n"
        "- {text: 'hello', lang: en, expect: greet}\n"
        "- {text: 'Спасибо', lang: ru, expect: thanks}\n"
        "- {text: 'What are the signs of trafficking?', lang: en, expect: question}\n",
        encoding="utf-8",
    )
    report = nlu.evaluate_file(path, fake_understander)
    assert report["language"]["accuracy"] == 1.0
    assert report["language"]["per_language"] == {"en": {"n": 3, "accuracy": 1.0}, "ru": {"n": 2, "accuracy": 1.0}}
    acts = report["acts"]
    assert (acts["n"], acts["crisis_recall"], acts["false_crisis_rate"], acts["accuracy"]) == (5, 1.0, 0.0, 1.0)
    table = nlu.format_report(report)
    assert "crisis recall" in table and "ru" in table


def test_files_without_expect_have_no_act_figures(fake_understander: nlu.Understander, tmp_path: Path) -> None:
    path = tmp_path / "retrieval.yaml"
    path.write_text("- {text: 'How do I get a patent?', lang: en, topic: ru-patent}\n", encoding="utf-8")
    report = nlu.evaluate_file(path, fake_understander)
    assert "acts" not in report
    assert "Dialogue acts" not in nlu.format_report(report)


def test_mistakes_are_listed_on_request(fake_understander: nlu.Understander, tmp_path: Path) -> None:
    path = tmp_path / "wrong.yaml"
    path.write_text("- {text: 'Where is the embassy?', lang: ru, expect: greet}\n", encoding="utf-8")
    report = nlu.evaluate_file(path, fake_understander, details=True)
    assert report["language"]["accuracy"] == 0.0
    assert {m["field"] for m in report["mistakes"]} == {"lang", "act"}
    assert "expected ru, got en" in nlu.format_report(report)


def test_bad_file_names_the_problem(fake_understander: nlu.Understander, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("- {lang: en}\n", encoding="utf-8")
    with pytest.raises(nlu.NluDataError, match="needs 'text' and 'lang'"):
        nlu.evaluate_file(path, fake_understander)
