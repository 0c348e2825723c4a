"""Real Rasa 3.6 and the real action server, end to end, against a running Hamroh.

Rasa needs Python < 3.11, so it runs from its own environment (built once per machine into
``~/.cache/hamroh``; a few minutes on a cold cache) with a model trained from ``nlu/data/nlu.yml``
(cached by the project's fingerprint). Where no Python 3.10 exists the module skips, saying so.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from bot.app import create_app
from bot.net import free_port
from bot.rasa import RasaUnderstander, ensure_env, find_python, run_servers, train
from bot.settings import RasaConfig, load_settings
from nlu import LanguageHint, Understanding
from nlu.rasa import build_project
from storage.scratch import copy_sqlite
from tests.bot.rasa._db import stored_tickets

pytestmark = [pytest.mark.rasa, pytest.mark.integration, pytest.mark.slow]

TOKEN = "rasa-integration-token"


class _HamrohServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # runs in a thread: leave signals to pytest
        pass


@pytest.fixture(scope="module")
def rasa_python() -> Path:
    python = find_python()
    if python is None:
        pytest.skip("Python 3.10 not found (Rasa 3.6 needs Python < 3.11): install python3.10 or set "
                    "HAMROH_RASA_PYTHON")
    return python


@pytest.fixture(scope="module")
def stack(rasa_python: Path, repo_root: Path, kb, sqlite_template_db: Path,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    tmp = tmp_path_factory.mktemp("rasa")
    started = time.monotonic()
    env = ensure_env(rasa_python)
    project = build_project(tmp / "project")
    model = train(env, project)
    prepared = time.monotonic() - started
    database = copy_sqlite(sqlite_template_db, tmp / "hamroh.db")
    settings = load_settings(repo_root / "config.yml", database_url=database, HAMROH_ACTIONS_TOKEN=TOKEN)
    port = free_port()
    server = _HamrohServer(uvicorn.Config(create_app(settings, kb=kb), host="127.0.0.1", port=port,
                                          log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "Hamroh did not start"
        time.sleep(0.1)
    try:
        with run_servers(env, model, project, hamroh_url=f"http://127.0.0.1:{port}", token=TOKEN,
                         logs=tmp / "logs", timeout=240) as servers:
            print(f"rasa environment + model ready in {prepared:.0f} s; servers in "
                  f"{time.monotonic() - started - prepared:.0f} s")
            yield {"rasa": servers.rasa_url, "database": database, "kb": kb}
    finally:
        server.should_exit = True
        thread.join(30)


def _say(stack: dict, sender: str, text: str) -> list[dict]:
    response = httpx.post(stack["rasa"] + "/webhooks/rest/webhook", json={"sender": sender, "message": text},
                          timeout=60)
    response.raise_for_status()
    messages: list[dict] = response.json()
    return messages


def _nlu_examples(intent: str) -> list[str]:
    data = yaml.safe_load((Path(__file__).resolve().parents[3] / "nlu/data/nlu.yml").read_text(encoding="utf-8"))
    block = next(b for b in data["nlu"] if b.get("intent") == intent)
    return [line[2:].strip() for line in block["examples"].splitlines() if line.strip().startswith("- ")]


def test_a_question_through_rasa_gets_hamrohs_curated_answer(stack: dict) -> None:
    kb = stack["kb"]
    question = "How do I get a work patent in Russia?"
    expected = kb.search(question, "en").answer
    assert expected is not None
    texts = [m.get("text", "") for m in _say(stack, "rasa-user-1", question)]
    reply = next((t for t in texts if expected.title in t), None)
    assert reply is not None, f"no curated answer in {texts!r}"
    from bot.engine import format_day

    assert expected.sources[0].url in reply and format_day(expected.reviewed_on, "en") in reply


def test_ask_human_through_rasa_opens_a_ticket_with_the_transcript(stack: dict) -> None:
    message = _nlu_examples("ask_human")[0]
    before = len(stored_tickets(stack["database"]))
    _say(stack, "rasa-user-2", "How do I get a work patent in Russia?")
    replies = _say(stack, "rasa-user-2", message)
    assert replies, "Rasa sent nothing back"
    tickets = stored_tickets(stack["database"])
    assert len(tickets) == before + 1
    ticket, messages = tickets[-1]
    lines = [m.text for m in messages]
    assert ticket.reason == "user_asked" and ticket.status == "open"
    assert lines[0] == "How do I get a work patent in Russia?" and message in lines
    assert any(re.search(r"counsellor", r.get("text", ""), re.I) for r in replies)


def test_rasa_as_understanding_backend(stack: dict) -> None:
    class Builtin:
        def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
            return Understanding(lang="en", script="Latn", act="question", lang_confident=True)

    understander = RasaUnderstander(Builtin(), RasaConfig(url=stack["rasa"], timeout_seconds=10))
    assert understander.understand(_nlu_examples("ask_human")[1]).act == "ask_human"
    assert understander.understand(_nlu_examples("greet")[0]).act == "greet"
    crisis = understander.understand(_nlu_examples("crisis/locked_in")[0])
    assert crisis.act == "crisis" and crisis.crisis_kind is not None
