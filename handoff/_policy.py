"""Who may do what. Every console route and service function asks these; nothing else decides.

Roles are not a ladder. Counsellors work their own MRC's queue. Supervisors work the queues of
their MRC (or all MRCs when their account has none), see statistics and the audit log, and may
transfer, release or resolve any ticket in scope. Admins manage accounts and read the audit
log, but read no conversation: least privilege for the one role that can create others.
"""

from __future__ import annotations

from dataclasses import dataclass

from handoff._enums import Role, Status
from handoff.tables import Counsellor, Ticket

__all__ = [
    "Actor",
    "can_claim",
    "can_edit_content",
    "can_manage_account",
    "can_manage_accounts",
    "can_note",
    "can_review_content",
    "can_take_over",
    "can_transfer",
    "can_view_audit",
    "can_view_stats",
    "can_view_ticket",
    "can_work_queue",
    "can_write",
    "in_scope",
]


@dataclass(frozen=True, slots=True)
class Actor:
    """The signed-in person (or the CLI operator) on whose behalf an action runs."""

    id: int
    username: str
    display_name: str
    role: Role
    mrc_id: str | None

    @classmethod
    def of(cls, counsellor: Counsellor) -> Actor:
        return cls(
            id=counsellor.id,
            username=counsellor.username,
            display_name=counsellor.display_name,
            role=Role(counsellor.role),
            mrc_id=counsellor.mrc_id,
        )


def in_scope(actor: Actor, mrc_id: str | None) -> bool:
    """An account bound to an MRC sees only that MRC; an unbound one (not a counsellor) sees all."""
    if actor.mrc_id is None:
        return actor.role is not Role.COUNSELLOR
    return actor.mrc_id == mrc_id


def can_work_queue(actor: Actor) -> bool:
    return actor.role in (Role.COUNSELLOR, Role.SUPERVISOR)


def can_view_ticket(actor: Actor, ticket: Ticket) -> bool:
    return can_work_queue(actor) and in_scope(actor, ticket.mrc_id)


def can_claim(actor: Actor, ticket: Ticket) -> bool:
    return can_view_ticket(actor, ticket) and ticket.status == Status.OPEN


def can_write(actor: Actor, ticket: Ticket) -> bool:
    """Reply to the user: only whoever holds the claim, so two people never answer at once."""
    return can_view_ticket(actor, ticket) and ticket.status == Status.CLAIMED and ticket.claimed_by_id == actor.id


def can_take_over(actor: Actor, ticket: Ticket) -> bool:
    """Release or resolve a ticket someone else holds: supervisors only."""
    return can_view_ticket(actor, ticket) and actor.role is Role.SUPERVISOR and ticket.is_active


def can_note(actor: Actor, ticket: Ticket) -> bool:
    return can_view_ticket(actor, ticket)


def can_transfer(actor: Actor, ticket: Ticket) -> bool:
    return can_write(actor, ticket) or can_take_over(actor, ticket)


def can_view_stats(actor: Actor) -> bool:
    return actor.role is Role.SUPERVISOR


def can_view_audit(actor: Actor) -> bool:
    return actor.role in (Role.SUPERVISOR, Role.ADMIN)


def can_manage_accounts(actor: Actor) -> bool:
    return actor.role is Role.ADMIN


def can_manage_account(actor: Actor, target_mrc_id: str | None) -> bool:
    """An admin bound to an MRC manages only that MRC's accounts and cannot mint unbound ones."""
    if not can_manage_accounts(actor):
        return False
    if actor.mrc_id is None:
        return True
    return target_mrc_id == actor.mrc_id


def can_edit_content(actor: Actor) -> bool:
    """Draft a change to the knowledge base. Counsellors and admins do not: content is reviewed
    legal information, written by the people the MRC named for it."""
    return actor.role in (Role.EDITOR, Role.REVIEWER, Role.SUPERVISOR)


def can_review_content(actor: Actor, *, sensitive: bool = False) -> bool:
    """Approve, send back or roll back a change; a ``safety: sensitive`` entry needs a supervisor.
    (That the reviewer is not the change's author is checked where the draft is known.)"""
    if sensitive:
        return actor.role is Role.SUPERVISOR
    return actor.role in (Role.REVIEWER, Role.SUPERVISOR)
