"""Bulk onboarding: the organisations of a spreadsheet checked as a whole, then written in
one transaction; and the network written back to the same format.

An import goes in three steps. The file's rows are grouped into organisations and every
cell checked (no database). The groups are matched against the database (by SIREN, else
by exact normalised name) and their territories resolved, through the reader: a short
read-only transaction of its own, so that the texts that will need vectors are encoded,
all in one batch, before the writing transaction takes SQLite's write lock. The writing
transaction then matches again (what it writes is what it read), applies, and embeds with
the vectors encoded ahead; any problem found at either step refuses the whole file.

The import adds and replaces, it never erases: an empty cell leaves the value as it is,
statements and contacts absent from the file stay. A second import of the same file
therefore changes nothing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, TypeVar

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.imports.formats import (
    COLUMNS,
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    FileProblems,
    Problem,
    Table,
    read_table,
    write_csv,
    write_xlsx,
)
from api.imports.schemas import (
    KIND_LABELS,
    STATEMENT_KIND_LABELS,
    VISIBILITY_LABELS,
    ExportFormat,
    ImportedOrganisation,
    ImportReport,
    Outcome,
)
from api.kit.deps import Reader
from api.kit.errors import Forbidden, InvalidInput, french_errors
from api.matching.engine import MatchingEngine, organisation_texts
from api.organisations import repository
from api.organisations import service as organisation_service
from api.organisations.schemas import OrganisationIn
from api.territories.service import resolve_ref
from matcher.encoders import FloatMatrix
from matcher.identifiers import normalise_siren, siren_error
from matcher.text import content_hash
from matcher.text import name_key as fold_name
from models import Contact, Organisation, Statement, Territory
from models.enums import OrganisationKind, StatementKind, Visibility

E = TypeVar("E")


class ImportRefused(InvalidInput):
    """The file is refused as a whole; `errors` lists every problem by row and column."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        problems = sorted(problems, key=lambda p: (p.row or 0, _column_order(p.column)))
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
    parts = []
    if problem.row is not None:
        parts.append(f"ligne {problem.row}")
    if problem.column is not None:
        parts.append(f"colonne {problem.column}")
    return (", ".join(parts).capitalize() + " : ") if parts else ""


def describe(problem: Problem) -> str:
    """'Ligne 7, colonne territoires : …' — a problem as a sentence."""
    return _where(problem) + problem.msg


def _column_order(column: str | None) -> int:
    return COLUMNS.index(column) if column in COLUMNS else -1


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
    groups, problems = _group_rows(table)
    if problems:
        raise ImportRefused(problems)
    return groups


def _group_rows(table: Table) -> tuple[list[Group], list[Problem]]:
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


@dataclass
class Plan:
    """What the import does to one organisation of the file."""

    group: Group
    existing: Organisation | None
    territories: list[Territory] | None


def plan_import(
    session: Session, groups: Sequence[Group], earlier: Sequence[Problem] = ()
) -> list[Plan]:
    """Match each group to an organisation (by SIREN, else by folded name; archived
    organisations keep their SIREN but are never matched by name) and resolve territories.
    Raises ImportRefused with every problem, those `earlier` found in the file's cells too."""
    problems: list[Problem] = list(earlier)
    names: dict[str, list[int]] = {}
    for org_id, key in session.execute(
        select(Organisation.id, Organisation.name_key).where(repository.active())
    ):
        names.setdefault(key, []).append(org_id)
    resolved: dict[str, Territory | str] = {}
    claimed: dict[int, Group] = {}
    plans = []
    for group in groups:
        existing = _match(session, group, names, problems)
        if existing is not None:
            other = claimed.get(existing.id)
            if other is not None:
                problems.append(
                    Problem(
                        f"Doublon : la ligne {other.row} désigne déjà l'organisation "
                        f"« {existing.name} » (n° {existing.id}).",
                        group.row,
                        "nom",
                    )
                )
            claimed[existing.id] = group
        elif group.kind is None:
            problems.append(
                Problem(
                    f"Type obligatoire pour créer « {group.name} » : bailleur, association, "
                    "organisme public, entreprise, recherche ou autre.",
                    group.row,
                    "type",
                )
            )
        territories = None
        if group.territories is not None:
            tokens, row = group.territories
            territories = []
            for token in tokens:
                if token not in resolved:
                    try:
                        resolved[token] = resolve_ref(session, token)
                    except InvalidInput as exc:
                        resolved[token] = exc.message
                found = resolved[token]
                if isinstance(found, str):
                    problems.append(Problem(found, row, "territoires"))
                elif found not in territories:
                    territories.append(found)
        plans.append(Plan(group, existing, territories))
    if problems:
        raise ImportRefused(problems)
    return plans


