"""Composing and sending e-mail: the standard library's `email` and `smtplib`.

Messages are rendered from Jinja2 templates (`api/templates/mail/NAME.txt`, and
`NAME.html` when present: a plain-text part always, an HTML alternative beside it). With
an SMTP host configured they are sent through it (STARTTLS, implicit TLS, or plain for a
local relay); without one (the embedded demo) they are written as `.eml` files to the
outbox folder and their text is logged, so that links can be followed from the console.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from pathlib import Path
from typing import Any, Protocol

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from api.kit.settings import Settings

log = logging.getLogger("maillage.mail")
TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "mail"

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


# French typography: no line break inside « … » nor before a high punctuation mark.
_BEFORE_PUNCTUATION = re.compile(r" ([»:;?!])")
_AFTER_GUILLEMET = re.compile(r"« ")


def _french_spaces(text: str) -> str:
    """`text` with non-breaking spaces inside « … » and before : ; ? !"""
    return _AFTER_GUILLEMET.sub("«\u00a0", _BEFORE_PUNCTUATION.sub("\u00a0\\1", str(text)))


def _fill(text: str, first: str = "", rest: str | None = None, width: int = 76) -> str:
    """`text` as lines of `width` characters at most, the first one starting with `first`,
    the others with `rest` (`first` as spaces by default); a word longer than a line (a
    link) is never cut, nor a line broken where French puts a non-breaking space."""
    return textwrap.fill(
        _french_spaces(text),
        width=width,
        initial_indent=first,
        subsequent_indent=" " * len(first) if rest is None else rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


_env.filters["fill"] = _fill
_env.filters["french_spaces"] = _french_spaces


class MailError(Exception):
    """Sending failed. `permanent` (an SMTP 5xx answer: the address or the message is
    refused) is not worth retrying soon; any other failure (network, timeout, 4xx) is."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class Rendered:
    text: str
    html: str | None


def render(name: str, context: Mapping[str, Any]) -> Rendered:
    """The plain-text part (`NAME.txt`) and, when the template exists, the HTML part."""
    text = _env.get_template(f"{name}.txt").render(context)
    html = None
    if (TEMPLATES / f"{name}.html").exists():
        html = _env.get_template(f"{name}.html").render(context)
    return Rendered(text, html)


def sender_domain(settings: Settings) -> str:
    address = parseaddr(settings.mail_from)[1]
    return address.rpartition("@")[2] or "localhost"


def compose(
    settings: Settings,
    *,
    to: str,
    subject: str,
    body: Rendered,
    headers: Mapping[str, str] | None = None,
    message_id: str | None = None,
) -> EmailMessage:
    """A message ready to send. `message_id` (a `<…@…>` id) is kept when given, so that a
    message sent again is the same message to mail clients."""
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id or make_msgid(domain=sender_domain(settings))
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body.text)
    if body.html is not None:
        # Base64, which C encodes, rather than quoted-printable, which Python does line by
        # line: a digest's HTML (inline styles) is tens of kilobytes, and a weekly run
        # composes thousands of them. The plain text stays quoted-printable (readable).
        message.add_alternative(body.html, subtype="html", cte="base64")
    return message


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver one message. Raises MailError."""
        ...


class SmtpMailer:
    """One SMTP connection per message (a digest run sends few enough)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "tls":
            return smtplib.SMTP_SSL(
                s.smtp_host,
                s.smtp_port,
                timeout=s.smtp_timeout,
                context=ssl.create_default_context(),
            )
        smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        if s.smtp_security == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        return smtp

    def send(self, message: EmailMessage) -> None:
        s = self.settings
        try:
            with self._connect() as smtp:
                if s.smtp_username:
                    smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
                smtp.send_message(message)
        except smtplib.SMTPResponseException as exc:
            raise MailError(
                f"le serveur SMTP a répondu {exc.smtp_code} : {_text(exc.smtp_error)}",
                permanent=500 <= exc.smtp_code < 600,
            ) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            raise MailError(
                f"adresse refusée par le serveur SMTP ({', '.join(map(str, codes))})",
                permanent=all(500 <= c < 600 for c in codes),
            ) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"envoi impossible par {s.smtp_host}:{s.smtp_port} : {exc}") from exc


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


class OutboxMailer:
    """No SMTP server: each message becomes an `.eml` file in the outbox, and its text is
    logged (the links in it can be followed from the console)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path_of(self, message: EmailMessage) -> Path:
        ident = str(message["Message-ID"]).strip("<>").replace("/", "_").replace("@", "_at_")
        return self.folder / f"{ident}.eml"

    def send(self, message: EmailMessage) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.path_of(message)
            path.write_bytes(message.as_bytes())
        except OSError as exc:
            raise MailError(f"écriture impossible dans {self.folder} : {exc}") from exc
        part = message.get_body(preferencelist=("plain",))
        text = part.get_content() if part is not None else ""
        log.warning(
            "Courriel non envoyé (pas de serveur SMTP configuré), écrit dans %s\n"
            "À : %s\nObjet : %s\n\n%s",
            path,
            message["To"],
            message["Subject"],
            text,
        )


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when a host is configured, else the outbox."""
    if settings.smtp_host:
        return SmtpMailer(settings)
    return OutboxMailer(settings.outbox)
