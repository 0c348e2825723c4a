"""Account commands for ``hamroh counsellor add|disable|enable|list``.

Plain synchronous functions: ``bot.cli`` parses arguments (and reads the password without
echo), calls these, prints the result and turns :class:`handoff.AccountError` into a message
and a non-zero exit status.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

from sqlalchemy.exc import OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from handoff._accounts import AccountInfo, create_account, disable_account, enable_account, list_accounts
from handoff._enums import Role
from handoff._errors import AccountError
from storage import create_engine, session_factory

__all__ = [
    "AccountInfo",
    "add_counsellor",
    "disable_counsellor",
    "enable_counsellor",
    "format_counsellors",
    "list_counsellors",
]

T = TypeVar("T")


def _run(database_url: str, action: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(database_url)
        try:
            async with session_factory(engine)() as session, session.begin():
                return await action(session)
        except (OperationalError, ProgrammingError) as exc:
            raise AccountError(
                f"the database is not ready ({type(exc.orig).__name__}); run `hamroh db upgrade` first"
            ) from exc
        finally:
            await engine.dispose()

    return asyncio.run(main())


def add_counsellor(
    database_url: str,
    *,
    username: str,
    display_name: str,
    password: str,
    role: str = Role.COUNSELLOR.value,
    mrc_id: str | None = None,
    known_mrc_ids: Collection[str] | None = None,
    min_password_length: int = 12,
) -> AccountInfo:
    """Create an account. Pass ``known_mrc_ids`` from config.yml so a typo in the MRC is caught.

    Raises :class:`AccountError` (duplicate username, unknown MRC, short password, ...).
    """
    return _run(
        database_url,
        lambda session: create_account(
            session=session,
            username=username,
            display_name=display_name,
            password=password,
            role=role,
            mrc_id=mrc_id,
            known_mrc_ids=known_mrc_ids,
            min_password_length=min_password_length,
        ),
    )


def disable_counsellor(database_url: str, *, username: str) -> AccountInfo:
    """Disable an account: its console sessions end at once and its claimed tickets return to the
    queue. Raises :class:`AccountError` if there is no such account."""
    return _run(database_url, lambda session: disable_account(session=session, username=username))


def enable_counsellor(database_url: str, *, username: str) -> AccountInfo:
    """Re-enable a disabled account (it must sign in again)."""
    return _run(database_url, lambda session: enable_account(session=session, username=username))


def list_counsellors(
    database_url: str, *, mrc_id: str | None = None, include_disabled: bool = True
) -> list[AccountInfo]:
    """Accounts ordered by MRC and username."""
    return _run(
        database_url,
        lambda session: list_accounts(session=session, mrc_id=mrc_id, include_disabled=include_disabled),
    )


def format_counsellors(accounts: Collection[AccountInfo]) -> str:
    """A plain table for the terminal."""
    if not accounts:
        return "No accounts. Add one with: hamroh counsellor add USERNAME --mrc MRC_ID"
    rows = [("USERNAME", "NAME", "ROLE", "MRC", "STATE")] + [
        (a.username, a.display_name, a.role, a.mrc_id or "(all)", "active" if a.active else "disabled")
        for a in accounts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows)
