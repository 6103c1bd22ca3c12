"""Postal codes as people type them (spaces, a dropped leading zero, CEDEX), and why
one finds no commune. Source: La Poste's "base officielle des codes postaux" (loaded with
the referential, `TerritoryPostalCode`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.kit.errors import InvalidInput
from matcher.identifiers import ascii_digits
from models import Territory
from models.enums import TerritoryLevel

SEPARATORS = re.compile(r"[\s.\u00a0\u202f]+")
_CEDEX = re.compile(r"cedex(?:\s*[0-9]{1,2})?\s*$", re.IGNORECASE)
CORSICAN_INSEE = re.compile(r"^2[AB][0-9]{3}$")
_EXAMPLE = "13001 pour Marseille 1er, 01500 pour Ambérieu-en-Bugey"
# What `read_postal_code` reads, in the written forms the OpenAPI document shows (JSON
# Schema and Python `re` alike): five digits, or four not starting with 0, spaces or dots
# between them, a CEDEX mention after. It also forgives other separators and digits.
POSTAL_CODE_PATTERN = (
    r"^ *(?:[0-9](?:[ .]?[0-9]){4}|[1-9](?:[ .]?[0-9]){3}) *"
    r"(?:[Cc][Ee][Dd][Ee][Xx](?: *[0-9]{1,2})?)? *$"
)


@dataclass(frozen=True)
class PostalCodeQuery:
    """A postal code as typed, read: its five digits, whether it said CEDEX, and notes on
    how it was read when it was not taken as typed."""

    code: str
    cedex: bool
    notes: tuple[str, ...] = ()


def read_postal_code(raw: str) -> PostalCodeQuery:
    """What people type for a postal code, read as five digits: spaces anywhere (a cell
    copied with its trailing space, '13 001'), fullwidth digits, a 'CEDEX' mention, and
    four digits whose leading zero a spreadsheet dropped ('1500' is 01500: the only codes
    that start with 0 are those of départements 01 to 09). Raises InvalidInput saying what
    is wrong with anything else."""
    shown = " ".join(raw.split())
    text = ascii_digits(raw)
    cedex = _CEDEX.search(text)
    if cedex is not None:
        text = text[: cedex.start()]
    compact = SEPARATORS.sub("", text)
    if not compact:
        raise InvalidInput(f"Le code postal est vide : il a 5 chiffres ({_EXAMPLE}).")
    if CORSICAN_INSEE.match(compact.upper()):
        raise InvalidInput(
            f"« {shown} » est un code INSEE de commune corse, pas un code postal (ceux de la "
            f"Corse commencent par 20) : cherchez-le avec /api/v1/territories/{compact.upper()}."
        )
    if not (compact.isascii() and compact.isdigit()):
        raise InvalidInput(
            f"« {shown} » n'est pas un code postal : un code postal français a 5 chiffres, sans "
            f"lettre ni signe ({_EXAMPLE})."
        )
    notes: tuple[str, ...] = ()
    if len(compact) == 4 and not compact.startswith("0"):
        notes = (
            f"Code postal « {compact} » lu comme 0{compact} : un code postal a 5 chiffres, et "
            "un tableur a sans doute supprimé le zéro initial (départements 01 à 09).",
        )
        compact = "0" + compact
    elif len(compact) != 5:
        raise InvalidInput(
            f"« {shown} » n'est pas un code postal : il a {len(compact)} chiffre(s), un code "
            f"postal français en a 5 ({_EXAMPLE})."
        )
    return PostalCodeQuery(code=compact, cedex=cedex is not None, notes=notes)


def _departements_of_postal_code(code: str) -> list[str]:
    """The départements whose postal codes start as `code` does (Corsica's 20 is 2A or
    2B; overseas ones have three digits)."""
    if code.startswith("20"):
        return ["2A", "2B"]
    if code.startswith(("97", "98")):
        return [code[:3]]
    return [code[:2]]


def postal_code_miss(session: Session, query: PostalCodeQuery) -> str:
    """Why no territory has this postal code, in French: a CEDEX code (not a place), or a
    number that starts no département."""
    code = query.code
    departements = session.scalars(
        select(Territory)
        .where(
            Territory.level == TerritoryLevel.departement,
            Territory.code.in_(_departements_of_postal_code(code)),
        )
        .order_by(Territory.code)
    ).all()
    if not departements:
        return (
            f"Aucune commune n'a le code postal {code}, et aucun département ne correspond à son "
            f"début ({code[:2]}) : vérifiez le code, ou cherchez la commune par son nom (q)."
        )
    where = " ou ".join(f"{d.name} ({d.code})" for d in departements)
    cedex = (
        f"« {code} CEDEX » est un code CEDEX"
        if query.cedex
        else f"Le code {code} n'est pas dans la base officielle des codes postaux de La Poste : "
        "c'est sans doute un code CEDEX"
    )
    return (
        f"{cedex} (courrier d'entreprise à distribution exceptionnelle). Un code CEDEX est "
        "attribué à une entreprise, une administration ou une boîte postale pour trier son "
        "courrier ; il ne désigne pas un lieu, aucune commune ne le porte. L'adresse est dans "
        f"le département {where} : cherchez la commune par son nom (q=…) ou par son code "
        "postal géographique."
    )
