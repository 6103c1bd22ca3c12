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

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

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
from api.imports.rows import Group, ImportRefused, name_key, read_groups, statement_key
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
from api.kit.errors import AppError, Forbidden
from api.matching.engine import MatchingEngine
from api.matching.texts import organisation_texts
from api.organisations import repository
from api.organisations import service as organisation_service
from api.territories.service import resolve_ref
from matcher.encoders import FloatMatrix
from matcher.text import content_hash
from models import Contact, Organisation, Statement, Territory
from models.enums import StatementKind, Visibility


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
                    except AppError as exc:  # unreadable, or naming no territory
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
    groups, problems = read_groups(table)
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

    # Concurrent imports (and creations) of the same organisations wait for each other
    # here, before this transaction reads what exists: the second sees what the first wrote.
    repository.lock_identities(
        session, [k for g in groups for k in repository.identity_keys(g.name, g.siren)]
    )
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
