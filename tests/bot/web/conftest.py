"""Fixtures for the web channel: the fake engine and a TestClient around the router."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot.channels.web import create_web_router

from .fake_engine import FakeConversation

SECRET = "test-user-key-secret-0123456789"


@pytest.fixture
def fake() -> FakeConversation:
    return FakeConversation()


@pytest.fixture
def make_client(fake: FakeConversation) -> Iterator[Callable[..., TestClient]]:
    """``make_client(**router_kwargs)``: a TestClient on an app with just the web router."""
    clients: list[TestClient] = []

    def make(engine: Any = None, **kwargs: Any) -> TestClient:
        kwargs.setdefault("poll_interval", 0.05)
        app = FastAPI()
        app.include_router(create_web_router(engine or fake, key_secret=SECRET, **kwargs))
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
