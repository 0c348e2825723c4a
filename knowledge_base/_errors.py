"""Errors shared by the embedding engines, in their own module so no engine imports another for them."""

from __future__ import annotations

__all__ = ["EmbedderError"]


class EmbedderError(RuntimeError):
    """The embedding model is missing or unusable; the message says how to install it."""