def _match(
    session: Session, group: Group, names: Mapping[str, list[int]], problems: list[Problem]
) -> Organisation | None:
    def load(org_id: int) -> Organisation | None:
        return session.scalar(
            select(Organisation)
            .where(Organisation.id == org_id)
            .options(
                selectinload(Organisation.territories),
                selectinload(Organisation.contacts),
                selectinload(Organisation.statements),
            )
        )

    if group.siren is not None:
        holder = repository.siren_holder(session, group.siren)
        if holder is not None:
            if holder.archived_at is not None:
                problems.append(
                    Problem(
                        f"Le SIREN {group.siren} est celui de l'organisation archivée "
                        f"« {holder.name} » (n° {holder.id}).",
                        _row_of(group, "siren"),
                        "siren",
                    )
                )
                return None
            return load(holder.id)
    ids = names.get(name_key(group.name), [])
    if len(ids) > 1:
        problems.append(
            Problem(
                f"{len(ids)} organisations s'appellent « {group.name} » : donnez son SIREN "
                "pour dire laquelle.",
                group.row,
                "nom",
            )
        )
        return None
    if not ids:
        return None
    found = load(ids[0])
    if found is not None and group.siren and found.siren and found.siren != group.siren:
        problems.append(
            Problem(
                f"« {found.name} » existe déjà avec le SIREN {found.siren}, pas {group.siren}.",
                _row_of(group, "siren"),
                "siren",
            )
        )
        return None
    return found


def _row_of(group: Group, column: str) -> int:
    found = group.values.get(column)
    return found[1] if found else group.row


# --- applying ----------------------------------------------------------------------------


@dataclass
class _Counts:
    statements_added: int = 0
    statements_changed: int = 0
    contacts_added: int = 0


def _apply(org: Organisation, plan: Plan, counts: _Counts) -> bool:
    """Bring `org` to what the file says; True when anything changed. Touches attributes
    only (the organisation may be a copy in no session)."""
    data = plan.group.data
    assert data is not None
    changed = False

    def put(attribute: str, value: Any) -> None:
        nonlocal changed
        if value is not None and getattr(org, attribute) != value:
            setattr(org, attribute, value)
            changed = True

    put("name", data.name)
    put("kind", plan.group.kind)
    put("legal_form", data.legal_form)
    put("siren", data.siren)
    put("website", data.website)
    put("description", data.description)
    if plan.territories is not None and {t.id for t in org.territories} != {
        t.id for t in plan.territories
    }:
        org.territories = list(plan.territories)
        changed = True
    current = {statement_key(s.kind, s.text): s for s in org.statements}
    for given, row in zip(data.statements, plan.group.statements, strict=True):
        statement = current.get(statement_key(given.kind, given.text))
        if statement is None:
            org.statements.append(
                _statement(given.kind, given.text, given.visibility, given.themes)
            )
            counts.statements_added += 1
            changed = True
            continue
        touched = False
        if row.visibility is not None and statement.visibility != row.visibility:
            statement.visibility = row.visibility
            touched = True
        if row.themes is not None and list(statement.themes or []) != given.themes:
            statement.themes = list(given.themes)
            touched = True
        if touched:
            counts.statements_changed += 1
            changed = True
    contacts = {name_key(c.name): c for c in org.contacts}
    for given_contact in data.contacts:
        contact = contacts.get(name_key(given_contact.name))
        if contact is None:
            org.contacts.append(
                Contact(
                    name=given_contact.name,
                    role=given_contact.role,
                    email=given_contact.email,
                    phone=given_contact.phone,
                )
            )
            counts.contacts_added += 1
            changed = True
            continue
        for attribute in ("role", "email", "phone"):
            value = getattr(given_contact, attribute)
            if value is not None and getattr(contact, attribute) != value:
                setattr(contact, attribute, value)
                changed = True
    return changed


