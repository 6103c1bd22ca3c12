"""Bulk onboarding, step one: a file's rows grouped into organisations and every cell
checked, without the database (see `service.py` for the steps that follow)."""

import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from api.imports.formats import (
    COLUMNS,
    Problem,
    Table,
)
from api.imports.schemas import (
    KIND_LABELS,
    STATEMENT_KIND_LABELS,
    VISIBILITY_LABELS,
)
from api.kit.errors import InvalidInput, french_errors
from api.organisations.schemas import OrganisationIn
from matcher.identifiers import normalise_siren, siren_error
from matcher.text import name_key as fold_name
from models.enums import OrganisationKind, StatementKind, Visibility

E = TypeVar("E")


class ImportRefused(InvalidInput):
    """The file is refused as a whole; `errors` lists every problem by row and column."""

    def __init__(self, problems: Sequence[Problem], columns: Sequence[str] = COLUMNS) -> None:
        problems = sorted(problems, key=lambda p: (p.row or 0, _column_order(p.column, columns)))
        first = problems[0]
        where = _where(first)
        detail = (
            f"Fichier refusé, rien n'a été importé : {len(problems)} problème(s). "
            f"{where}{first.msg}"
        )
        super().__init__(
            detail,
            errors=[{"loc": p.loc(), "msg": p.msg, "type": "import"} for p in problems],
        )
        self.problems = problems


def _where(problem: Problem) -> str:
    record = problem.unit == "record"
    parts = []
    if problem.row is not None:
        parts.append(f"{'enregistrement' if record else 'ligne'} {problem.row}")
    if problem.column is not None:
        parts.append(f"{'champ' if record else 'colonne'} {problem.column}")
    return (", ".join(parts).capitalize() + " : ") if parts else ""


def describe(problem: Problem) -> str:
    """'Ligne 7, colonne territoires : …' — a problem as a sentence."""
    return _where(problem) + problem.msg


def _column_order(column: str | None, columns: Sequence[str] = COLUMNS) -> int:
    return list(columns).index(column) if column is not None and column in columns else -1


# --- reading cells (no database) ---------------------------------------------------------


