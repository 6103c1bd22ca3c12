"""A territory as a person types it in a form: a name or a code."""

from __future__ import annotations

import re

from sqlalchemy.orm import Session

from api.kit.errors import InvalidInput
from api.territories.service import resolve_name, resolve_ref
from models import Territory

# A bare 2–3 character code in a form is a département (13, 2A, 974): what people mean
# when they type it; the API refuses it as ambiguous (it could be a région).
_DEPARTEMENT = re.compile(r"^\s*(?:[0-9]{2}|2[ABab]|97[1-6])\s*$")
_REFERENCE = re.compile(r"^\s*(?:[a-zA-Zé]+\s*:\s*\S+|[0-9][0-9AaBb][0-9]{3}|[0-9]{9})\s*$")


def resolve_typed(session: Session, raw: str) -> Territory:
    """The territory a form's text names: a département number (« 13 », « 2A »), a
    reference (« commune:13001 », « epci:200054807 », a bare INSEE code or SIREN), else a
    name (« Marseille », « Bouches-du-Rhône », « Saint-Denis (93) », see `resolve_name`).
    Raises InvalidInput (empty, unreadable, or a name several territories bear) or
    UnknownTerritory (a NotFound: nothing bears it), with French messages."""
    # NUL cannot be stored nor compared by PostgreSQL: a space, as any other blank.
    text = " ".join(raw.replace("\x00", " ").split())
    if not text:
        raise InvalidInput("Écrivez un territoire : nom de commune, de département ou code.")
    if len(text) > 200:
        raise InvalidInput("Nom de territoire trop long (200 caractères au plus).")
    if _DEPARTEMENT.match(text):
        return resolve_ref(session, f"departement:{text.upper()}")
    if _REFERENCE.match(text):
        return resolve_ref(session, text)
    return resolve_name(session, text)
