"""Write a Rasa 3.6 project from Hamroh's NLU training data.

Why generated, not committed: ``nlu/data/nlu.yml`` is the single source of truth for dialogue acts;
a committed copy of it in Rasa's layout would drift the first time someone adds an example. The
project is small and the build is deterministic (same input, byte-identical files), so it is written
on demand into ``build/rasa/`` (ignored by git) by ``hamroh rasa build`` / ``make rasa``, and the
trained model is cached by the fingerprint of exactly these files.

The pipeline uses no pretrained weights (no model hub on MRC premises): whitespace tokens, word
and character n-gram counts, DIET for the acts and a ResponseSelector for the crisis kinds
(Rasa's retrieval intents ``crisis/<kind>``, as in Hamroh's data). Rules send questions, small talk
and low-confidence messages to ``action_hamroh_answer`` and ``ask_human`` and crises to
``action_hamroh_handoff``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from .._data import TrainingExample, parse_rasa_nlu, read_data_text

__all__ = ["ACTION_ANSWER", "ACTION_HANDOFF", "RasaProject", "build_project", "pipeline_config", "write_nlu_yaml"]

ACTION_ANSWER: Final = "action_hamroh_answer"
ACTION_HANDOFF: Final = "action_hamroh_handoff"
#: Button payloads of Hamroh's clarify replies come back as ``/choose_entry{"hamroh_entry": "<id>"}``.
CHOOSE_ENTRY: Final = "choose_entry"
ENTRY_ENTITY: Final = "hamroh_entry"
LANG_SLOT: Final = "hamroh_lang"
_ANSWERED: Final = ("question", "greet", "thanks", "goodbye", CHOOSE_ENTRY, "nlu_fallback")
_HANDED_OFF: Final = ("ask_human", "crisis")
#: Files that determine the trained model (endpoints and credentials do not).
TRAINING_FILES: Final = ("config.yml", "domain.yml", "data/nlu.yml", "data/rules.yml")


@dataclass(frozen=True)
class RasaProject:
    """A written project: its directory and the fingerprint of the files training depends on."""

    directory: Path
    fingerprint: str
    intents: tuple[str, ...]
    examples: int


def pipeline_config(*, epochs: int = 40, retrieval_intents: Sequence[str] = (), fallback_threshold: float | None = 0.4,
                    policies: bool = True, max_features: int | None = None) -> dict[str, Any]:
    """Rasa's ``config.yml``: sparse features only, modest epochs (minutes on two CPU cores)."""
    pipeline: list[dict[str, Any]] = [
        {"name": "WhitespaceTokenizer"},
        {"name": "CountVectorsFeaturizer"},
        # character n-grams carry the languages whitespace does not split well (Bengali, Sinhala,
        # Tamil agglutination, Russian and Uzbek endings) and survive typos and transliteration
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 2, "max_ngram": 4,
         **({"max_features": max_features} if max_features else {})},
        # no transformer layers: intents of short chat messages are separable from n-gram features
        # alone, and training stays at a minute or two on two CPU cores instead of ten
        {"name": "DIETClassifier", "epochs": epochs, "entity_recognition": False, "constrain_similarities": True,
         "number_of_transformer_layers": 0, "random_seed": 1},
    ]
    for intent in retrieval_intents:
        pipeline.append({"name": "ResponseSelector", "epochs": epochs, "retrieval_intent": intent,
                         "constrain_similarities": True, "random_seed": 1})
    if fallback_threshold is not None:
        pipeline.append({"name": "FallbackClassifier", "threshold": fallback_threshold})
    config: dict[str, Any] = {"recipe": "default.v1", "language": "xx", "assistant_id": "hamroh",
                              "pipeline": pipeline}
    config["policies"] = [{"name": "RulePolicy"}] if policies else []
    return config


def _dump(data: Any) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=1000)


