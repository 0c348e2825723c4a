"""Security probes of issue 15: each test is a probe that broke before the fix and fails safely now."""

import pytest

from handoff import ConsoleSettings
from tests.handoff.handoff_support import answers, engine, make_settings, outbound, sessions  # noqa: F401


@pytest.fixture
def console_cfg() -> ConsoleSettings:
    """The console's settings of the handoff tests (``settings`` stays the repository's config.yml)."""
    return make_settings()
