"""Rasa integration: Hamroh as a Rasa action-server backend, and Rasa as an optional NLU backend.

* :func:`rasa_router` — ``/api/rasa/answer`` and ``/api/rasa/handoff`` for the action server;
* :class:`RasaUnderstander` — ``nlu.backend: rasa`` (acts from Rasa's ``/model/parse``);
* :mod:`._service` — Rasa's own Python 3.10 environment, training and processes (``make rasa``).
"""

from ._api import actions_token, rasa_router
from ._backend import RasaAct, RasaUnderstander, parse_rasa_result
from ._service import (
    RasaServers,
    RasaUnavailable,
    cache_root,
    ensure_env,
    env_dir,
    find_python,
    free_port,
    run_servers,
    train,
    wait_forever,
)

__all__ = [
    "RasaAct",
    "RasaServers",
    "RasaUnavailable",
    "RasaUnderstander",
    "actions_token",
    "cache_root",
    "ensure_env",
    "env_dir",
    "find_python",
    "free_port",
    "parse_rasa_result",
    "rasa_router",
    "run_servers",
    "train",
    "wait_forever",
]
