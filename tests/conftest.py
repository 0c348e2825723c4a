"""Shared fixtures: the repository's settings, the real offline model, a knowledge base on shipped content."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"

# the throw-away databases (db_url, sqlite_template_db, postgres_database) for every package's tests
pytest_plugins = ["tests.plugins.databases"]
MODEL_DIR = Path(os.environ.get("HAMROH_MODEL_DIR", ROOT / "data/models/multilingual-e5-small"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def settings():  # type: ignore[no-untyped-def]
    from bot.settings import load_settings

    return load_settings(ROOT / "config.yml")


@pytest.fixture(scope="session")
def embedder(settings):  # type: ignore[no-untyped-def]
    """The embedder the service uses: PyTorch for batches, the configured engine for live queries."""
    from knowledge_base import create_embedder

    if not (MODEL_DIR / "modules.json").exists():
        pytest.skip(f"offline model not built at {MODEL_DIR}: run 'make model'")
    return create_embedder(settings.model.model_copy(update={"dir": MODEL_DIR}))


@pytest.fixture(scope="session")
def kb(settings, embedder) -> Iterator[object]:  # type: ignore[no-untyped-def]
    """The shipped content with the index `make index` built (rebuilt only if content changed)."""
    from bot.services import open_knowledge_base

    yield open_knowledge_base(settings, embedder=embedder)
