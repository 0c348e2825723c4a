"""The one language registry: what a browser sends maps to the language a person reads."""

from __future__ import annotations

import typing

import pytest

import languages
import nlu
from knowledge_base import LANGUAGES as KB_LANGUAGES
from nlu import Script

pytestmark = pytest.mark.unit


def test_every_package_reads_the_same_list_in_the_content_specs_order() -> None:
    assert languages.LANGUAGES == nlu.LANGUAGES == KB_LANGUAGES
    assert languages.LANGUAGES[0] == "en" and len(languages.LANGUAGES) == 14


@pytest.mark.parametrize(("tag", "code"), [
    ("fa", "prs"), ("fa-AF", "prs"), ("ku", "ckb"), ("ckb-IQ", "ckb"), ("ru-RU", "ru"), ("UZ", "uz"),
    ("uz_Cyrl", "uz"), ("de", None), ("", None), (None, None),
])
def test_a_devices_language_tag_becomes_the_projects_code(tag: str | None, code: str | None) -> None:
    assert languages.canonical(tag) == code


def test_right_to_left_exactly_for_the_arabic_script_languages() -> None:
    rtl = {code for code in languages.LANGUAGES if languages.is_rtl(code)}
    assert rtl == {code for code, row in languages.REGISTRY.items() if "Arab" in row.scripts}
    assert not languages.is_rtl("xx")


def test_scripts_are_ones_the_understanding_knows() -> None:
    known = set(typing.get_args(Script))
    for row in languages.REGISTRY.values():
        assert row.scripts and set(row.scripts) <= known, row.code
    assert languages.sole_language_of_script() == {"Beng": "bn", "Sinh": "si", "Taml": "ta"}


def test_an_unknown_code_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="use one of en, ru"):
        languages.get("fa")
    assert languages.get("prs").name == "دری"
