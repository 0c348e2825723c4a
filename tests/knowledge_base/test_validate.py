"""An editor's mistakes in entry files are reported with file, field and fix; nothing crashes."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest
import yaml

from knowledge_base import load_entries, load_topics

pytestmark = pytest.mark.unit

TODAY = dt.date.today()


def _entry(**over: object) -> dict:
    body = {
        "id": "passport-retention-test",
        "topic": "bd-emigration-clearance",
        "status": "published",
        "origin": ["BD"],
        "destination": [],
        "stage": "pre-departure",
        "reviewed_on": (TODAY - dt.timedelta(days=10)).isoformat(),
        "review_by": (TODAY + dt.timedelta(days=100)).isoformat(),
        "safety": "normal",
        "sources": [{"title": "Bureau of Manpower, Employment and Training: emigration clearance",
                     "url": "https://www.bmet.gov.bd/site/page/emigration-clearance"}],
        "translations": {
            lang: {"title": "Emigration clearance", "answer": "Register with BMET before you leave. " * 3,
                   "questions": ["how to get smart card", "bmet clearance", "what is emigration clearance",
                                 "do i need bmet card"]}
            for lang in ("en", "bn")
        },
    }
    body.update(over)
    return body


def _write(tmp: Path, name: str, data: object) -> Path:
    path = tmp / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def _messages(tmp: Path) -> list[str]:
    return [str(p) for p in load_entries(tmp).errors]


def test_a_valid_entry_loads_without_problems(tmp_path: Path) -> None:
    _write(tmp_path, "passport-retention-test.yml", _entry())
    report = load_entries(tmp_path)
    assert [e.id for e in report.published] == ["passport-retention-test"]
    assert report.problems == []


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        ({"topic": "visa-to-mars"}, "topic", "unknown topic"),
        ({"reviewed_on": "22/11/2026"}, "reviewed_on", "YYYY-MM-DD"),
        ({"review_by": (TODAY - dt.timedelta(days=30)).isoformat()}, "review_by", "not after reviewed_on"),
        ({"status": "live"}, "status", "allowed values"),
        ({"origin": ["Bangladesh"]}, "origin", "ISO 3166"),
        ({"sources": []}, "sources", "at least one"),
        ({"sources": [{"title": "BMET", "url": "bmet.gov.bd"}]}, "sources.0.url", "https://"),
        ({"colour": "blue"}, "colour", "spelling"),
    ],
)
def test_each_malformed_field_is_named_with_a_fix(tmp_path: Path, change: dict, field: str, words: str) -> None:
    _write(tmp_path, "passport-retention-test.yml", _entry(**change))
    problems = load_entries(tmp_path).errors
    assert problems, "a malformed entry must be reported"
    assert any(p.field == field and (words in p.message or words in p.fix) for p in problems), problems
    assert all(p.file.endswith("passport-retention-test.yml") for p in problems)


def test_missing_required_language_is_reported(tmp_path: Path) -> None:
    data = _entry()
    del data["translations"]["bn"]
    _write(tmp_path, "passport-retention-test.yml", data)
    (problem,) = load_entries(tmp_path).errors
    assert problem.field == "translations" and "bn" in problem.message


def test_answer_longer_than_a_telegram_message_is_refused(tmp_path: Path) -> None:
    data = _entry()
    data["translations"]["en"]["answer"] = "x" * 3600
    _write(tmp_path, "passport-retention-test.yml", data)
    problems = load_entries(tmp_path).errors
    assert any(p.field == "translations.en.answer" and "3500" in p.message for p in problems)


def test_duplicate_ids_and_file_name_mismatch(tmp_path: Path) -> None:
    _write(tmp_path, "passport-retention-test.yml", _entry())
    _write(tmp_path, "other.yml", _entry())
    messages = _messages(tmp_path)
    assert any("duplicate id" in m for m in messages)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    _write(tmp_path, "broken.yml", textwrap.dedent("""\
        id: broken
        topic: ru-patent
          status: published
        """))
    (problem,) = load_entries(tmp_path).errors
    assert "malformed YAML" in problem.message and problem.field.startswith("line ")


def test_non_mapping_and_binary_files_are_reported(tmp_path: Path) -> None:
    _write(tmp_path, "list.yml", "- just\n- a list\n")
    (tmp_path / "junk.yml").write_bytes(b"\xff\xfe\x00\x81binary")
    messages = _messages(tmp_path)
    assert any("mapping" in m for m in messages) and any("UTF-8" in m for m in messages)


def test_expired_entries_are_warned_not_served_silently(tmp_path: Path) -> None:
    data = _entry(reviewed_on="2024-01-01", review_by="2024-06-01")
    _write(tmp_path, "passport-retention-test.yml", data)
    report = load_entries(tmp_path)
    assert not report.errors
    assert any(p.severity == "warning" and p.field == "review_by" for p in report.problems)


def test_the_topic_contract_lists_every_spec_topic() -> None:
    topics = load_topics()
    assert len(topics) == 50  # content-spec.md and content-spec-next.md
    assert topics["kz-work-rules"].languages[-1] == "kk"
    assert set(topics["bd-emigration-clearance"].languages) == {"en", "bn"}


def test_a_bare_homepage_source_is_an_error_naming_the_fix(tmp_path: Path) -> None:
    bad = _entry(sources=[{"title": "Ministry of Internal Affairs of Russia", "url": "https://xn--b1aew.xn--p1ai/"}])
    _write(tmp_path, "passport-retention-test.yml", bad)
    (problem,) = load_entries(tmp_path).errors
    assert problem.field == "sources.0.url" and "bare homepage" in problem.message and "general: true" in problem.fix


def test_a_portal_named_as_general_is_accepted_but_backs_no_deadline(tmp_path: Path) -> None:
    portal = [{"title": "Gosuslugi", "url": "https://www.gosuslugi.ru/", "general": True}]
    _write(tmp_path, "passport-retention-test.yml", _entry(sources=portal))
    assert load_entries(tmp_path).errors == []
    body = _entry(sources=portal)
    body["translations"]["en"]["answer"] = "Register within 7 working days of arrival, or you will be fined. " * 2
    _write(tmp_path, "passport-retention-test.yml", body)
    (problem,) = load_entries(tmp_path).errors
    assert problem.field == "translations.en.answer" and "7 working days" in problem.message


def test_a_translation_checked_against_an_older_english_text_needs_re_review(tmp_path: Path) -> None:
    from knowledge_base import english_revision

    body = _entry()
    body["translations"]["bn"]["source_version"] = "0" * 8
    _write(tmp_path, "passport-retention-test.yml", body)
    (entry,) = load_entries(tmp_path).entries
    assert entry.stale_translations() == ["bn"]
    body["translations"]["bn"]["source_version"] = english_revision(entry)
    _write(tmp_path, "passport-retention-test.yml", body)
    (entry,) = load_entries(tmp_path).entries
    assert entry.stale_translations() == []
