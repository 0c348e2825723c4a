"""The training data and lexicons: valid Rasa format, every language covered, no evaluation items."""

from __future__ import annotations

from collections import defaultdict

import pytest
import yaml

import nlu
from nlu._acts import load_training_examples
from nlu._data import read_data_text

from .conftest import HELDOUT, SHARED_EVAL

pytestmark = pytest.mark.unit


def test_training_data_is_rasa_nlu_3_1() -> None:
    raw = yaml.safe_load(read_data_text("nlu.yml"))
    assert raw["version"] == "3.1"
    assert all(set(block) == {"intent", "examples"} for block in raw["nlu"])
    intents = {block["intent"].split("/")[0] for block in raw["nlu"]}
    assert intents == set(nlu.ACTS) - set(nlu.RULE_ONLY_ACTS)  # "menu" is a closed phrase list
    kinds = {block["intent"].split("/")[1] for block in raw["nlu"] if block["intent"].startswith("crisis/")}
    assert kinds == set(nlu.CRISIS_KINDS)


def test_rasa_parser_rejects_bad_files() -> None:
    with pytest.raises(nlu.NluDataError, match="version"):
        nlu.parse_rasa_nlu('version: "2.0"\nnlu: []\n')
    with pytest.raises(nlu.NluDataError, match="- "):
        nlu.parse_rasa_nlu('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    hello\n')
    parsed = nlu.parse_rasa_nlu(
        'version: "3.1"\nnlu:\n- intent: question\n  examples: |\n    - work in [Russia](country)?\n'
    )
    assert parsed == [nlu.TrainingExample("work in Russia?", "question")]


def test_every_act_has_examples_in_every_language() -> None:
    ident = nlu.LanguageIdentifier()
    seen: dict[str, set[str]] = defaultdict(set)
    for ex in load_training_examples():
        decision = ident.identify(ex.text)
        seen[ex.intent].add(decision.lang)
        if decision.script == "Latn" and decision.lang in ("ru", "ur", "bn"):
            seen[ex.intent].add(f"{decision.lang}-Latn")
    for act in set(nlu.ACTS) - set(nlu.RULE_ONLY_ACTS):
        missing = set(nlu.LANGUAGES) - seen[act]
        assert not missing, f"{act}: no examples detected as {sorted(missing)}"
    assert {"ru-Latn", "ur-Latn", "bn-Latn"} <= seen["crisis"]


def _eval_texts() -> set[str]:
    texts = {item["text"].strip().lower() for item in yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))}
    for path in sorted(SHARED_EVAL.glob("*.yaml")):
        texts |= {item["text"].strip().lower() for item in yaml.safe_load(path.read_text(encoding="utf-8"))}
    return texts


def test_training_data_holds_no_evaluation_item() -> None:
    evaluation = _eval_texts()
    leaked = [ex.text for ex in load_training_examples() if ex.text.strip().lower() in evaluation]
    assert not leaked


def test_heldout_set_covers_what_it_claims() -> None:
    items = yaml.safe_load(HELDOUT.read_text(encoding="utf-8"))
    assert len(items) >= 150
    assert {item["lang"] for item in items} == set(nlu.LANGUAGES)
    assert {item["expect"] for item in items} == set(nlu.ACTS) - set(nlu.RULE_ONLY_ACTS)
    assert sum(item["expect"] == "crisis" for item in items) >= 40
