"""The chat.* and notification.* API methods: each calls one method of the chat or the
notification service and shapes the answer."""

from __future__ import annotations

from typing import Any

from node.core.api import (
    LIMIT,
    NOT_FOUND,
    ORDER_ID,
    PEER_ID,
    Args,
    Method,
    Param,
    array,
    boolean,
    integer,
    nullable,
    obj,
    string,
)
from node.mail.chat import MAX_LIST, ChatService
from node.mail.notifications import NotificationService
from protocol.mail import MAX_TEXT

MESSAGE_ID = string(32, 1)
TIME = nullable(integer())
MESSAGE = obj({
    "message_id": string(), "from": PEER_ID, "to": PEER_ID, "peer_id": PEER_ID,
    "outgoing": boolean(), "text": string(), "order_id": nullable(string()), "sent": integer(),
    "delivered": TIME, "read": TIME, "status": {"enum": ["pending", "delivered", "read"]},
    "held_by": nullable(integer())},
    ("message_id", "from", "to", "peer_id", "outgoing", "text", "order_id", "sent",
     "delivered", "read", "status", "held_by"))
CONVERSATION = obj({
    "peer_id": PEER_ID, "name": nullable(string()), "last_sent": integer(),
    "last_text": string(), "last_outgoing": boolean(), "messages": integer(),
    "unread": integer()},
    ("peer_id", "name", "last_sent", "last_text", "last_outgoing", "messages", "unread"))
NOTE = obj({"id": integer(1), "kind": string(), "text": string(), "ref": nullable(string()),
            "peer_id": nullable(string()), "created": integer(), "read": TIME},
           ("id", "kind", "text", "ref", "peer_id", "created", "read"))
READ = obj({"read": integer()}, ("read",))


def chat_methods(chat: ChatService) -> list[Method]:
    async def send(p: Args) -> Any:
        return {"message_id": await chat.send(p["peer_id"], p["text"], p["order_id"])}

    async def messages(p: Args) -> Any:
        return await chat.messages(p["peer_id"], p["order_id"], p["limit"])

    async def read(p: Args) -> Any:
        return {"read": await chat.mark_read(p["message_id"], p["peer_id"])}

    async def conversations(p: Args) -> Any:
        return await chat.conversations()

    return [
        Method("chat.send", "Send a chat message (signed, sealed to the peer, delivered "
               "directly or held for it while it is offline); 20 to one peer at once, then "
               "one a second.",
               (Param("peer_id", PEER_ID, True), Param("text", string(MAX_TEXT, 1), True),
                Param("order_id", ORDER_ID)),
               obj({"message_id": string()}, ("message_id",)), send, (LIMIT,)),
        Method("chat.list", "Messages, oldest first (of one peer, of one order).",
               (Param("peer_id", PEER_ID), Param("order_id", ORDER_ID),
                Param("limit", integer(1, MAX_LIST), default=100)),
               array(MESSAGE, MAX_LIST), messages),
        Method("chat.read", "Mark a message to you read (message_id), or a whole "
               "conversation (peer_id), and send the read receipts.",
               (Param("message_id", MESSAGE_ID), Param("peer_id", PEER_ID)), READ, read,
               (NOT_FOUND,)),
        Method("chat.conversations", "Every conversation, newest first.", (),
               array(CONVERSATION, 10**6), conversations),
    ]


def notification_methods(notes: NotificationService) -> list[Method]:
    async def note_list(p: Args) -> Any:
        return await notes.notes(p["unread_only"], p["limit"])

    async def note_read(p: Args) -> Any:
        return {"read": await notes.mark_read(p["id"], p["all"])}

    return [
        Method("notification.list", "Notifications (new orders, payments, disputes, chat, "
               "ratings), newest first.",
               (Param("unread_only", boolean(), default=False),
                Param("limit", integer(1, MAX_LIST), default=100)),
               array(NOTE, MAX_LIST), note_list),
        Method("notification.read", "Mark one notification read (id), or all of them.",
               (Param("id", integer(1)), Param("all", boolean(), default=False)), READ,
               note_read, (NOT_FOUND,)),
    ]
