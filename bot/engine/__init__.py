"""The channel-neutral conversation engine and its seam with the channels."""

from ._emergency import EmergencyContact, crisis_text
from ._engine import MENU_GROUPS, ConversationEngine, EngineOptions, UnderstandingPort, language_buttons
from ._port import ConversationPort, Outgoing
from ._render import answer_reply, format_day
from ._types import AttachmentKind, Button, IncomingMessage, Reply, ReplyKind

__all__ = [
    "MENU_GROUPS",
    "AttachmentKind",
    "Button",
    "ConversationEngine",
    "ConversationPort",
    "EmergencyContact",
    "EngineOptions",
    "IncomingMessage",
    "Outgoing",
    "Reply",
    "ReplyKind",
    "UnderstandingPort",
    "answer_reply",
    "crisis_text",
    "format_day",
    "language_buttons",
]
