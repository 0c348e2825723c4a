"""Counsellor accounts: create, disable, enable, list; argon2id password hashes.

Accounts are never deleted (the audit log names them). Disabling one ends its sessions at once
and puts the tickets it held back in the queue, so nobody waits on a departed colleague.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from handoff._audit import audit
from handoff._enums import AuditAction, Role, Status
from handoff._errors import AccountError, RoleNotGrantable, TicketNotFound
from handoff._policy import Actor, can_manage_account
from handoff.tables import ConsoleSession, Counsellor, Ticket
from storage import utcnow

__all__ = [
    "AccountInfo",
    "counsellor_names",
    "create_account",
    "disable_account",
    "enable_account",
    "find_account",
    "hash_password",
    "list_accounts",
    "manageable_account",
    "needs_rehash",
    "verify_password",
]

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")


@lru_cache(maxsize=1)
def _hasher() -> PasswordHasher:
    # argon2-cffi's defaults are RFC 9106's low-memory profile of argon2id.
    return PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher().verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return _hasher().check_needs_rehash(password_hash)


@dataclass(frozen=True, slots=True)
class AccountInfo:
    """An account as the CLI and the admin page show it (no hash)."""

    id: int
    username: str
    display_name: str
    role: str
    mrc_id: str | None
    created_at: datetime
    disabled_at: datetime | None

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    @classmethod
    def of(cls, counsellor: Counsellor) -> AccountInfo:
        return cls(
            id=counsellor.id,
            username=counsellor.username,
            display_name=counsellor.display_name,
            role=counsellor.role,
            mrc_id=counsellor.mrc_id,
            created_at=counsellor.created_at,
            disabled_at=counsellor.disabled_at,
        )


def _normalise_username(username: str) -> str:
    return username.strip().lower()


async def find_account(*, session: AsyncSession, username: str) -> Counsellor | None:
    found: Counsellor | None = await session.scalar(
        select(Counsellor).where(Counsellor.username == _normalise_username(username))
    )
    return found


async def create_account(
    *,
    session: AsyncSession,
    username: str,
    display_name: str,
    password: str,
    role: Role | str = Role.COUNSELLOR,
    mrc_id: str | None = None,
    known_mrc_ids: Collection[str] | None = None,
    min_password_length: int = 12,
    actor: Actor | None = None,
) -> AccountInfo:
    """Create an account. Raises :class:`AccountError` saying exactly what to change."""
    name = _normalise_username(username)
    if not USERNAME.match(name):
        raise AccountError(f"username {username!r} is not valid: use 3–64 lowercase letters, digits, '.', '_' or '-'")
    shown = display_name.strip()
    if not shown or len(shown) > 100:
        raise AccountError("display name must be 1–100 characters (users see it next to replies)")
    try:
        role = Role(role)
    except ValueError:
        raise AccountError(f"role {role!r} is not one of: {', '.join(r.value for r in Role)}") from None
    if actor is not None and actor.role is Role.ADMIN and role not in (Role.ADMIN, Role.EDITOR, Role.REVIEWER):
        # an admin reads no conversation; an account they create and sign in as would: counsellor
        # and supervisor accounts come from `hamroh counsellor add` (the MRC's IT person, audited)
        raise RoleNotGrantable(f"an admin cannot create a {role.value} account (it could read conversations an admin "
                           "may not): the MRC's IT person runs `hamroh counsellor add` on the server")
    mrc = (mrc_id or "").strip() or None
    if role is Role.COUNSELLOR and mrc is None:
        raise AccountError("a counsellor account needs an MRC (--mrc); only supervisors and admins may have none")
    if mrc is not None and known_mrc_ids is not None and mrc not in known_mrc_ids:
        raise AccountError(f"unknown MRC {mrc!r}; configured MRCs: {', '.join(sorted(known_mrc_ids))}")
    if len(password) < min_password_length:
        raise AccountError(f"password too short: use at least {min_password_length} characters")
    if password.strip().lower() == name:
        raise AccountError("password must not be the username")
    if await find_account(session=session, username=name) is not None:
        raise AccountError(f"username {name!r} already exists; choose another or disable the old account")
    counsellor = Counsellor(
        username=name,
        display_name=shown,
        password_hash=hash_password(password),
        role=role.value,
        mrc_id=mrc,
        created_at=utcnow(),
    )
    session.add(counsellor)
    await session.flush()
    await audit(
        session,
        actor,
        AuditAction.ACCOUNT_ADD,
        mrc_id=mrc,
        detail=f"{name} ({role.value}, {mrc or 'all MRCs'})",
        username="cli",
    )
    return AccountInfo.of(counsellor)


async def _require(session: AsyncSession, username: str) -> Counsellor:
    counsellor = await find_account(session=session, username=username)
    if counsellor is None:
        raise AccountError(f"no account named {_normalise_username(username)!r}; see `hamroh counsellor list`")
    return counsellor


async def disable_account(*, session: AsyncSession, username: str, actor: Actor | None = None) -> AccountInfo:
    """Disable an account, end all its sessions and return its claimed tickets to the queue."""
    counsellor = await _require(session, username)
    if counsellor.disabled_at is None:
        counsellor.disabled_at = utcnow()
    await session.execute(delete(ConsoleSession).where(ConsoleSession.counsellor_id == counsellor.id))
    await session.execute(
        update(Ticket)
        .where(Ticket.status == Status.CLAIMED, Ticket.claimed_by_id == counsellor.id)
        .values(status=Status.OPEN.value, claimed_by_id=None, claimed_at=None, claim_activity_at=None)
        .execution_options(synchronize_session=False)
    )
    await audit(
        session,
        actor,
        AuditAction.ACCOUNT_DISABLE,
        mrc_id=counsellor.mrc_id,
        detail=counsellor.username,
        username="cli",
    )
    await session.flush()
    return AccountInfo.of(counsellor)


async def enable_account(*, session: AsyncSession, username: str, actor: Actor | None = None) -> AccountInfo:
    counsellor = await _require(session, username)
    counsellor.disabled_at = None
    await audit(
        session, actor, AuditAction.ACCOUNT_ENABLE, mrc_id=counsellor.mrc_id, detail=counsellor.username, username="cli"
    )
    await session.flush()
    return AccountInfo.of(counsellor)


async def list_accounts(
    *, session: AsyncSession, mrc_id: str | None = None, include_disabled: bool = True
) -> list[AccountInfo]:
    query = select(Counsellor).order_by(func.coalesce(Counsellor.mrc_id, ""), Counsellor.username)
    if mrc_id is not None:
        query = query.where(Counsellor.mrc_id == mrc_id)
    if not include_disabled:
        query = query.where(Counsellor.disabled_at.is_(None))
    return [AccountInfo.of(c) for c in (await session.scalars(query)).all()]


async def manageable_account(*, session: AsyncSession, actor: Actor, account_id: int) -> Counsellor:
    """The account ``actor`` may manage; any other (or none) is "no such account", so an admin
    cannot learn which ids exist at other MRCs."""
    found = await session.get(Counsellor, account_id)
    if found is None or not can_manage_account(actor, found.mrc_id):
        raise TicketNotFound("no such account")
    return found


async def counsellor_names(*, session: AsyncSession) -> dict[int, str]:
    """Display names by account id (a transcript names who wrote each reply)."""
    return {row[0]: row[1] for row in (await session.execute(select(Counsellor.id, Counsellor.display_name))).all()}
