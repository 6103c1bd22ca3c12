"""A real SMTP server (aiosmtpd) on 127.0.0.1 for e-mail tests: it keeps what it receives."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    """Messages received, in order, parsed with the modern e-mail policy."""

    messages: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)  # recipients answered 550
    # Recipient → how many more times the server cuts the connection once their message's
    # data has arrived, without keeping it nor answering (a server dropping mid-message).
    drop: dict[str, int] = field(default_factory=dict)
    # The client address and port of each message kept: one per connection used.
    peers: list[Any] = field(default_factory=list)
    # Called with the count once a message is kept, before the server answers its DATA
    # (a test may kill the sender there: its SMTP transaction is then cut short).
    on_message: Callable[[int], None] | None = None

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 Adresse inconnue"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        for address in envelope.rcpt_tos:
            if self.drop.get(address, 0) > 0:
                self.drop[address] -= 1
                server.transport.close()
                return "421 4.4.2 Connexion interrompue"  # never reaches the client
        message = message_from_bytes(envelope.original_content, policy=policy.default)
        self.messages.append(message)  # type: ignore[arg-type]
        self.peers.append(session.peer)
        if self.on_message is not None:
            self.on_message(len(self.messages))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def text_of(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    content: str = part.get_content()
    return content
