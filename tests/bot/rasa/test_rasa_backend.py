"""The Rasa understanding backend and the generated Rasa project, without a Rasa server."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import pytest
import yaml

from bot.rasa import RasaUnderstander, parse_rasa_result
from bot.settings import RasaConfig
from nlu import LanguageHint, Understanding
from nlu.rasa import build_project

pytestmark = pytest.mark.unit


class FakeBuiltin:
    def __init__(self, act: str = "question", kind: str | None = None) -> None:
        self.act, self.kind, self.calls = act, kind, 0

    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        self.calls += 1
        return Understanding(lang="ru", script="Cyrl", act=self.act, crisis_kind=self.kind,  # type: ignore[arg-type]
                             confidence=0.9, lang_confident=True)


def _rasa(body: dict | None, counter: list[int] | None = None) -> httpx.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        if counter is not None:
            counter.append(1)
        if body is None:
            raise httpx.ConnectError("refused", request=request)
        assert request.url.path == "/model/parse"
        return httpx.Response(200, json=body)

    return httpx.Client(transport=httpx.MockTransport(handler))


def _parse(intent: str, confidence: float, key: str | None = None) -> dict:
    body: dict = {"text": "x", "intent": {"name": intent, "confidence": confidence}}
    if key:
        body["response_selector"] = {"crisis": {"response": {"intent_response_key": key, "confidence": 0.9}}}
    return body


def test_rasa_decides_the_act_and_the_builtin_keeps_language() -> None:
    u = RasaUnderstander(FakeBuiltin(), RasaConfig(), client=_rasa(_parse("ask_human", 0.93))).understand("позовите")
    assert (u.act, u.lang, u.confidence) == ("ask_human", "ru", 0.93)


def test_a_crisis_kind_comes_from_the_response_selector() -> None:
    body = _parse("crisis", 0.8, "crisis/locked_in")
    u = RasaUnderstander(FakeBuiltin(), RasaConfig(), client=_rasa(body)).understand("они заперли меня")
    assert (u.act, u.crisis_kind) == ("crisis", "locked_in")


@pytest.mark.parametrize("intent,confidence", [("nlu_fallback", 0.9), ("book_flight", 0.99), ("greet", 0.3)])
def test_unsure_or_foreign_intents_become_questions(intent: str, confidence: float) -> None:
    assert parse_rasa_result(_parse(intent, confidence), 0.5).act == "question"


def test_rasa_cannot_talk_the_builtin_crisis_triage_out_of_a_crisis() -> None:
    builtin = FakeBuiltin("crisis", "violence")
    u = RasaUnderstander(builtin, RasaConfig(), client=_rasa(_parse("greet", 0.99))).understand("he beats me")
    assert (u.act, u.crisis_kind) == ("crisis", "violence")


def test_unreachable_rasa_falls_back_to_builtin_logs_and_backs_off(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []
    understander = RasaUnderstander(FakeBuiltin("greet"), RasaConfig(url="http://127.0.0.1:9"),
                                    client=_rasa(None, calls))
    with caplog.at_level(logging.WARNING, logger="hamroh.nlu.rasa"):
        first = understander.understand("salom")
        second = understander.understand("salom")
    assert first.act == second.act == "greet"
    assert len(calls) == 1, "a dead Rasa is not asked again for every message"
    assert "built-in understanding" in caplog.text and "salom" not in caplog.text


def test_real_unreachable_port_falls_back_quickly() -> None:
    from bot.rasa import free_port

    understander = RasaUnderstander(FakeBuiltin("thanks"), RasaConfig(url=f"http://127.0.0.1:{free_port()}"))
    assert understander.understand("rahmat").act == "thanks"


NLU = '''version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - salom
- intent: question
  examples: |
    - how do I get a [patent](doc) in Russia?
    - hello
- intent: ask_human
  examples: |
    - talk to a person
- intent: crisis/locked_in
  examples: |
    - they locked me in
'''


def test_project_is_generated_from_nlu_data_deterministically(tmp_path: Path) -> None:
    a = build_project(tmp_path / "a", nlu_text=NLU)
    b = build_project(tmp_path / "b", nlu_text=NLU)
    assert a.fingerprint == b.fingerprint
    nlu = yaml.safe_load((tmp_path / "a/data/nlu.yml").read_text())
    blocks = {b["intent"]: b["examples"] for b in nlu["nlu"]}
    assert "how do I get a patent in Russia?" in blocks["question"]  # annotations reduced to text
    assert "hello" not in blocks["question"], "a text claimed by two intents keeps its first"
    rules = {r["steps"][0]["intent"]: r["steps"][1]["action"]
             for r in yaml.safe_load((tmp_path / "a/data/rules.yml").read_text())["rules"]}
    assert rules["question"] == rules["nlu_fallback"] == "action_hamroh_answer"
    assert rules["ask_human"] == rules["crisis"] == "action_hamroh_handoff"
    domain = yaml.safe_load((tmp_path / "a/domain.yml").read_text())
    assert "utter_crisis/locked_in" in domain["responses"]
    assert {"action_hamroh_answer", "action_hamroh_handoff"} <= set(domain["actions"])


def test_the_shipped_nlu_data_generates_a_project(tmp_path: Path) -> None:
    project = build_project(tmp_path)
    assert {"greet", "thanks", "goodbye", "ask_human", "question", "crisis"} <= set(project.intents)
    assert project.examples > 100
