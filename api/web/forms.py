"""What the pages' forms share: a write tried inside a savepoint (a refused write leaves the
request's transaction as it was, so the page can be shown again with the French message),
and small readers of form fields."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Annotated, TypeVar

from fastapi import Form, Path
from sqlalchemy.orm import Session

from api.kit.errors import AppError, Conflict, InvalidInput, NotFound

T = TypeVar("T")

RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]
# Form fields arrive as text and are checked by the page: a missing or odd field is a
# French message next to it, never the API's 422.
Text = Annotated[str, Form(max_length=100_000)]
Texts = Annotated[list[str], Form(max_length=60)]

REFUSALS = (Conflict, InvalidInput, NotFound)


def attempt(session: Session, write: Callable[[], T]) -> tuple[T | None, AppError | None]:
    """Run `write` in a savepoint: (its result, None), or (None, the error) when a service
    refused it (409, 422, 404) — the savepoint is then rolled back, the request's
    transaction goes on and commits nothing of the refused write."""
    try:
        with session.begin_nested():
            return write(), None
    except REFUSALS as exc:
        return None, exc


def row_id(raw: str) -> int | None:
    """A form's number of a row (1 to 2³¹−1), None for anything else."""
    text = raw.strip()
    if not text.isdigit() or len(text) > 10:
        return None
    value = int(text)
    return value if 1 <= value <= 2**31 - 1 else None


def days_label(days: int | None) -> str:
    """The countdown of a deadline: « J-12 », « Dernier jour », « Permanent »."""
    if days is None:
        return "Permanent"
    if days == 0:
        return "Dernier jour"
    if days < 0:
        return "Clos"
    return f"J-{days}"


def french_date(day: date | None) -> str:
    """« 14 mars 2027 » (empty for none)."""
    if day is None:
        return ""
    months = (
        "janvier février mars avril mai juin juillet août septembre octobre novembre décembre"
    ).split()
    first = "1er" if day.day == 1 else str(day.day)
    return f"{first} {months[day.month - 1]} {day.year}"