def _key(text: str) -> str:
    """Accents, case and punctuation ignored: how a label typed in a cell is compared."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    return re.sub(r"[^a-z0-9]+", " ", text).strip()


def _vocabulary(labels: Mapping[E, tuple[str, ...]]) -> dict[str, E]:
    out: dict[str, E] = {}
    for value, names in labels.items():
        out[_key(str(value))] = value
        for name in names:
            out[_key(name)] = value
    return out


_KINDS = _vocabulary(KIND_LABELS)
_STATEMENT_KINDS = _vocabulary(STATEMENT_KIND_LABELS)
_VISIBILITIES = _vocabulary(VISIBILITY_LABELS)


def name_key(name: str) -> str:
    """How organisation and contact names are matched: as the API searches them and tells
    duplicates (`Organisation.name_key`): accents, case, punctuation and apostrophe style
    aside ('Coopérative Hlm' and 'COOPERATIVE HLM', 'L’Établi' and "l'etabli" are one)."""
    return fold_name(name)


def statement_key(kind: StatementKind, text: str) -> tuple[StatementKind, str]:
    return kind, " ".join(unicodedata.normalize("NFC", text).casefold().split())


def territory_tokens(cell: str) -> list[str]:
    """The references of a `territoires` cell, separated by commas, semicolons, spaces or
    line breaks. A bare 4-digit code is a commune code whose leading zero a spreadsheet
    dropped (1053 -> 01053: no other reference has 4 characters)."""
    cell = re.sub(r"\s*:\s*", ":", cell)
    tokens = [t for t in re.split(r"[\s,;|]+", cell) if t]
    return [
        ("0" + t if re.fullmatch(r"\d{4}", t) else re.sub(r"^(commune:)(\d{4})$", r"\g<1>0\2", t))
        for t in tokens
    ]


def _list(cell: str) -> list[str]:
    return [t.strip() for t in re.split(r"[,;\n]+", cell) if t.strip()]


@dataclass
class _StatementRow:
    row: int
    kind: StatementKind
    text: str
    visibility: Visibility | None
    themes: list[str] | None


@dataclass
class _ContactRow:
    row: int
    name: str
    role: str | None
    email: str | None
    phone: str | None


@dataclass
class Group:
    """One organisation of the file: its rows, its values and where each came from."""

    row: int  # its first row
    name: str
    siren: str | None = None
    kind: OrganisationKind | None = None
    values: dict[str, tuple[str, int]] = field(default_factory=dict)  # column -> (value, row)
    territories: tuple[list[str], int] | None = None
    statements: list[_StatementRow] = field(default_factory=list)
    contacts: list[_ContactRow] = field(default_factory=list)
    data: OrganisationIn | None = None  # the group checked by the API's own schema

    def value(self, column: str) -> str | None:
        found = self.values.get(column)
        return found[0] if found else None


# Where a field of OrganisationIn comes from in the file.
_FIELD_COLUMNS = {
    "name": "nom",
    "kind": "type",
    "legal_form": "forme_juridique",
    "siren": "siren",
    "website": "site_web",
    "description": "description",
    "territories": "territoires",
}
_STATEMENT_COLUMNS = {"kind": "type_enonce", "text": "enonce", "themes": "thematiques"}
_STATEMENT_COLUMNS["visibility"] = "visibilite"
_CONTACT_COLUMNS = {
    "name": "contact_nom",
    "role": "contact_fonction",
    "email": "contact_courriel",
    "phone": "contact_telephone",
}


def group_rows(table: Table) -> list[Group]:
    """The organisations of the file, their rows grouped by SIREN, else by name, every cell
    checked. Raises ImportRefused with every problem."""
    groups, problems = read_groups(table)
    if problems:
        raise ImportRefused(problems)
    return groups


def read_groups(table: Table) -> tuple[list[Group], list[Problem]]:
    problems: list[Problem] = []
    groups: list[Group] = []
    by_siren: dict[str, Group] = {}
    by_name: dict[str, Group] = {}
    for row in table.rows:
        n = row.number
        name = " ".join(row.get("nom").split())
        if not name:
            problems.append(Problem("Le nom de l'organisation est vide.", n, "nom"))
            continue
        siren = None
        raw_siren = row.get("siren")
        if raw_siren:
            error = siren_error(raw_siren)
            if error:
                problems.append(Problem(error, n, "siren"))
            else:
                siren = normalise_siren(raw_siren)
        group = _group_of(n, name, siren, by_siren, by_name, problems)
        if group is None:
            continue
        new = group.row == n
        if new:
            groups.append(group)
        adds = new | _read_values(group, row.cells, n, problems)
        adds |= _read_statement(group, row.cells, n, problems)
        adds |= _read_contact(group, row.cells, n, problems)
        if not adds:
            problems.append(
                Problem(
                    f"Ligne en double : « {group.name} » figure déjà ligne {group.row} et "
                    "cette ligne n'ajoute rien.",
                    n,
                    "nom",
                )
            )
    for group in groups:
        _check_group(group, problems)
    return groups, problems


def _group_of(
    n: int,
    name: str,
    siren: str | None,
    by_siren: dict[str, Group],
    by_name: dict[str, Group],
    problems: list[Problem],
) -> Group | None:
    key = name_key(name)
    named = by_name.get(key)
    if siren is not None:
        group = by_siren.get(siren)
        if group is not None:
            if name_key(group.name) != key:
                problems.append(
                    Problem(
                        f"Le SIREN {siren} est déjà celui de « {group.name} » (ligne "
                        f"{group.row}) : une organisation n'a qu'un nom.",
                        n,
                        "nom",
                    )
                )
                return None
            return group
        if named is not None:
            if named.siren is None:  # an earlier row named it without its SIREN
                named.siren = siren
                by_siren[siren] = named
                return named
            problems.append(
                Problem(
                    f"Nom en double : « {name} » figure déjà ligne {named.row} avec le SIREN "
                    f"{named.siren}.",
                    n,
                    "nom",
                )
            )
            return None
        group = Group(row=n, name=name, siren=siren)
        by_siren[siren] = group
        by_name[key] = group
        return group
    if named is not None:
        return named
    group = Group(row=n, name=name)
    by_name[key] = group
    return group


def _read_values(group: Group, cells: Mapping[str, str], n: int, problems: list[Problem]) -> bool:
    """Read the organisation's own cells of a row; True when the row gives one the group
    had no value for yet."""
    adds = False
    for column in ("type", "forme_juridique", "site_web", "description"):
        value = cells.get(column, "")
        if not value:
            continue
        if column == "type":
            kind = _KINDS.get(_key(value))
            if kind is None:
                problems.append(
                    Problem(
                        f"Type d'organisation inconnu « {value[:80]} » : bailleur, association, "
                        "organisme public, entreprise, recherche ou autre.",
                        n,
                        "type",
                    )
                )
                continue
            group.kind = group.kind or kind
            value = kind.value
        earlier = group.values.get(column)
        if earlier is None:
            group.values[column] = (value, n)
            adds = True
        elif earlier[0] != value:
            problems.append(
                Problem(
                    f"Valeur différente de celle de la ligne {earlier[1]} pour « {group.name} » "
                    "(laissez la cellule vide sur les lignes suivantes de l'organisation).",
                    n,
                    column,
                )
            )
    cell = cells.get("territoires", "")
    if cell:
        tokens = territory_tokens(cell)
        if group.territories is None:
            group.territories = (tokens, n)
            adds = True
        elif sorted(set(group.territories[0])) != sorted(set(tokens)):
            problems.append(
                Problem(
                    f"Territoires différents de ceux de la ligne {group.territories[1]} pour "
                    f"« {group.name} ».",
                    n,
                    "territoires",
                )
            )
    return adds


def _read_statement(
    group: Group, cells: Mapping[str, str], n: int, problems: list[Problem]
) -> bool:
    kind_cell, text = cells.get("type_enonce", ""), cells.get("enonce", "")
    visibility_cell, themes_cell = cells.get("visibilite", ""), cells.get("thematiques", "")
    if not (kind_cell or text):
        for column, value in (("visibilite", visibility_cell), ("thematiques", themes_cell)):
            if value:
                problems.append(
                    Problem("Pas d'énoncé sur cette ligne (colonne enonce).", n, column)
                )
        return False
    ok = True
    if not kind_cell:
        problems.append(Problem("Précisez « compétence » ou « besoin ».", n, "type_enonce"))
        ok = False
    kind = _STATEMENT_KINDS.get(_key(kind_cell)) if kind_cell else None
    if kind_cell and kind is None:
        problems.append(
            Problem(
                f"Type d'énoncé inconnu « {kind_cell[:80]} » : compétence ou besoin.",
                n,
                "type_enonce",
            )
        )
        ok = False
    if not text:
        problems.append(Problem("Le texte de l'énoncé est vide.", n, "enonce"))
        ok = False
    visibility = None
    if visibility_cell:
        visibility = _VISIBILITIES.get(_key(visibility_cell))
        if visibility is None:
            problems.append(
                Problem(
                    f"Visibilité inconnue « {visibility_cell[:80]} » : réseau ou coordination.",
                    n,
                    "visibilite",
                )
            )
            ok = False
    if not ok or kind is None:
        return True
    key = statement_key(kind, text)
    for earlier in group.statements:
        if statement_key(earlier.kind, earlier.text) == key:
            problems.append(
                Problem(
                    f"Énoncé en double pour « {group.name} » : déjà ligne {earlier.row}.",
                    n,
                    "enonce",
                )
            )
            return True
    themes = _list(themes_cell) if themes_cell else None
    group.statements.append(_StatementRow(n, kind, text, visibility, themes))
    return True


def _read_contact(group: Group, cells: Mapping[str, str], n: int, problems: list[Problem]) -> bool:
    values = {column: cells.get(column, "") for column in _CONTACT_COLUMNS.values()}
    if not any(values.values()):
        return False
    name = " ".join(values["contact_nom"].split())
    if not name:
        problems.append(Problem("Le nom du contact est vide.", n, "contact_nom"))
        return True
    for earlier in group.contacts:
        if name_key(earlier.name) == name_key(name):
            problems.append(
                Problem(
                    f"Contact en double pour « {group.name} » : déjà ligne {earlier.row}.",
                    n,
                    "contact_nom",
                )
            )
            return True
    group.contacts.append(
        _ContactRow(
            n,
            name,
            values["contact_fonction"] or None,
            values["contact_courriel"] or None,
            values["contact_telephone"] or None,
        )
    )
    return True


def _check_group(group: Group, problems: list[Problem]) -> None:
    """Check the group with the API's own schema (lengths, web address, e-mail, text that
    the databases can store…), naming the row and column of each problem."""
    payload: dict[str, Any] = {
        "name": group.name,
        # A placeholder for an organisation that exists already: its kind stays.
        "kind": (group.kind or OrganisationKind.other).value,
        "siren": group.siren,
        "territories": group.territories[0] if group.territories else [],
        "statements": [
            {
                "kind": s.kind.value,
                "text": s.text,
                "themes": s.themes or [],
                "visibility": (s.visibility or Visibility.network).value,
            }
            for s in group.statements
        ],
        "contacts": [
            {"name": c.name, "role": c.role, "email": c.email, "phone": c.phone}
            for c in group.contacts
        ],
    }
    for name, column in (
        ("legal_form", "forme_juridique"),
        ("website", "site_web"),
        ("description", "description"),
    ):
        payload[name] = group.value(column)
    try:
        group.data = OrganisationIn.model_validate(payload)
    except ValidationError as exc:
        for error in french_errors(exc.errors()):
            row, where = _origin(group, error["loc"])
            problems.append(Problem(error["msg"], row, where))


def _origin(group: Group, loc: Sequence[str | int]) -> tuple[int, str | None]:
    """The row and column a field of the group's payload came from."""
    head = str(loc[0]) if loc else ""
    index = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else None
    sub = str(loc[2]) if len(loc) > 2 else None
    if head == "statements":
        if index is None or index >= len(group.statements):
            return group.row, "enonce"
        return group.statements[index].row, _STATEMENT_COLUMNS.get(sub or "text", "enonce")
    if head == "contacts":
        if index is None or index >= len(group.contacts):
            return group.row, "contact_nom"
        return group.contacts[index].row, _CONTACT_COLUMNS.get(sub or "name", "contact_nom")
    if head == "territories":
        return (group.territories[1] if group.territories else group.row), "territoires"
    column = _FIELD_COLUMNS.get(head)
    found = group.values.get(column or "")
    return (found[1] if found else group.row), column


# --- matching the database ---------------------------------------------------------------
