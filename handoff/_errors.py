"""Handoff's exceptions. The console translates them to HTTP statuses; the CLI to messages."""

__all__ = [
    "AccountError",
    "AlreadyClaimed",
    "HandoffError",
    "InvalidState",
    "LoginThrottled",
    "NotAllowed",
    "RoleNotGrantable",
    "TicketNotFound",
]


class HandoffError(Exception):
    """Base of every error raised by :mod:`handoff`."""


class TicketNotFound(HandoffError):
    """No such ticket, or one the actor may not know exists (another MRC's: same answer).

    ``denied`` is set when the ticket exists but belongs to another MRC: (actor id, username,
    ticket id, the ticket's MRC) so the console can audit the attempt after the rollback.
    """

    def __init__(self, message: str, *, denied: tuple[int, str, int, str] | None = None) -> None:
        super().__init__(message)
        self.denied = denied


class NotAllowed(HandoffError):
    """The actor's role or MRC does not permit the action."""


class AlreadyClaimed(HandoffError):
    """Someone else claimed the ticket first."""


class InvalidState(HandoffError):
    """The ticket's state does not allow the action (e.g. replying to a resolved ticket)."""


class AccountError(HandoffError):
    """A counsellor account could not be created or changed; the message says what to fix."""


class LoginThrottled(HandoffError):
    """Too many failed sign-ins from this address for this username; wait and retry."""

    def __init__(self, retry_after_seconds: int) -> None:
        super().__init__(f"too many failed sign-ins; try again in {retry_after_seconds} s")
        self.retry_after_seconds = retry_after_seconds


class RoleNotGrantable(AccountError):
    """The signed-in account may not create an account with rights it lacks itself (an admin, who
    reads no conversation, creating a supervisor it could then sign in as). The console audits it."""
