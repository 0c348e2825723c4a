"""knowledge_base/topics.yml must stay in step with the shared content specification."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from knowledge_base import load_topics

pytestmark = pytest.mark.unit
SHARED = Path(__file__).resolve().parents[3] / "shared"
SPEC = SHARED / "content-spec.md"
#: the second release's topics extend the first spec's
SPECS = (SPEC, SHARED / "content-spec-next.md")
GROUPS = {"CA": ["en", "ru", "uz", "ky", "tg"], "SA": ["en", "bn", "ur", "si", "ta"], "IQ": ["en", "ar", "ckb"],
          "AF": ["en", "ps", "prs"]}


@pytest.mark.skipif(not SPEC.exists(), reason="../shared/content-spec.md is not beside the repository")
def test_topics_and_languages_match_the_spec() -> None:
    groups = dict(GROUPS)
    groups["ALL"] = list(dict.fromkeys(lang for g in GROUPS.values() for lang in g))
    expected: dict[str, set[str]] = {}
    text = "\n".join(p.read_text() for p in SPECS if p.exists())
    for m in re.finditer(r"^\| ([a-z0-9-]+) \| .+? \| ([^|]+) \|$", text, re.M):
        if m.group(1) == "topic":
            continue
        langs: set[str] = set()
        for part in re.split(r"\s*[+,]\s*", m.group(2).strip()):
            langs.update(groups.get(part, [part]))
        expected[m.group(1)] = langs
    actual = {tid: set(t.languages) for tid, t in load_topics().items()}
    assert actual == expected
