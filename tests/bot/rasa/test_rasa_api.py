"""The API the Rasa action server calls: curated answers in Rasa's form, tickets with transcript."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app
from bot.settings import load_settings
from storage.scratch import copy_sqlite
from tests.bot.rasa._db import stored_tickets

pytestmark = pytest.mark.integration

TOKEN = "test-actions-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def database(sqlite_template_db: Path, tmp_path: Path) -> str:
    return copy_sqlite(sqlite_template_db, tmp_path / "rasa.db")


@pytest.fixture()
def client(repo_root: Path, kb, database: str):
    settings = load_settings(repo_root / "config.yml", database_url=database, HAMROH_ACTIONS_TOKEN=TOKEN)
    with TestClient(create_app(settings, kb=kb)) as c:
        yield c


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}])
def test_without_the_token_nothing_is_answered_or_opened(client: TestClient, headers: dict, database: str) -> None:
    for path, body in (("/api/rasa/answer", {"sender_id": "a", "text": "hi"}),
                       ("/api/rasa/handoff", {"sender_id": "a", "text": "human please"})):
        response = client.post(path, json=body, headers=headers)
        assert response.status_code == 401
    assert stored_tickets(database) == []


def test_a_question_gets_the_curated_answer_with_source_and_date(client: TestClient, kb) -> None:
    body = client.post("/api/rasa/answer", headers=AUTH, json={
        "sender_id": "s1", "text": "How do I get a work patent in Russia?", "intent": "question"}).json()
    entry = kb.get(body["entry_id"])
    assert body["kind"] == "answer" and entry.topic == "ru-patent" and body["lang"] == "en"
    text = body["messages"][0]["text"]
    assert entry.translations["en"].title in text
    from bot.engine import format_day

    assert format_day(entry.reviewed_on, "en") in text and entry.sources[0].url in text
    payloads = [b["payload"] for b in body["messages"][0]["buttons"]]
    assert payloads == ["/ask_human"], "feedback buttons have no Rasa route; the counsellor button does"


def test_russian_question_is_answered_in_russian(client: TestClient, kb) -> None:
    body = client.post("/api/rasa/answer", headers=AUTH, json={
        "sender_id": "s2", "text": "Как проверить запрет на въезд в Россию?", "intent": "question"}).json()
    assert body["kind"] == "answer" and body["lang"] == "ru"
    assert kb.get(body["entry_id"]).translations["ru"].title in body["messages"][0]["text"]


def test_a_chosen_clarify_button_answers_that_entry(client: TestClient, kb) -> None:
    entry = kb.entries[0]
    body = client.post("/api/rasa/answer", headers=AUTH, json={
        "sender_id": "s3", "text": '/choose_entry{"hamroh_entry":"x"}', "intent": "choose_entry", "lang": "en",
        "entry_id": entry.id}).json()
    assert body["kind"] == "answer" and body["entry_id"] == entry.id


def test_off_topic_offers_a_counsellor(client: TestClient) -> None:
    body = client.post("/api/rasa/answer", headers=AUTH, json={
        "sender_id": "s4", "text": "who won the football world cup in 1998?", "intent": "question"}).json()
    assert body["kind"] == "handoff"
    assert body["messages"][0]["buttons"][0]["payload"] == "/ask_human"


def test_ask_human_opens_one_pseudonymous_ticket_with_the_transcript(client: TestClient, database: str) -> None:
    body = {"sender_id": "+998901234567", "reason": "user_asked", "text": "i want to speak with a real person",
            "transcript": [{"author": "user", "text": "how do i get a patent"},
                           {"author": "bot", "text": "Here is the answer"},
                           {"author": "user", "text": "i want to speak with a real person"}]}
    first = client.post("/api/rasa/handoff", headers=AUTH, json=body).json()
    again = client.post("/api/rasa/handoff", headers=AUTH, json=body).json()
    assert first["kind"] == "ticket_opened" and first["ticket_id"] == again["ticket_id"]
    [(ticket, messages)] = stored_tickets(database)
    assert ticket.reason == "user_asked" and ticket.lang == "en"
    assert "998901234567" not in ticket.user_key, "the sender id is pseudonymised"
    assert [m.text for m in messages][:3] == [line["text"] for line in body["transcript"]]


def test_a_crisis_gets_emergency_numbers_and_a_priority_ticket(client: TestClient, database: str) -> None:
    body = client.post("/api/rasa/handoff", headers=AUTH, json={
        "sender_id": "c1", "reason": "crisis", "crisis_kind": "locked_in", "text": "меня заперли и не выпускают",
        "profile": {"origin": "UZ", "destination": "RU"}}).json()
    assert body["kind"] == "crisis" and body["lang"] == "ru" and "112" in body["messages"][0]["text"]
    [(ticket, _)] = stored_tickets(database)
    assert ticket.reason == "crisis" and ticket.crisis_kind == "locked_in"
