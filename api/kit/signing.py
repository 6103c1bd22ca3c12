"""Signed, URL-safe tokens for links sent by e-mail (itsdangerous).

A link that must work without signing in (confirm an address, unsubscribe in one click,
open the web view of a digest) carries a token signed with the deployment's secret key:
the token names what it grants (a salt per purpose, so that a confirmation token cannot
unsubscribe) and the exact row and address it was made for.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from api.kit.settings import Settings

KEY_FILE = "secret_key"


class InvalidToken(Exception):
    """A token that was not signed by this deployment for this purpose, or has expired.
    `expired` tells the two apart, for the message shown."""

    def __init__(self, expired: bool) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def secret_key(settings: Settings) -> str:
    """The configured key, else the one kept in data_dir/secret_key (created on first use,
    readable by its owner only)."""
    configured = settings.secret_key.get_secret_value()
    if configured:
        return configured
    path = Path(settings.data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL: two processes starting at once keep the same key.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


class Signer:
    """Signs and reads the tokens of one purpose (the itsdangerous salt)."""

    def __init__(self, settings: Settings, purpose: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret_key(settings), salt=purpose)

    def sign(self, payload: dict[str, Any]) -> str:
        return self._serializer.dumps(payload)

    def read(self, token: str, max_age_seconds: int | None = None) -> dict[str, Any]:
        """The payload. Raises InvalidToken (bad signature, other purpose, expired)."""
        try:
            payload = self._serializer.loads(token, max_age=max_age_seconds)
        except SignatureExpired as exc:
            raise InvalidToken(expired=True) from exc
        except BadSignature as exc:
            raise InvalidToken(expired=False) from exc
        if not isinstance(payload, dict):
            raise InvalidToken(expired=False)
        return payload
