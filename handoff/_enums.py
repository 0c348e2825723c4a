"""Closed vocabularies of the queue. Stored as strings so migrations never fight native enums."""

from enum import IntEnum, StrEnum

__all__ = [
    "AuditAction",
    "Author",
    "DeliveryStatus",
    "Priority",
    "Reason",
    "Role",
    "Status",
]


class Reason(StrEnum):
    """Why the bot handed the conversation to a person (shown to the counsellor)."""

    USER_ASKED = "user_asked"
    NO_ANSWER = "no_answer"
    NEGATIVE_FEEDBACK = "negative_feedback"
    CRISIS = "crisis"
    UNREADABLE_ATTACHMENT = "unreadable_attachment"

    @property
    def label(self) -> str:
        return _REASON_LABELS[self]


_REASON_LABELS = {
    Reason.USER_ASKED: "User asked for a counsellor",
    Reason.NO_ANSWER: "No verified answer",
    Reason.NEGATIVE_FEEDBACK: "Negative feedback on an answer",
    Reason.CRISIS: "Crisis",
    Reason.UNREADABLE_ATTACHMENT: "Voice or file the bot cannot read",
}


class Priority(IntEnum):
    """Lower sorts first: crisis tickets always lead the queue."""

    CRISIS = 0
    HIGH = 1
    NORMAL = 2

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def for_reason(cls, reason: Reason) -> "Priority":
        return cls.CRISIS if reason is Reason.CRISIS else cls.NORMAL


class Status(StrEnum):
    """open → claimed → resolved; or transferred (the ticket continues in another MRC)."""

    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"
    TRANSFERRED = "transferred"

    @classmethod
    def active(cls) -> tuple["Status", ...]:
        return (cls.OPEN, cls.CLAIMED)


class Role(StrEnum):
    """Console roles. Not a hierarchy: an admin manages accounts but reads no conversation."""

    COUNSELLOR = "counsellor"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"
    #: drafts changes to the knowledge base; reads no conversation
    EDITOR = "editor"
    #: approves or sends back others' drafts (sensitive entries need a supervisor); reads no conversation
    REVIEWER = "reviewer"


class Author(StrEnum):
    """Who wrote a line of the transcript."""

    USER = "user"
    BOT = "bot"
    COUNSELLOR = "counsellor"
    SYSTEM = "system"


class DeliveryStatus(StrEnum):
    """Outbound state of a counsellor reply; ``sending`` guards against a second send."""

    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


class AuditAction(StrEnum):
    VIEW = "view"
    CLAIM = "claim"
    RELEASE = "release"
    REPLY = "reply"
    NOTE = "note"
    RESOLVE = "resolve"
    TRANSFER = "transfer"
    EXPORT = "export"
    LOGIN = "login"
    LOGIN_FAILED = "login_failed"
    LOGOUT = "logout"
    ACCOUNT_ADD = "account_add"
    ACCOUNT_DISABLE = "account_disable"
    ACCOUNT_ENABLE = "account_enable"
    STATS_VIEW = "stats_view"
    USER_DATA_DELETED = "user_data_deleted"
    VIEW_DENIED = "view_denied"
    #: a counsellor opened a voice note, photo or file of the conversation (fetched from the channel)
    VIEW_MEDIA = "view_media"
    CONTENT_VIEW = "content_view"
    CONTENT_DRAFT = "content_draft"
    CONTENT_APPROVE = "content_approve"
    CONTENT_REJECT = "content_reject"
    CONTENT_PUBLISH = "content_publish"
    CONTENT_ROLLBACK = "content_rollback"
    CONTENT_WITHDRAW = "content_withdraw"
    CONTENT_IMPORT = "content_import"