def _statement(
    kind: StatementKind, text: str, visibility: Visibility, themes: Iterable[str]
) -> Statement:
    # As the organisation API stores them: composed text, hashed as given.
    return Statement(
        kind=kind,
        text=unicodedata.normalize("NFC", text),
        themes=list(themes),
        visibility=visibility,
        content_hash=content_hash(text),
    )


def _copy(org: Organisation | None) -> Organisation:
    """An organisation in no session holding what `_apply` reads and changes: applying the
    file to it tells the outcome and the texts to embed without writing anything."""
    if org is None:
        return Organisation(territories=[], statements=[], contacts=[])
    return Organisation(
        id=org.id,
        name=org.name,
        kind=org.kind,
        legal_form=org.legal_form,
        siren=org.siren,
        website=org.website,
        description=org.description,
        territories=list(org.territories),
        statements=[
            Statement(
                kind=s.kind,
                text=s.text,
                themes=list(s.themes or []),
                visibility=s.visibility,
                content_hash=s.content_hash,
            )
            for s in org.statements
        ],
        contacts=[
            Contact(name=c.name, role=c.role, email=c.email, phone=c.phone) for c in org.contacts
        ],
    )


def _require_coordinator(viewer: Principal) -> None:
    if not viewer.sees_everything:
        raise Forbidden("L'import et l'export sont réservés à la coordination.")


def _report(
    plans: Sequence[Plan],
    outcomes: Sequence[Outcome],
    ids: Sequence[int | None],
    counts: _Counts,
    *,
    dry_run: bool,
) -> ImportReport:
    return ImportReport(
        dry_run=dry_run,
        created=outcomes.count(Outcome.created),
        updated=outcomes.count(Outcome.updated),
        unchanged=outcomes.count(Outcome.unchanged),
        statements_added=counts.statements_added,
        statements_changed=counts.statements_changed,
        contacts_added=counts.contacts_added,
        organisations=[
            ImportedOrganisation(row=p.group.row, name=p.group.name, id=i, outcome=o)
            for p, o, i in zip(plans, outcomes, ids, strict=True)
        ],
    )


