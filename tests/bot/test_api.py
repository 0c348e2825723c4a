"""The HTTP API that `make run` serves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from bot.app import create_app

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(settings, kb):
    with TestClient(create_app(settings, kb=kb)) as c:
        yield c


def test_health_reports_the_loaded_index(client) -> None:
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["entries"] > 0


def test_ask_returns_a_decision_with_provenance(client) -> None:
    body = client.post("/api/ask", json={"question": "How do I register with the Protector of Emigrants in "
                                         "Pakistan before going abroad for work?", "lang": "en"}).json()
    assert body["decision"] in {"answer", "clarify"}
    if body["decision"] == "answer":
        assert body["topic"] == "pk-protector-registration"
        assert body["sources"] and body["reviewed_on"]
    else:
        assert 2 <= len(body["candidates"]) <= 3


def test_off_topic_question_is_handed_off(client) -> None:
    body = client.post("/api/ask", json={"question": "who won the football world cup in 1998?", "lang": "en"}).json()
    assert body["decision"] == "handoff" and body["answer"] is None


@pytest.mark.parametrize(
    "payload",
    [{"question": ""}, {"question": "x" * 100_000}, {"question": "ok", "lang": "klingon!"}, {"nope": 1},
     {"question": "ok", "profile": {"origin": "Bangladesh"}}],
)
def test_bad_requests_get_a_clear_422(client, payload) -> None:
    response = client.post("/api/ask", json=payload)
    assert response.status_code == 422
    assert response.json()["detail"]


def test_control_characters_only_is_a_clear_error(client) -> None:
    response = client.post("/api/ask", json={"question": "\u0000\u0001"})
    assert response.status_code == 422 and "empty" in str(response.json()["detail"])
