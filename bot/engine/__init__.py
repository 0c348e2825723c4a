"""The channel-neutral conversation engine and its seam with the channels."""

from ._engine import (
    ConversationEngine,
    EmergencyContact,
    EngineOptions,
    UnderstandingPort,
    answer_reply,
    crisis_text,
    language_buttons,
)
from ._port import ConversationPort, Outgoing
from ._types import AttachmentKind, Button, IncomingMessage, Reply, ReplyKind

__all__ = [
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
    "language_buttons",
]
