"""The Rasa 3.6 project generated from ``nlu/data/nlu.yml`` — one source of truth for both NLUs.

Rasa Open Source 3.6 needs Python < 3.11 and old pins, so it never runs in Hamroh's environment:
this package only *writes* the project (pure Python, YAML out); ``bot.rasa`` builds Rasa's own
environment, trains and starts it. The action server code in ``actions/`` runs in that environment
and talks to Hamroh over HTTP only, so it imports nothing of the project.
"""

from ._project import (
    ACTION_ANSWER,
    ACTION_HANDOFF,
    TRAINING_FILES,
    RasaProject,
    build_project,
    credentials_yaml,
    endpoints_yaml,
    fingerprint,
    pipeline_config,
    write_nlu_yaml,
)

__all__ = [
    "ACTION_ANSWER",
    "ACTION_HANDOFF",
    "TRAINING_FILES",
    "RasaProject",
    "build_project",
    "credentials_yaml",
    "endpoints_yaml",
    "fingerprint",
    "pipeline_config",
    "write_nlu_yaml",
]