def write_nlu_yaml(blocks: Mapping[str, Iterable[str]]) -> str:
    """Rasa NLU YAML with one ``examples: |`` block per intent (``name`` or ``name/sub``)."""
    lines = ['version: "3.1"', "nlu:"]
    for intent, examples in blocks.items():
        lines.append(f"- intent: {intent}")
        lines.append("  examples: |")
        lines.extend(f"    - {text}" for text in examples)
    return "\n".join(lines) + "\n"


def _blocks(examples: Sequence[TrainingExample]) -> dict[str, list[str]]:
    """Examples per Rasa intent, deduplicated; a text claimed by two intents keeps its first one."""
    blocks: dict[str, list[str]] = {}
    seen: set[str] = set()
    for ex in examples:
        text = " ".join(ex.text.split())
        key = text.casefold()
        if not text or key in seen:
            continue
        seen.add(key)
        name = f"{ex.intent}/{ex.sub}" if ex.sub else ex.intent
        blocks.setdefault(name, []).append(text)
    return dict(sorted(blocks.items()))


def _domain(intents: Sequence[str], retrieval: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    responses = {f"utter_{intent}/{sub}": [{"text": f"{intent}/{sub}"}]
                 for intent, subs in retrieval.items() for sub in subs}
    return {
        "version": "3.1",
        "intents": list(intents),
        "entities": [ENTRY_ENTITY],
        "slots": {
            ENTRY_ENTITY: {"type": "text", "influence_conversation": False,
                           "mappings": [{"type": "from_entity", "entity": ENTRY_ENTITY}]},
            LANG_SLOT: {"type": "text", "influence_conversation": False, "mappings": [{"type": "custom"}]},
        },
        # Placeholders required by Rasa for retrieval intents; never sent (the action answers).
        "responses": responses,
        "actions": [ACTION_ANSWER, ACTION_HANDOFF],
        "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    }


def _rules() -> dict[str, Any]:
    rules = [{"rule": f"{intent} -> {ACTION_ANSWER}", "steps": [{"intent": intent}, {"action": ACTION_ANSWER}]}
             for intent in _ANSWERED]
    rules += [{"rule": f"{intent} -> {ACTION_HANDOFF}", "steps": [{"intent": intent}, {"action": ACTION_HANDOFF}]}
              for intent in _HANDED_OFF]
    return {"version": "3.1", "rules": rules}


def endpoints_yaml(action_url: str) -> str:
    return _dump({"action_endpoint": {"url": action_url}})


def credentials_yaml() -> str:
    return _dump({"rest": None})


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def fingerprint(directory: Path, files: Sequence[str] = TRAINING_FILES) -> str:
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (directory / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def build_project(out: Path, *, nlu_text: str | None = None, source: str = "nlu/data/nlu.yml", epochs: int = 40,
                  action_url: str = "http://127.0.0.1:5055/webhook") -> RasaProject:
    """Write the project into ``out`` (created); files whose content is unchanged are not touched."""
    text = nlu_text if nlu_text is not None else read_data_text("nlu.yml")
    examples = parse_rasa_nlu(text, source=source)
    blocks = _blocks(examples)
    retrieval: dict[str, list[str]] = {}
    for name in blocks:
        intent, _, sub = name.partition("/")
        if sub:
            retrieval.setdefault(intent, []).append(sub)
    intents = sorted({name.partition("/")[0] for name in blocks} | set(_ANSWERED[:-1]) | set(_HANDED_OFF))
    _write(out / "config.yml", _dump(pipeline_config(epochs=epochs, retrieval_intents=sorted(retrieval))))
    _write(out / "domain.yml", _dump(_domain(intents, retrieval)))
    _write(out / "data/nlu.yml", write_nlu_yaml(blocks))
    _write(out / "data/rules.yml", _dump(_rules()))
    _write(out / "endpoints.yml", endpoints_yaml(action_url))
    _write(out / "credentials.yml", credentials_yaml())
    return RasaProject(out, fingerprint(out), tuple(intents), sum(len(v) for v in blocks.values()))
