"""Territory references and containment, independent of any database.

A territory is identified by its level and code. Every place carries the set of
territories that contain it (itself included), so containment and the finest shared
level are set operations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from matcher.identifiers import ascii_digits

# Finest first. An arrondissement municipal (Marseille 1er: 13201) sits inside its commune.
LEVELS: tuple[str, ...] = ("arrondissement", "commune", "epci", "departement", "region")
RANK: dict[str, int] = {level: rank for rank, level in enumerate(LEVELS)}

LEVEL_LABELS_FR: dict[str, str] = {
    "arrondissement": "arrondissement municipal",
    "commune": "commune",
    "epci": "EPCI",
    "departement": "département",
    "region": "région",
}

_PREFIXES: dict[str, str] = {
    "commune": "commune",
    "arrondissement": "arrondissement",
    "epci": "epci",
    "departement": "departement",
    "département": "departement",
    "dep": "departement",
    "region": "region",
    "région": "region",
    "reg": "region",
}

_CODE_PATTERNS: dict[str, re.Pattern[str]] = {
    "commune": re.compile(r"^(?:[0-9]{5}|2[AB][0-9]{3})$"),
    "arrondissement": re.compile(r"^[0-9]{5}$"),
    "epci": re.compile(r"^[0-9]{9}$"),
    "departement": re.compile(r"^(?:[0-9]{2}|2[AB]|9[78][0-9])$"),
    "region": re.compile(r"^[0-9]{2,3}$"),
}

# The references `parse_territory_ref` reads, in their written forms (JSON Schema and
# Python `re` alike), for the OpenAPI document: any string it matches is read. The parser
# also forgives what the pattern leaves out: case, spaces, digits of other scripts.
_COMMUNE = "(?:[0-9]{5}|2[ABab][0-9]{3})"
TERRITORY_REF_PATTERN = (
    f"^(?:commune:{_COMMUNE}|arrondissement:[0-9]{{5}}|epci:[0-9]{{9}}"
    "|(?:departement|département|dep):(?:[0-9]{2}|2[ABab]|9[78][0-9])"
    f"|(?:region|région|reg):[0-9]{{2,3}}|{_COMMUNE}|[0-9]{{9}})$"
)

_EXPECTED_FR: dict[str, str] = {
    "commune": "un code INSEE de commune à 5 caractères (13001, 2A004)",
    "arrondissement": "un code INSEE d'arrondissement municipal à 5 chiffres (13201)",
    "epci": "un numéro SIREN d'EPCI à 9 chiffres (200054807)",
    "departement": "un code de département (13, 2A, 974)",
    "region": "un code de région (93)",
}


class TerritoryRefError(ValueError):
    """A territory reference that cannot be read; the message is for the user (French)."""


class AmbiguousTerritoryRef(TerritoryRefError):
    def __init__(self, code: str) -> None:
        self.code = code
        super().__init__(
            f"« {code} » est ambigu : un code de 2 ou 3 caractères peut désigner un département "
            f"ou une région. Écrivez departement:{code} ou region:{code}."
        )


@dataclass(frozen=True)
class TerritoryRef:
    """A parsed reference. level 'commune' also matches an arrondissement municipal's code."""

    level: str
    code: str

    def __str__(self) -> str:
        return f"{self.level}:{self.code}"


def parse_territory_ref(raw: str) -> TerritoryRef:
    """Read `commune:13001`, `epci:200054807`, `departement:13`, `region:93`, or a bare
    5-character INSEE code or 9-digit SIREN.

    Raises
    ------
    TerritoryRefError
        With a French message saying what was expected.
    """
    # Fullwidth or other-script digits are the same code written otherwise.
    text = ascii_digits(raw).strip()
    if not text:
        raise TerritoryRefError("Référence de territoire vide.")
    if ":" in text:
        prefix, _, code = text.partition(":")
        level = _PREFIXES.get(prefix.strip().lower())
        if level is None:
            raise TerritoryRefError(
                f"Niveau de territoire inconnu « {prefix.strip()} » dans « {text} » : "
                "utilisez commune, epci, departement ou region."
            )
        code = code.strip().upper().replace(" ", "")
        if not _CODE_PATTERNS[level].match(code):
            raise TerritoryRefError(
                f"« {code} » n'est pas un code valide pour le niveau {LEVEL_LABELS_FR[level]} : "
                f"attendu {_EXPECTED_FR[level]}."
            )
        return TerritoryRef(level, code)
    code = text.upper().replace(" ", "")
    if _CODE_PATTERNS["commune"].match(code):
        return TerritoryRef("commune", code)
    if _CODE_PATTERNS["epci"].match(code):
        return TerritoryRef("epci", code)
    if 2 <= len(code) <= 3 and code.isalnum():
        raise AmbiguousTerritoryRef(code)
    raise TerritoryRefError(
        f"Référence de territoire illisible « {text} » : écrivez commune:13001, epci:200054807, "
        "departement:13 ou region:93 (un code seul de 5 caractères est un code INSEE de commune, "
        "de 9 chiffres un SIREN d'EPCI)."
    )


Key = tuple[str, str]  # (level, code)


@dataclass(frozen=True)
class Place:
    """A territory with every territory that contains it, itself included."""

    level: str
    code: str
    ancestors: frozenset[Key]

    @property
    def key(self) -> Key:
        return (self.level, self.code)

    def within(self, level: str, code: str) -> bool:
        """True when the territory (level, code) contains this place (or is it)."""
        return (level, code) in self.ancestors


def make_place(
    level: str,
    code: str,
    *,
    commune: str | None = None,
    epci: str | None = None,
    departement: str | None = None,
    region: str | None = None,
    touches: Iterable[Key] = (),
) -> Place:
    """`touches`: coarser territories a place overlaps without fitting inside, such as the
    départements of an EPCI that spans several; for matching they count as shared."""
    ancestors: set[Key] = {(level, code), *touches}
    for parent_level, parent_code in (
        ("commune", commune),
        ("epci", epci),
        ("departement", departement),
        ("region", region),
    ):
        if parent_code and RANK[parent_level] > RANK[level]:
            ancestors.add((parent_level, parent_code))
    return Place(level, code, frozenset(ancestors))


def _finest(keys: Iterable[Key]) -> Key | None:
    return min(keys, key=lambda k: (RANK[k[0]], k[1]), default=None)


def shared_territory(a: Iterable[Place], b: Iterable[Place]) -> Key | None:
    """The finest territory that contains a place of `a` and a place of `b`.

    An organisation working on Aix-en-Provence and one on Marseille share the EPCI
    (Métropole d'Aix-Marseille-Provence); one on Aix and one on the whole région share
    the région. None when they share nothing.
    """
    up_a: set[Key] = set().union(*(p.ancestors for p in a))
    up_b: set[Key] = set().union(*(p.ancestors for p in b))
    return _finest(up_a & up_b)


def shared_level(a: Iterable[Place], b: Iterable[Place]) -> str | None:
    """Level of `shared_territory`: arrondissement < commune < epci < departement < region."""
    key = shared_territory(a, b)
    return key[0] if key else None


def level_at_least_as_fine(level: str | None, bound: str) -> bool:
    """True when `level` is `bound` or finer (a filter `within=bound`)."""
    return level is not None and RANK[level] <= RANK[bound]
