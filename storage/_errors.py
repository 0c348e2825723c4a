"""The storage package's exceptions; callers translate them at the edge (CLI, HTTP)."""

__all__ = ["MigrationError", "StorageError"]


class StorageError(Exception):
    """Base of every error raised by :mod:`storage`."""


class MigrationError(StorageError):
    """The schema could not be brought to the head revision; the message says what to fix."""