def import_organisations(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    table: Table,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Import the organisations of `table`, all or nothing: created, completed, or left as
    they are; their texts embedded and the matching index following, in the session's
    transaction. Raises ImportRefused (every problem by row and column), Forbidden."""
    _require_coordinator(viewer)
    groups, problems = _group_rows(table)
    # Ahead of the writing transaction: what will change, and the vectors it needs.
    with reader() as read:
        plans = plan_import(read, groups, problems)
        counts = _Counts()
        outcomes: list[Outcome] = []
        texts: dict[tuple[str, str], str] = {}
        for plan in plans:
            copy = _copy(plan.existing)
            changed = _apply(copy, plan, counts)
            outcomes.append(
                Outcome.created
                if plan.existing is None
                else (Outcome.updated if changed else Outcome.unchanged)
            )
            if changed:
                texts.update(organisation_texts(copy))
        if dry_run:
            known = [p.existing.id if p.existing else None for p in plans]
            return _report(plans, outcomes, known, counts, dry_run=True)
        missing = matching.unembedded(read, texts)
    encoded: dict[tuple[str, str], FloatMatrix] = matching.embed(missing)

    plans = plan_import(session, groups)  # what is written is what this transaction read
    counts = _Counts()
    outcomes = []
    ids: list[int | None] = []
    written: list[Organisation] = []
    for plan in plans:
        if plan.existing is None:
            data = plan.group.data
            assert data is not None
            assert plan.group.kind is not None
            org = organisation_service.create_organisation(
                session, data.model_copy(update={"kind": plan.group.kind}), viewer=viewer
            )
            counts.statements_added += len(data.statements)
            counts.contacts_added += len(data.contacts)
            outcomes.append(Outcome.created)
            written.append(org)
        else:
            org = plan.existing
            changed = _apply(org, plan, counts)
            outcomes.append(Outcome.updated if changed else Outcome.unchanged)
            if changed:
                written.append(org)
        ids.append(org.id)
    session.flush()
    for org in written:
        matching.organisation_written(session, org, encoded=encoded)
    return _report(plans, outcomes, ids, counts, dry_run=False)


# --- export ------------------------------------------------------------------------------


def _label(labels: Mapping[Any, tuple[str, ...]], value: Any) -> str:
    return labels[value][0]


def export_rows(session: Session, viewer: Principal) -> list[list[str]]:
    """The organisations not archived in the import format, one row per statement or
    contact (at least one per organisation), by name. Contacts and coordinator-only
    statements only for the coordinator and admins."""
    _require_coordinator(viewer)
    orgs = session.scalars(
        select(Organisation)
        .where(repository.active())
        .order_by(Organisation.name, Organisation.id)
        .options(
            selectinload(Organisation.territories),
            selectinload(Organisation.contacts),
            selectinload(Organisation.statements),
        )
    )
    rows: list[list[str]] = []
    for org in orgs:
        insider = viewer.acts_for(org.id)
        statements = [s for s in org.statements if s.visibility == Visibility.network or insider]
        contacts = list(org.contacts) if insider else []
        first = True
        for statement, contact in (
            zip_longest(statements, contacts) if (statements or contacts) else [(None, None)]
        ):
            cells = dict.fromkeys(COLUMNS, "")
            cells["nom"] = org.name
            if org.siren:
                cells["siren"] = org.siren
            if first:
                # The organisation's values once: later rows carry its name (and SIREN) only.
                cells.update(
                    type=_label(KIND_LABELS, org.kind),
                    forme_juridique=org.legal_form or "",
                    # By id, as the database gives them: an organisation written in this
                    # session still holds them in the order they were given.
                    territoires=", ".join(
                        t.ref for t in sorted(org.territories, key=lambda t: t.id)
                    ),
                    site_web=org.website or "",
                    description=org.description or "",
                )
                first = False
            if statement is not None:
                cells.update(
                    type_enonce=_label(STATEMENT_KIND_LABELS, statement.kind),
                    enonce=statement.text,
                    visibilite=_label(VISIBILITY_LABELS, statement.visibility),
                    thematiques=", ".join(statement.themes or []),
                )
            if contact is not None:
                cells.update(
                    contact_nom=contact.name,
                    contact_fonction=contact.role or "",
                    contact_courriel=contact.email or "",
                    contact_telephone=contact.phone or "",
                )
            rows.append([cells[c] for c in COLUMNS])
    return rows


# --- files -------------------------------------------------------------------------------


def read_file(data: bytes) -> Table:
    """The table of a CSV or XLSX file. Raises ImportRefused naming what is wrong with it."""
    try:
        return read_table(data)
    except FileProblems as exc:
        raise ImportRefused(exc.problems) from exc


def import_file(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    data: bytes,
    *,
    dry_run: bool = False,
) -> ImportReport:
    """Read the file and import it (see `import_organisations`)."""
    _require_coordinator(viewer)
    return import_organisations(session, reader, matching, viewer, read_file(data), dry_run=dry_run)


def export_file(
    session: Session, viewer: Principal, file_format: ExportFormat
) -> tuple[bytes, str]:
    """The organisations as a file of `file_format`, and its media type."""
    rows = export_rows(session, viewer)
    if file_format == ExportFormat.xlsx:
        return write_xlsx(rows), XLSX_MEDIA_TYPE
    return write_csv(rows), f"{CSV_MEDIA_TYPE}; charset=utf-8"
