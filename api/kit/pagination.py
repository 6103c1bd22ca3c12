"""Pages of a list: `limit` with `offset`, or an opaque `cursor` naming where the previous
page ended (keyset pagination: no duplicate and no miss while rows are added)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_

from api.kit.errors import InvalidInput

Scalar = str | int | None

_CURSOR_LOC: list[str | int] = ["query", "cursor"]


def scope_of(**params: Any) -> str:
    """A fingerprint of what a list was asked for (filters and sort): a cursor only serves
    the list it was made for."""
    raw = json.dumps(params, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def encode_cursor(scope: str, key: Sequence[Scalar]) -> str:
    """The opaque cursor after the item whose sort key (ending with its id) is `key`."""
    raw = json.dumps({"s": scope, "k": list(key)}, separators=(",", ":"), ensure_ascii=False)
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(
        message, errors=[{"loc": _CURSOR_LOC, "msg": message, "type": "value_error"}]
    )


def decode_cursor(cursor: str, scope: str, parsers: Sequence[Callable[[object], Any]]) -> list[Any]:
    """The sort key a cursor holds, each value read by its parser (which raises ValueError
    on a value the column cannot hold). Raises InvalidInput (a cursor that was not made by
    `encode_cursor`, or was made for another list)."""
    unreadable = "Curseur illisible : reprenez le parcours depuis la première page."
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError) as exc:
        raise _invalid(unreadable) from exc
    key = data.get("k") if isinstance(data, dict) else None
    if not isinstance(key, list) or len(key) != len(parsers):
        raise _invalid(unreadable)
    if data.get("s") != scope:
        raise _invalid(
            "Ce curseur a été donné pour d'autres filtres ou un autre tri : "
            "reprenez le parcours depuis la première page."
        )
    try:
        return [parse(value) for parse, value in zip(parsers, key, strict=True)]
    except (ValueError, TypeError) as exc:
        raise _invalid(unreadable) from exc


def key_id(value: object) -> int:
    """A row id read back from a cursor."""
    if type(value) is not int or not 0 < value < 2**31:
        raise ValueError("not an id")
    return value


def key_text(value: object) -> str:
    """A text sort key read back from a cursor (one the databases can compare)."""
    if not isinstance(value, str) or "\x00" in value or len(value) > 1000:
        raise ValueError("not a text key")
    value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError, a ValueError
    return value


def key_datetime(value: object) -> datetime:
    """A timestamp sort key read back from a cursor (ISO 8601, as `datetime.isoformat`)."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("not a timestamp")
    return datetime.fromisoformat(value)


def key_date(value: object) -> date:
    """A date sort key read back from a cursor (ISO 8601, as `date.isoformat`)."""
    if not isinstance(value, str) or len(value) != 10:
        raise ValueError("not a date")
    return date.fromisoformat(value)


def after(columns: Sequence[tuple[Any, bool]], key: Sequence[Any]) -> ColumnElement[bool]:
    """Rows strictly after `key` in the order of `columns` ((column, descending) pairs, the
    last one unique): `(a > ka) OR (a = ka AND b > kb)`…, with `<` where descending."""
    (column, descending), *rest = columns
    beyond: ColumnElement[bool] = column < key[0] if descending else column > key[0]
    if not rest:
        return beyond
    return or_(beyond, and_(column == key[0], after(rest, key[1:])))
