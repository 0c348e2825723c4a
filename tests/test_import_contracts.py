"""The packages depend one way (bench -> bot -> handoff -> {nlu, knowledge_base, storage}), the wheel
imports no test code, underscore modules stay in their package, and no package has an import cycle.

The contracts are in pyproject.toml (``[tool.importlinter]``); this runs ``lint-imports`` on the
checkout so a wrong-way import fails ``make test``, with the offending line in the message.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.unit

_RUN = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_the_import_contracts_hold() -> None:
    # in a subprocess from the checkout's root, so the checkout's packages are the ones analysed
    done = subprocess.run([sys.executable, "-c", _RUN, "--no-logo", "--no-cache"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
