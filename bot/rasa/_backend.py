"""``nlu.backend: rasa``: dialogue acts from a running Rasa server, the built-in understanding as net.

Why the built-in understanding still runs on every message: it gives what Rasa's NLU does not
(language and script, country and stage entities), and its crisis triage is a safety net that a
Rasa model cannot switch off — a message either system calls a crisis is treated as one
(DESIGN.md, principle 2). Rasa decides every other act. When Rasa is unreachable, slow or broken,
the built-in result is used unchanged, the miss is logged (without message text), and Rasa is not
asked again for a few seconds, so a dead server costs one timeout, not one per message.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from typing import Any, Protocol, cast

import httpx

from nlu import ACTS, CRISIS_KINDS, CrisisKind, DialogueAct, LanguageHint, Understanding

from ..settings import RasaConfig

__all__ = ["RasaAct", "RasaUnderstander", "parse_rasa_result"]

log = logging.getLogger("hamroh.nlu.rasa")

#: after a failure, Rasa is skipped for this long (seconds)
RETRY_AFTER = 5.0


class _Builtin(Protocol):
    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding: ...


@dataclasses.dataclass(frozen=True)
class RasaAct:
    act: DialogueAct
    crisis_kind: CrisisKind | None
    confidence: float
    intent: str


def parse_rasa_result(body: Any, min_confidence: float) -> RasaAct:
    """Map Rasa's ``/model/parse`` JSON to a dialogue act; anything unsure becomes a question."""
    if not isinstance(body, dict) or not isinstance(body.get("intent"), dict):
        raise ValueError("no 'intent' in Rasa's answer")
    intent = str(body["intent"].get("name") or "")
    confidence = float(body["intent"].get("confidence") or 0.0)
    name = intent.partition("/")[0]
    if name not in ACTS or confidence < min_confidence:
        # nlu_fallback, an intent of the host assistant we do not know, or a weak guess: a question
        # is the safe reading (searched; a counsellor is offered when there is no verified answer)
        return RasaAct("question", None, confidence, intent)
    kind: CrisisKind | None = None
    if name == "crisis":
        selector = (body.get("response_selector") or {}).get("crisis") or {}
        key = str((selector.get("response") or {}).get("intent_response_key") or intent)
        sub = key.partition("/")[2]
        kind = cast(CrisisKind, sub) if sub in CRISIS_KINDS else None
    return RasaAct(cast(DialogueAct, name), kind, confidence, intent)


class RasaUnderstander:
    """Implements the engine's ``UnderstandingPort`` with a Rasa server for the dialogue act."""

    def __init__(self, builtin: _Builtin, config: RasaConfig, *, client: httpx.Client | None = None) -> None:
        self._builtin = builtin
        self._config = config
        self._client = client or httpx.Client(timeout=config.timeout_seconds)
        self._url = config.url.rstrip("/") + "/model/parse"
        self._lock = threading.Lock()
        self._down_until = 0.0
        self._failures = 0

    def warm_up(self) -> None:
        warm = getattr(self._builtin, "warm_up", None)
        if callable(warm):
            warm()

    def close(self) -> None:
        self._client.close()

    def rasa_act(self, text: str) -> RasaAct | None:
        """Rasa's act for ``text``, or ``None`` (logged) when Rasa cannot be asked right now."""
        if time.monotonic() < self._down_until:
            return None
        try:
            response = self._client.post(self._url, json={"text": text})
            response.raise_for_status()
            act = parse_rasa_result(response.json(), self._config.min_confidence)
        except (httpx.HTTPError, ValueError) as exc:
            with self._lock:
                self._failures += 1
                self._down_until = time.monotonic() + RETRY_AFTER
                failures = self._failures
            log.warning("rasa at %s unusable (%s); using the built-in understanding (%d failure(s) so far)",
                        self._config.url, type(exc).__name__, failures)
            return None
        if self._failures:
            with self._lock:
                self._failures = 0
            log.info("rasa at %s answers again", self._config.url)
        return act

    def understand(self, text: str, hint: LanguageHint | None = None) -> Understanding:
        base = self._builtin.understand(text, hint)
        if not text.strip():
            return base
        act = self.rasa_act(text)
        if act is None or base.act == "crisis":
            return base
        return dataclasses.replace(base, act=act.act, crisis_kind=act.crisis_kind if act.act == "crisis" else None,
                                   confidence=round(act.confidence, 4))
