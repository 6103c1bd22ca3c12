"""Importing calls: the records of a file (`call_records.py`) matched against the catalogue,
checked as a whole, then written in one transaction.

The file is read and every value checked without the database. Then, through the reader (a
short read-only transaction of its own), each record's perimeter is resolved through the
referential (references, or names such as "Drôme") and the record matched to a call: by its
source id (source, external id), else by its folded title, funders and deadline. Any
problem refuses the whole file, each named by row (or record) and column (or field). The
requirements' vectors are encoded then, before the writing transaction takes SQLite's
write lock; that transaction matches again, creates or updates, logs each changed field in
`call_changes` and stores the vectors.

A call is never duplicated: importing a file again changes nothing, and a changed record
updates its call. A spreadsheet's empty cell leaves a value as it is; a JSON record (the
national catalogue's) states every field it maps, except the eligibility that catalogue
cannot express: a landlord kind or an Hlm legal form the network added to a call stays. The
import never changes a call's status (an archived call stays archived) and never erases
requirements a file does not give.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.calls import repository as call_repository
from api.calls import service as call_service
from api.calls.schemas import FRANCE
from api.imports.call_records import PROBLEM_ORDER, CallRecord, read_records
from api.imports.formats import FileProblems, Problem
from api.imports.rows import ImportRefused
from api.imports.schemas import CallImportReport, CallOutcome, ImportedCall
from api.kit.deps import Reader
from api.kit.errors import AppError, Forbidden
from api.matching.engine import MatchingEngine
from api.territories import service as territory_service
from matcher.encoders import FloatMatrix
from matcher.territory import AmbiguousTerritoryRef, TerritoryRefError, parse_territory_ref
from matcher.text import name_key
from models import Call, Territory
from models.call import LANDLORD_FORMS
from models.enums import OrganisationKind

# Fields a record copies onto its call (source and external id are adopted, never replaced;
# the status is the coordinator's).
_COPIED = (
    "title",
    "funders",
    "description",
    "eligible_kinds",
    "eligible_legal_forms",
    "opens_on",
    "deadline",
    "url",
    "themes",
    "aid_types",
)


@dataclass
class CallPlan:
    """What the import does with one record: the call it updates (None: it creates one, or
    skips the record) and its perimeter resolved (None: the record gives none)."""

    record: CallRecord
    existing: Call | None
    nationwide: bool = False
    territories: list[Territory] | None = None


def _resolve_token(session: Session, token: str) -> Territory:
    """A perimeter token: a territory reference, else a territory's name. Raises
    InvalidInput (French)."""
    if ":" in token:
        return territory_service.resolve_ref(session, token)
    try:
        parse_territory_ref(token)
    except AmbiguousTerritoryRef:
        return territory_service.resolve_ref(session, token)  # says how to write it
    except TerritoryRefError:
        return territory_service.resolve_name(session, token)
    return territory_service.resolve_ref(session, token)


def _funders_key(funders: Sequence[str] | None) -> list[str]:
    return sorted(name_key(f) for f in funders or [])


def _match(session: Session, record: CallRecord, problems: list[Problem]) -> Call | None:
    """The call the record names: by source id, else by folded title + funders + deadline
    (a call of the same source with another id is another call)."""
    data = record.data
    assert data is not None
    source = data.source or ""
    if data.external_id is not None:
        found = call_repository.by_source(session, source, data.external_id)
        if found is not None:
            return found
    funders = _funders_key(data.funders)
    candidates = [
        call
        for call in call_repository.by_title_key(session, name_key(data.title or ""))
        if _funders_key(call.funders) == funders
        and call.deadline == data.deadline
        and not (data.external_id and call.external_id and call.source == source)
    ]
    if len(candidates) > 1:
        ids = ", ".join(f"n° {c.id}" for c in candidates)
        problems.append(
            record.problem(
                f"{len(candidates)} appels ont ce titre, ces financeurs et cette date limite "
                f"({ids}) : donnez un identifiant pour dire lequel.",
                "title",
            )
        )
        return None
    return candidates[0] if candidates else None


def plan_calls(
    session: Session, records: Sequence[CallRecord], earlier: Sequence[Problem] = ()
) -> list[CallPlan]:
    """Resolve each record's perimeter and match it to a call. Raises ImportRefused with
    every problem, those `earlier` found in the file's values too."""
    problems: list[Problem] = list(earlier)
    resolved: dict[str, Territory | str] = {}
    seen: dict[tuple[Any, ...], int] = {}
    claimed: dict[int, int] = {}
    plans = []
    for record in records:
        plan = CallPlan(record, None)
        plans.append(plan)
        if record.perimeter is not None:
            plan.territories = []
            for token in record.perimeter:
                if token == FRANCE:
                    plan.nationwide = True
                    continue
                if token not in resolved:
                    try:
                        resolved[token] = _resolve_token(session, token)
                    except AppError as exc:  # unreadable, or naming no territory
                        resolved[token] = exc.message
                found = resolved[token]
                if isinstance(found, str):
                    problems.append(record.problem(found, "perimeter"))
                elif found not in plan.territories:
                    plan.territories.append(found)
            if plan.nationwide:
                plan.territories = []
        if record.data is None or record.skipped is not None:
            continue
        key = record.dedupe_key()
        if key in seen:
            problems.append(
                record.problem(
                    f"Appel en double : le même figure déjà {_at(record, seen[key])}.", "title"
                )
            )
            continue
        seen[key] = record.position
        plan.existing = _match(session, record, problems)
        if plan.existing is not None:
            earlier_position = claimed.get(plan.existing.id)
            if earlier_position is not None:
                problems.append(
                    record.problem(
                        f"Doublon : {_at(record, earlier_position)} désigne déjà l'appel "
                        f"« {plan.existing.title} » (n° {plan.existing.id}).",
                        "title",
                    )
                )
            claimed[plan.existing.id] = record.position
        elif record.perimeter is None:
            problems.append(
                record.problem("Le périmètre est obligatoire pour créer l'appel.", "perimeter")
            )
    if problems:
        raise ImportRefused(problems, PROBLEM_ORDER)
    return plans


