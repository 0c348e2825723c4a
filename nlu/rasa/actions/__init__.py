"""Hamroh's custom actions for a Rasa assistant (rasa-sdk 3.6, runs in Rasa's Python 3.10 environment).

The actions hold no logic of their own: they forward the user's turn to Hamroh's HTTP API, which
searches the curated knowledge base in the user's language (or opens a counsellor ticket) and
returns ready-to-send, localised messages. So a Rasa assistant gets the same curated answers with
source and review date, the same clarify buttons and the same queue as Hamroh's own channels.

Configuration (environment of ``python -m rasa_sdk --actions actions``):

* ``HAMROH_URL`` — Hamroh's base URL (default ``http://127.0.0.1:8000``);
* ``HAMROH_ACTIONS_TOKEN`` — the shared bearer token (Hamroh's ``HAMROH_ACTIONS_TOKEN``, or the
  one it keeps in ``data/actions_token``);
* ``HAMROH_TIMEOUT`` — seconds per call (default 15).

Stdlib only besides rasa-sdk, so it imports in any environment that has rasa-sdk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import urllib.error
import urllib.request
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

log = logging.getLogger("hamroh.actions")

LANG_SLOT = "hamroh_lang"
ENTRY_ENTITY = "hamroh_entry"
TRANSCRIPT_LINES = 20
UNAVAILABLE = "Sorry, the information service is not available right now. Please try again in a few minutes."


def _post(path: str, payload: dict[str, Any]) -> dict[str, Any]:
    base = os.environ.get("HAMROH_URL", "http://127.0.0.1:8000").rstrip("/")
    request = urllib.request.Request(
        base + path, data=json.dumps(payload).encode("utf-8"), method="POST",
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer " + os.environ.get("HAMROH_ACTIONS_TOKEN", "")})
    timeout = float(os.environ.get("HAMROH_TIMEOUT", "15"))
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body: dict[str, Any] = json.loads(response.read().decode("utf-8"))
        return body


async def _call(path: str, payload: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return await asyncio.to_thread(_post, path, payload)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        # no message text in logs: only what failed
        log.error("hamroh %s failed: %s", path, type(exc).__name__ if not isinstance(exc, urllib.error.HTTPError)
                  else f"HTTP {exc.code}")
        return None


def _send(dispatcher: CollectingDispatcher, body: dict[str, Any] | None) -> list[dict[str, Any]]:
    if body is None:
        dispatcher.utter_message(text=UNAVAILABLE)
        return []
    for message in body.get("messages", []):
        dispatcher.utter_message(text=message.get("text"), buttons=message.get("buttons") or [])
    return [SlotSet(LANG_SLOT, body["lang"])] if body.get("lang") else []


def _intent(tracker: Tracker) -> str:
    return str((tracker.latest_message.get("intent") or {}).get("name") or "question")


def _profile(tracker: Tracker) -> dict[str, str]:
    """Country slots of the host assistant, if it has them (used for emergency numbers)."""
    out = {}
    for key in ("origin", "destination"):
        try:
            value = tracker.get_slot(key)
        except Exception:  # the slot does not exist in this assistant's domain
            value = None
        if isinstance(value, str) and len(value) == 2 and value.isalpha():
            out[key] = value.upper()
    return out


class ActionHamrohAnswer(Action):
    """Questions (and small talk, and low-confidence messages): Hamroh's curated answer, clarify
    buttons, or — when no verified answer exists — an offer to talk to a counsellor."""

    def name(self) -> str:
        return "action_hamroh_answer"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        entry = next(tracker.get_latest_entity_values(ENTRY_ENTITY), None)
        body = await _call("/api/rasa/answer", {
            "sender_id": tracker.sender_id,
            "text": tracker.latest_message.get("text") or "",
            "intent": _intent(tracker),
            "lang": tracker.get_slot(LANG_SLOT),
            "entry_id": entry,
        })
        return _send(dispatcher, body)


class ActionHamrohHandoff(Action):
    """``ask_human`` and crises: a ticket in Hamroh's counsellor queue, with the transcript."""

    def name(self) -> str:
        return "action_hamroh_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker,
                  domain: dict[str, Any]) -> list[dict[str, Any]]:
        latest = tracker.latest_message
        intent = _intent(tracker)
        kind = None
        if intent == "crisis":
            selected = ((latest.get("response_selector") or {}).get("crisis") or {}).get("response") or {}
            key = str(selected.get("intent_response_key") or "")
            kind = key.partition("/")[2] or None
        transcript = [{"author": "user" if e.get("event") == "user" else "bot", "text": e.get("text")}
                      for e in tracker.events if e.get("event") in ("user", "bot") and e.get("text")]
        body = await _call("/api/rasa/handoff", {
            "sender_id": tracker.sender_id,
            "reason": "crisis" if intent == "crisis" else "user_asked",
            "crisis_kind": kind,
            "text": latest.get("text") or "",
            "lang": tracker.get_slot(LANG_SLOT),
            "profile": _profile(tracker),
            "transcript": transcript[-TRANSCRIPT_LINES:],
        })
        return _send(dispatcher, body)
