"""Composing and sending e-mail: the standard library's `email` and `smtplib`.

Messages are rendered from Jinja2 templates (`api/templates/mail/NAME.txt`, and
`NAME.html` when present: a plain-text part always, an HTML alternative beside it). With
an SMTP host configured they are sent through it (STARTTLS, implicit TLS, or plain for a
local relay); without one (the embedded demo) they are written as `.eml` files to the
outbox folder and their text is logged, so that links can be followed from the console.
"""

from __future__ import annotations

import binascii
import logging
import re
import smtplib
import ssl
import textwrap
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from email.contentmanager import ContentManager
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache
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
    # str(): the template may pass Markup or another object; the cache keys on plain text.
    return _filled(str(text), first, rest, width)


@lru_cache(maxsize=65536)
def _filled(text: str, first: str, rest: str | None, width: int) -> str:
    """`_fill`, remembered: a weekly run wraps the same call titles, funders and reasons in
    hundreds of digests, and textwrap is slow."""
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
    # The plain text quoted-printable (its source stays readable), encoded in C; the
    # HTML (inline styles, tens of kilobytes for a digest) in base64, also encoded in C.
    # The standard library's own quoted-printable goes character by character in Python:
    # a weekly run composes thousands of these.
    message.set_content(body.text, content_manager=_FAST_TEXT)
    if body.html is not None:
        message.add_alternative(body.html, subtype="html", cte="base64")
    return message


def _set_quoted_printable_text(message: EmailMessage, text: str, subtype: str = "plain") -> None:
    """`text` as the message's text/`subtype` content, UTF-8, quoted-printable (RFC 2045
    §6.7) by `binascii.b2a_qp`: lines of 76 characters at most (soft breaks), line ends
    kept, trailing spaces encoded."""
    message["Content-Type"] = f'text/{subtype}; charset="utf-8"'
    message["Content-Transfer-Encoding"] = "quoted-printable"
    message.set_payload(binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii"))


_FAST_TEXT = ContentManager()
_FAST_TEXT.add_set_handler(str, _set_quoted_printable_text)


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None:
        """Deliver one message. Raises MailError."""
        ...

    def close(self) -> None:
        """Release what sending holds (a kept SMTP connection); sending again is allowed."""
        ...


class SmtpMailer:
    """Sends through SMTP (STARTTLS, implicit TLS, or plain for a local relay).

    By default one connection per message: the web app sends few, from many threads.
    With `keep_open` (a digest run: thousands of messages one after the other), one
    connection carries every message until `close()`, saving a connection, a greeting,
    a TLS handshake and a login per message; a connection the server closed while idle is
    opened again, and any other error drops it (the next message opens a fresh one).
    Thread-safe: sends through one kept connection take turns.
    """

    def __init__(self, settings: Settings, *, keep_open: bool = False) -> None:
        self.settings = settings
        self.keep_open = keep_open
        self._smtp: smtplib.SMTP | None = None
        self._lock = threading.Lock()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.smtp_security == "tls":
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                s.smtp_host,
                s.smtp_port,
                timeout=s.smtp_timeout,
                context=ssl.create_default_context(),
            )
        else:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
        try:
            if s.smtp_security == "starttls":
                smtp.starttls(context=ssl.create_default_context())
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password.get_secret_value())
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def send(self, message: EmailMessage) -> None:
        """Deliver one message. Raises MailError: `permanent` for a 5xx answer (or every
        recipient refused with one), else temporary (4xx, connection, time-out)."""
        s = self.settings
        try:
            if not self.keep_open:
                with self._connect() as smtp:
                    smtp.send_message(message)
                return
            with self._lock:
                self._send_kept(message)
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

    def _send_kept(self, message: EmailMessage) -> None:
        """Send on the kept connection (the caller holds the lock)."""
        reused = self._smtp is not None
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
            return
        except smtplib.SMTPServerDisconnected:
            self._drop()
            if not reused:
                raise
        except BaseException:
            self._drop()
            raise
        # The server closed the kept connection while it was idle (servers time idle
        # clients out): once more on a new one.
        self._smtp = self._connect()
        try:
            self._smtp.send_message(message)
        except BaseException:
            self._drop()
            raise

    def _drop(self) -> None:
        if self._smtp is not None:
            _close_quietly(self._smtp)
            self._smtp = None

    def close(self) -> None:
        """End the kept connection (QUIT), if any; sending again opens a new one."""
        with self._lock:
            if self._smtp is not None:
                try:
                    self._smtp.quit()
                except (smtplib.SMTPException, OSError):
                    pass
                self._drop()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    try:
        smtp.close()
    except OSError:
        pass


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

    def close(self) -> None:
        """Nothing is held between messages."""

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


def mailer_for(settings: Settings, *, keep_open: bool = False) -> Mailer:
    """SMTP when a host is configured (`keep_open`: one connection for many messages, to
    close with `SmtpMailer.close`), else the outbox."""
    if settings.smtp_host:
        return SmtpMailer(settings, keep_open=keep_open)
    return OutboxMailer(settings.outbox)