def _at(record: CallRecord, position: int) -> str:
    return f"{'enregistrement' if record.unit == 'record' else 'ligne'} {position}"


def _values(plan: CallPlan) -> dict[str, Any]:
    """The plain fields the record sets on its call."""
    record, data = plan.record, plan.record.data
    assert data is not None
    given = data.model_fields_set
    values = {name: getattr(data, name) for name in _COPIED if name in given}
    existing = plan.existing
    if record.complete and existing is not None:
        # What the national catalogue cannot say stays: the network's own eligibility.
        kinds = list(values.get("eligible_kinds", []))
        if OrganisationKind.landlord.value in (existing.eligible_kinds or []):
            kinds.append(OrganisationKind.landlord.value)
        forms = list(values.get("eligible_legal_forms", []))
        forms += [f for f in existing.eligible_legal_forms or [] if name_key(f) in LANDLORD_FORMS]
        values["eligible_kinds"] = list(dict.fromkeys(str(k) for k in kinds))
        values["eligible_legal_forms"] = list(dict.fromkeys(forms))
    return values


def _write(session: Session, plan: CallPlan) -> tuple[Call | None, CallOutcome, list[str]]:
    """Create or update the call of one record, in the session; the outcome and the
    changed fields (logged)."""
    record, data = plan.record, plan.record.data
    assert data is not None
    if record.skipped is not None:
        return None, CallOutcome.skipped, []
    values = _values(plan)
    call = plan.existing
    if call is None:
        call = Call(source=data.source, external_id=data.external_id)
        call_service.copy_fields(call, values)
        call_service.set_perimeter(call, plan.nationwide, plan.territories or [])
        call_service.set_requirements(call, data.requirements or [])
        session.add(call)
        call_service.flush(session)
        return call, CallOutcome.created, []
    before = call_service.state(call)
    if call.external_id is None and data.external_id is not None:
        call_service.copy_fields(call, {"source": data.source, "external_id": data.external_id})
    call_service.copy_fields(call, values)
    if plan.territories is not None:
        call_service.set_perimeter(call, plan.nationwide, plan.territories)
    if data.requirements is not None:
        call_service.set_requirements(call, data.requirements)
    call_service.flush(session)
    changes = call_service.record_changes(session, call, before, call_service.state(call))
    return call, (CallOutcome.updated if changes else CallOutcome.unchanged), changes


def _report(
    fmt: str,
    plans: Sequence[CallPlan],
    results: Sequence[tuple[Call | None, CallOutcome, list[str]]],
    *,
    dry_run: bool,
) -> CallImportReport:
    outcomes = [outcome for _, outcome, _ in results]
    return CallImportReport(
        dry_run=dry_run,
        format=fmt,
        created=outcomes.count(CallOutcome.created),
        updated=outcomes.count(CallOutcome.updated),
        unchanged=outcomes.count(CallOutcome.unchanged),
        skipped=outcomes.count(CallOutcome.skipped),
        calls=[
            ImportedCall(
                record=plan.record.position,
                title=plan.record.title,
                id=None
                if call is None or (dry_run and outcome == CallOutcome.created)
                else call.id,
                outcome=outcome,
                changes=changes,
                note=plan.record.skipped,
            )
            for plan, (call, outcome, changes) in zip(plans, results, strict=True)
        ],
    )


def import_calls(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    data: bytes,
    *,
    source: str | None = None,
    dry_run: bool = False,
) -> CallImportReport:
    """Import the calls of a file (JSON in Aides-territoires' shape, CSV or XLSX), all or
    nothing: created, updated (each change logged) or left as they are; requirements
    embedded, in the session's transaction. `source`: the source of calls whose record
    names none. A dry run checks and reports, writing nothing. Raises ImportRefused (every
    problem by row or record, and column or field), Forbidden."""
    if not viewer.sees_everything:
        raise Forbidden("L'import est réservé à la coordination.")
    try:
        records, problems, fmt = read_records(data, source)
    except FileProblems as exc:
        raise ImportRefused(exc.problems, PROBLEM_ORDER) from exc
    encoded: dict[tuple[str, str], FloatMatrix] = {}
    if dry_run:
        plans = plan_calls(session, records, problems)
        savepoint = session.begin_nested()
        try:
            results = [_write(session, plan) for plan in plans]
            return _report(fmt, plans, results, dry_run=True)
        finally:
            savepoint.rollback()
    # Ahead of the writing transaction: the file checked against the catalogue, and the
    # vectors of its requirements.
    with reader() as read:
        plans = plan_calls(read, records, problems)
        texts = call_service.requirement_texts(
            text
            for plan in plans
            if plan.record.data
            for text in plan.record.data.requirements or []
        )
        missing = matching.unembedded(read, texts)
    encoded = matching.embed(missing)
    plans = plan_calls(session, records)  # what is written is what this transaction read
    results = [_write(session, plan) for plan in plans]
    written = [
        call
        for call, outcome, changes in results
        if call is not None and (outcome == CallOutcome.created or "requirements" in changes)
    ]
    call_service.embed_requirements(session, matching, written, encoded)
    return _report(fmt, plans, results, dry_run=False)
