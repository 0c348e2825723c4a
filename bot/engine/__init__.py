"""The channel-neutral conversation engine and its seam with the channels."""

from ._emergency import EmergencyContact, crisis_text
from ._engine import ConversationEngine, UnderstandingPort
from ._outbox import Outbox
from ._policy import (
    MENU_GROUPS,
    AppendToTicket,
    CloseTicket,
    Decision,
    DialoguePolicy,
    EngineOptions,
    Erase,
    OpenTicket,
    Person,
    PersonRecord,
    TicketView,
    Turn,
    TurnAnalysis,
    language_buttons,
)
from ._port import ChatPort, ConversationPort, OutboxPort, Outgoing
from ._render import Catalogue, answer_reply, format_day
from ._state import ConversationState
from ._types import AttachmentKind, Button, IncomingMessage, Reply, ReplyKind

__all__ = [
    "MENU_GROUPS",
    "AppendToTicket",
    "AttachmentKind",
    "Button",
    "Catalogue",
    "ChatPort",
    "CloseTicket",
    "ConversationEngine",
    "ConversationPort",
    "ConversationState",
    "Decision",
    "DialoguePolicy",
    "EmergencyContact",
    "EngineOptions",
    "Erase",
    "IncomingMessage",
    "OpenTicket",
    "Outbox",
    "OutboxPort",
    "Outgoing",
    "Person",
    "PersonRecord",
    "Reply",
    "ReplyKind",
    "TicketView",
    "Turn",
    "TurnAnalysis",
    "UnderstandingPort",
    "answer_reply",
    "crisis_text",
    "format_day",
    "language_buttons",
]
