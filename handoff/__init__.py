"""Counsellor hand-off: the queue of tickets, the console, notifications and the audit log.

``handoff`` imports only ``storage`` from the project. ``bot`` composes it:

* implements :class:`OutboundPort` (replies reach the user's channel), :class:`AnswerSearch`
  (the knowledge base), optionally :class:`QueryEmbedder` and :class:`Notifier`;
* opens tickets with :func:`open_ticket`, appends what users write with
  :func:`append_user_message`, asks :func:`active_ticket_id` whether a counsellor has the
  conversation, erases with :func:`delete_user_data`;
* mounts :func:`create_console_app` at ``/console``.

All service functions take a keyword-only ``session``; the caller owns the transaction.
"""

from handoff._accounts import (
    AccountInfo,
    create_account,
    disable_account,
    enable_account,
    hash_password,
    list_accounts,
    verify_password,
)
from handoff._alerts import crisis_alert_text, notify_pending_crises
from handoff._audit import audit, list_audit
from handoff._clustering import cluster_embeddings
from handoff._console import create_console_app
from handoff._console_kit import csrf_guard, page_context, redirect, signed_in
from handoff._enums import AuditAction, Author, DeliveryStatus, Priority, Reason, Role, Status
from handoff._errors import (
    AccountError,
    AlreadyClaimed,
    HandoffError,
    InvalidState,
    LoginThrottled,
    NotAllowed,
    RoleNotGrantable,
    TicketNotFound,
)
from handoff._hours import add_office_time, due_at, next_opening
from handoff._policy import Actor, can_edit_content, can_review_content
from handoff._ports import (
    AnswerSearch,
    CuratedAnswer,
    MediaFile,
    MediaRef,
    MediaSource,
    MediaUnavailable,
    NoAnswerSearch,
    NoMediaSource,
    Notifier,
    NullNotifier,
    OutboundMessage,
    OutboundPort,
    QueryEmbedder,
)
from handoff._retention import HandoffPurge, purge_handoff, users_waiting
from handoff._settings import ConsoleSettings, MrcSettings
from handoff._stats import ContentGap, QueueStats, cluster_gaps, gap_questions, queue_stats
from handoff._tickets import (
    QueueFilter,
    ReplyResult,
    TicketDetail,
    TranscriptLine,
    active_ticket_for_user,
    active_ticket_id,
    add_note,
    append_user_message,
    claim,
    claim_next,
    close_by_user,
    delete_user_data,
    deliver_reply,
    export_transcript,
    get_ticket,
    list_queue,
    open_ticket,
    purge_closed_before,
    record_reply,
    release,
    release_idle_claims,
    reply,
    resolve,
    send_outside_transaction,
    tell_user,
    transfer,
    view_ticket,
)

__all__ = [
    "AccountError",
    "AccountInfo",
    "Actor",
    "AlreadyClaimed",
    "AnswerSearch",
    "AuditAction",
    "Author",
    "ConsoleSettings",
    "ContentGap",
    "CuratedAnswer",
    "DeliveryStatus",
    "HandoffError",
    "HandoffPurge",
    "InvalidState",
    "LoginThrottled",
    "MediaFile",
    "MediaRef",
    "MediaSource",
    "MediaUnavailable",
    "MrcSettings",
    "NoAnswerSearch",
    "NoMediaSource",
    "NotAllowed",
    "Notifier",
    "NullNotifier",
    "OutboundMessage",
    "OutboundPort",
    "Priority",
    "QueryEmbedder",
    "QueueFilter",
    "QueueStats",
    "Reason",
    "ReplyResult",
    "Role",
    "RoleNotGrantable",
    "Status",
    "TicketDetail",
    "TicketNotFound",
    "TranscriptLine",
    "active_ticket_for_user",
    "active_ticket_id",
    "add_note",
    "add_office_time",
    "append_user_message",
    "audit",
    "can_edit_content",
    "can_review_content",
    "claim",
    "claim_next",
    "close_by_user",
    "cluster_embeddings",
    "cluster_gaps",
    "create_account",
    "create_console_app",
    "crisis_alert_text",
    "csrf_guard",
    "delete_user_data",
    "deliver_reply",
    "disable_account",
    "due_at",
    "enable_account",
    "export_transcript",
    "gap_questions",
    "get_ticket",
    "hash_password",
    "list_accounts",
    "list_audit",
    "list_queue",
    "next_opening",
    "notify_pending_crises",
    "open_ticket",
    "page_context",
    "purge_closed_before",
    "purge_handoff",
    "queue_stats",
    "record_reply",
    "redirect",
    "release",
    "release_idle_claims",
    "reply",
    "resolve",
    "send_outside_transaction",
    "signed_in",
    "tell_user",
    "transfer",
    "users_waiting",
    "verify_password",
    "view_ticket",
]
