"""Handoff test fixtures live in handoff_support (importable by name); registered here."""

from tests.handoff.handoff_support import answers, engine, outbound, sessions, settings  # noqa: F401
