"""Loading of the package's data files (``nlu/data``) and of Rasa NLU training data.

Data files are read with :mod:`importlib.resources` so that an installed wheel works the same as the
source tree. Every loader validates what it reads and raises :class:`NluDataError` naming the file
and the problem, because a typo in a lexicon must fail at start-up, not silently weaken triage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

import yaml

__all__ = ["NluDataError", "TrainingExample", "load_data_file", "parse_rasa_nlu", "read_data_text"]

_PACKAGE: Final = "nlu"


class NluDataError(ValueError):
    """A data file of ``nlu`` (or a Rasa file given to it) is missing or malformed."""


@dataclass(frozen=True, slots=True)
class TrainingExample:
    """One example of a Rasa intent. ``sub`` is the part after ``/`` (``crisis/violence``)."""

    text: str
    intent: str
    sub: str | None = None


def read_data_text(name: str) -> str:
    """The text of ``nlu/data/<name>``."""
    try:
        return resources.files(_PACKAGE).joinpath("data", name).read_text(encoding="utf-8")
    except (FileNotFoundError, OSError) as exc:  # pragma: no cover - broken install
        raise NluDataError(f"nlu/data/{name}: cannot be read ({exc})") from exc


def load_data_file(name: str) -> dict[str, Any]:
    """Parse ``nlu/data/<name>`` as a YAML mapping."""
    try:
        data = yaml.safe_load(read_data_text(name))
    except yaml.YAMLError as exc:
        raise NluDataError(f"nlu/data/{name}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise NluDataError(f"nlu/data/{name}: expected a mapping at the top level")
    return data


_EXAMPLE_LINE: Final = re.compile(r"^\s*-\s+(.*\S)\s*$")


def parse_rasa_nlu(text: str, *, source: str | Path = "nlu.yml") -> list[TrainingExample]:
    """Read Rasa 3 NLU YAML (``version`` + ``nlu:`` list of ``intent``/``examples``) into examples.

    Only the parts Hamroh uses are supported: intents (with Rasa's ``name/sub`` retrieval-intent
    form, used for crisis kinds) and ``examples: |`` blocks of ``- text`` lines. Entity annotations
    (``[Russia](country)``) are reduced to their text so a file written for Rasa still loads.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise NluDataError(f"{source}: invalid YAML: {exc}") from exc
    if not isinstance(data, Mapping) or not isinstance(data.get("nlu"), list):
        raise NluDataError(f"{source}: expected a mapping with an 'nlu:' list (Rasa NLU format)")
    if str(data.get("version", "")) != "3.1":
        raise NluDataError(f"{source}: expected version \"3.1\", got {data.get('version')!r}")
    examples: list[TrainingExample] = []
    for i, block in enumerate(data["nlu"]):
        if not isinstance(block, Mapping) or "intent" not in block:
            continue  # synonyms, regexes and lookups are Rasa features we do not use
        name = str(block["intent"]).strip()
        intent, _, sub = name.partition("/")
        raw = block.get("examples")
        if not isinstance(raw, str):
            raise NluDataError(f"{source}: nlu[{i}] ({name}): 'examples' must be a '|' block")
        for line in raw.splitlines():
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            match = _EXAMPLE_LINE.match(line)
            if match is None:
                raise NluDataError(f"{source}: nlu[{i}] ({name}): example line must start with '- ': {line!r}")
            example = re.sub(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}", r"\1\2", match.group(1))
            examples.append(TrainingExample(example, intent, sub or None))
    if not examples:
        raise NluDataError(f"{source}: no intent examples found")
    return examples
