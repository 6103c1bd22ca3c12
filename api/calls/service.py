"""The calls catalogue: creation, listing, detail, partial update, archive; and what every
write of a call shares with the import (perimeter, requirements and their embeddings, the
change log).

Who may do what is the routes' rule (`api.kit.auth`): every signed-in account reads calls,
the coordinator and admins write them; drafts are shown to the coordinator and admins only
(a member gets 404). A call is never deleted: DELETE archives it, so that the consortia,
outcomes and changes that name it keep it.

A call's requirements are embedded as passages (role `requirement`) in the embedding
cache, keyed by their content hash, in the transaction that writes them; their vectors
are encoded before that transaction's first statement (see `api.organisations.service`).
The matching index of organisations does not read calls: writing one bumps no version.

"Today" is given by the caller (`api.kit.deps.get_today`, French time), never read here:
a call is open through its deadline and reads as closed the day after, without a write.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import date
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api.accounts.principal import Principal
from api.calls import repository
from api.calls.repository import NO_DEADLINE
from api.calls.schemas import (
    FRANCE,
    CallIn,
    CallOut,
    CallPage,
    CallPatch,
    CallSort,
    CallState,
    CallSummary,
    RequirementOut,
    check_dates,
    duplicate_requirement,
)
from api.calls.vocabulary import canonical_legal_form
from api.kit.deps import Reader
from api.kit.errors import Conflict, NotFound
from api.kit.pagination import (
    decode_cursor,
    encode_cursor,
    key_date,
    key_datetime,
    key_id,
    key_text,
    scope_of,
)
from api.matching.engine import MatchingEngine
from api.territories import service as territory_service
from api.territories.schemas import TerritoryBrief
from matcher.encoders import FloatMatrix
from matcher.index import REQUIREMENT, REQUIREMENT_QUERY
from matcher.text import content_hash
from models import Call, CallChange, CallRequirement, Territory
from models.base import utcnow
from models.enums import CallStatus, OrganisationKind

Texts = dict[tuple[str, str], str]
Encoded = Mapping[tuple[str, str], FloatMatrix]

FRANCE_BRIEF = TerritoryBrief(ref=FRANCE, level="pays", code="FR", name="France")

# The fields a change is recorded for (`call_changes`), in the order a report lists them.
TRACKED = (
    "title",
    "funders",
    "description",
    "requirements",
    "perimeter",
    "eligible_kinds",
    "eligible_legal_forms",
    "opens_on",
    "deadline",
    "url",
    "themes",
    "aid_types",
    "source",
    "external_id",
    "status",
)
# Plain fields a payload copies onto the call as they are.
_PLAIN = (
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
    "source",
    "external_id",
    "status",
)


# --- reading what a call is -------------------------------------------------------------


def status_on(call: Call, today: date) -> CallStatus:
    """The call's status read on `today`: open past its deadline is closed."""
    if call.status == CallStatus.open and call.deadline is not None and call.deadline < today:
        return CallStatus.closed
    return call.status


def perimeter_refs(call: Call) -> list[str]:
    """The perimeter as references: ["France"], or "departement:26"… by territory id."""
    if call.nationwide:
        return [FRANCE]
    return [t.ref for t in sorted(call.perimeter, key=lambda t: t.id)]


def state(call: Call) -> dict[str, Any]:
    """The call's tracked fields, JSON-ready: dates as ISO strings, enums as values, the
    perimeter as references, requirements as their texts in order."""

    def plain(value: Any) -> Any:
        if isinstance(value, date):
            return value.isoformat()
        if isinstance(value, list):
            return [plain(v) for v in value]
        return getattr(value, "value", value)

    out = {name: plain(getattr(call, name)) for name in _PLAIN}
    out["requirements"] = [r.text for r in sorted(call.requirements, key=lambda r: r.position)]
    out["perimeter"] = perimeter_refs(call)
    return {name: out[name] for name in TRACKED}


def record_changes(
    session: Session, call: Call, before: Mapping[str, Any], after: Mapping[str, Any]
) -> list[str]:
    """Log in `call_changes` each tracked field whose value differs between `before` and
    `after` (two `state`s of the call), in this transaction; returns their names."""
    changed = [name for name in TRACKED if before.get(name) != after.get(name)]
    at = utcnow()
    for name in changed:
        session.add(
            CallChange(
                call_id=call.id, changed_at=at, field=name, old=before.get(name), new=after[name]
            )
        )
    return changed


def requirement_texts(texts: Iterable[str]) -> Texts:
    """The embedding keys of requirement texts, both ways they are read: as passages (role
    `requirement`: what a consortium must be able to do) and as queries (role
    `requirement_query`: what the call fit scores organisations with). Stored on the
    call's write, so that neither a call's page nor a weekly digest run encodes them."""
    out: Texts = {}
    for t in texts:
        h = content_hash(t)
        out[(REQUIREMENT, h)] = t
        out[(REQUIREMENT_QUERY, h)] = t
    return out


def summary(call: Call, today: date) -> CallSummary:
    status = status_on(call, today)
    days_left = None
    if status == CallStatus.open and call.deadline is not None:
        days_left = (call.deadline - today).days
    return CallSummary(
        id=call.id,
        title=call.title,
        funders=list(call.funders or []),
        perimeter=[FRANCE_BRIEF]
        if call.nationwide
        else [territory_service.brief(t) for t in sorted(call.perimeter, key=lambda t: t.id)],
        eligible_kinds=[OrganisationKind(k) for k in call.eligible_kinds or []],
        eligible_legal_forms=list(call.eligible_legal_forms or []),
        opens_on=call.opens_on,
        deadline=call.deadline,
        days_left=days_left,
        url=call.url,
        themes=list(call.themes or []),
        aid_types=list(call.aid_types or []),
        source=call.source,
        external_id=call.external_id,
        status=status,
    )


def detail(call: Call, today: date) -> CallOut:
    return CallOut(
        **summary(call, today).model_dump(),
        description=call.description,
        requirements=[
            RequirementOut(id=r.id, position=r.position, text=r.text)
            for r in sorted(call.requirements, key=lambda r: r.position)
        ],
        created_at=call.created_at,
        updated_at=call.updated_at,
    )


# --- writing ----------------------------------------------------------------------------


def resolve_perimeter(
    session: Session, refs: Sequence[str], loc: Sequence[str | int]
) -> tuple[bool, list[Territory]]:
    """(nationwide, territories) of perimeter references: "France" anywhere makes the call
    nationwide (every other reference is inside it). Raises InvalidInput listing every
    reference that does not resolve, at `loc` + its index."""
    if FRANCE in refs:
        return True, []
    return False, territory_service.resolve_refs(session, refs, loc)


def set_perimeter(call: Call, nationwide: bool, territories: Sequence[Territory]) -> None:
    """Replace the perimeter, unless it is already the same (no needless write)."""
    if call.nationwide != nationwide:
        call.nationwide = nationwide
    if {t.id for t in call.perimeter} != {t.id for t in territories}:
        call.perimeter = list(territories)


def set_requirements(call: Call, texts: Sequence[str]) -> None:
    """Make the call's requirements `texts`, in this order. A requirement whose text stays
    keeps its row (and id, which consortia name), moved to its new position; the others are
    deleted or created."""
    kept: dict[str, CallRequirement] = {r.content_hash: r for r in call.requirements}
    rows = []
    for position, text in enumerate(texts):
        text = unicodedata.normalize("NFC", text)
        row = kept.pop(content_hash(text), None)
        if row is None:
            row = CallRequirement(text=text, content_hash=content_hash(text), position=position)
        elif row.position != position:
            row.position = position
        rows.append(row)
    if [id(r) for r in rows] != [id(r) for r in call.requirements]:
        call.requirements = rows


def copy_fields(call: Call, values: Mapping[str, Any]) -> None:
    """Set the plain fields `values` names (lists copied), each only when it differs."""
    for name, value in values.items():
        if name not in _PLAIN:
            raise KeyError(name)
        value = list(value) if isinstance(value, list) else value
        if getattr(call, name) != value:
            setattr(call, name, value)


def encode_ahead(
    reader: Reader, matching: MatchingEngine, texts: Texts
) -> dict[tuple[str, str], FloatMatrix]:
    """Vectors of the texts the embedding space lacks, read and encoded before the caller's
    transaction begins (on SQLite its first statement takes the write lock)."""
    if not texts:
        return {}
    with reader() as read:
        missing = matching.unembedded(read, texts)
    return matching.embed(missing)


def embed_requirements(
    session: Session, matching: MatchingEngine, calls: Iterable[Call], encoded: Encoded
) -> None:
    """Store the vectors of the calls' requirements that the space lacks, in this
    transaction (`encoded`: those computed ahead)."""
    texts: Texts = {}
    for call in calls:
        texts.update(requirement_texts(r.text for r in call.requirements))
    if texts:
        matching.ensure_embeddings(session, texts, encoded=encoded)


def _check_source_free(
    session: Session, source: str, external_id: str | None, own_id: int | None
) -> None:
    if external_id is None:
        return
    other = repository.by_source(session, source, external_id)
    if other is not None and other.id != own_id:
        message = (
            f"L'appel « {other.title} » (n° {other.id}) a déjà l'identifiant {external_id} "
            f"de la source {source}."
        )
        raise Conflict(
            message,
            errors=[{"loc": ["body", "external_id"], "msg": message, "type": "duplicate"}],
        )


def flush(session: Session) -> None:
    """Flush, turning a unique violation (the same source id written meanwhile) into a
    Conflict."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "Cet appel entre en conflit avec un appel existant (même source et même identifiant)."
        ) from exc


def _not_found(call_id: int) -> NotFound:
    return NotFound(f"Aucun appel à projets n° {call_id}.")


def get_call(session: Session, viewer: Principal, call_id: int) -> Call:
    """The call, archived ones included. Raises NotFound (unknown; a draft, for a viewer
    who is neither the coordinator nor an admin)."""
    call = repository.find(session, call_id)
    if call is None or (call.status == CallStatus.draft and not viewer.sees_everything):
        raise _not_found(call_id)
    return call


def _dates_in_order(opens_on: date | None, deadline: date | None, field: str) -> None:
    """Conflict (409) when the call would close before it opens: two well-formed dates
    that contradict each other (or the stored one), which no schema can say."""
    try:
        check_dates(opens_on, deadline)
    except ValueError as exc:
        raise Conflict(
            str(exc), errors=[{"loc": ["body", field], "msg": str(exc), "type": "value_error"}]
        ) from exc


def _distinct_requirements(texts: Sequence[str] | None) -> None:
    """Conflict (409) when a requirement repeats another (`duplicate_requirement`)."""
    message = duplicate_requirement(texts or [])
    if message:
        raise Conflict(
            message,
            errors=[{"loc": ["body", "requirements"], "msg": message, "type": "value_error"}],
        )


def create_call(
    session: Session, reader: Reader, matching: MatchingEngine | None, data: CallIn
) -> Call:
    """Create a call with its perimeter and requirements; with `matching`, its requirements
    are embedded in the same transaction. Raises Conflict (its source id is taken; a
    deadline before the opening), InvalidInput or NotFound (a perimeter reference that
    cannot be read, or names no territory)."""
    _dates_in_order(data.opens_on, data.deadline, "deadline")
    _distinct_requirements(data.requirements)
    texts = requirement_texts(data.requirements)
    encoded = encode_ahead(reader, matching, texts) if matching is not None else {}
    _check_source_free(session, data.source, data.external_id, None)
    nationwide, territories = resolve_perimeter(session, data.perimeter, ["body", "perimeter"])
    call = Call()
    copy_fields(call, {name: getattr(data, name) for name in _PLAIN})
    set_perimeter(call, nationwide, territories)
    set_requirements(call, data.requirements)
    session.add(call)
    flush(session)
    if matching is not None:
        embed_requirements(session, matching, [call], encoded)
    return call


def upsert_fixture_call(session: Session, data: CallIn) -> Call:
    """Create or replace the call that a fixture file names by its source id, as it says,
    without logging changes or embedding (`maillage demo` reindexes afterwards). Raises
    InvalidInput (a perimeter reference that does not resolve)."""
    call = (
        repository.by_source(session, data.source, data.external_id)
        if data.external_id is not None
        else None
    )
    if call is None:
        return create_call(session, _no_reader, None, data)
    nationwide, territories = resolve_perimeter(session, data.perimeter, ["perimeter"])
    set_perimeter(call, nationwide, territories)
    copy_fields(call, {name: getattr(data, name) for name in _PLAIN})
    set_requirements(call, data.requirements)
    session.flush()
    return call


def _no_reader() -> AbstractContextManager[Session]:
    raise RuntimeError("no reader: nothing to encode")


def update_call(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    call_id: int,
    data: CallPatch,
) -> tuple[Call, list[str]]:
    """Partial update: the fields present in `data` replace the current ones (null clears an
    optional one; lists are replaced as a whole). What changed is logged field by field in
    `call_changes`; new requirements are embedded. Returns the call and the changed
    fields. Raises NotFound, Conflict (the source id is another call's), InvalidInput (a
    perimeter reference that does not resolve; the deadline before the opening)."""
    given = data.model_fields_set
    _distinct_requirements(data.requirements)
    texts = requirement_texts(data.requirements or [])
    encoded = encode_ahead(reader, matching, texts)
    call = repository.find(session, call_id)
    if call is None:
        raise _not_found(call_id)
    before = state(call)
    values = {name: getattr(data, name) for name in _PLAIN if name in given}
    opens_on = values.get("opens_on", call.opens_on)
    deadline = values.get("deadline", call.deadline)
    _dates_in_order(opens_on, deadline, "deadline" if "deadline" in given else "opens_on")
    if "source" in given or "external_id" in given:
        _check_source_free(
            session,
            values.get("source", call.source),
            values.get("external_id", call.external_id),
            call.id,
        )
    if data.perimeter is not None:
        nationwide, territories = resolve_perimeter(session, data.perimeter, ["body", "perimeter"])
        set_perimeter(call, nationwide, territories)
    copy_fields(call, values)
    if data.requirements is not None:
        set_requirements(call, data.requirements)
    flush(session)
    changed = record_changes(session, call, before, state(call))
    if "requirements" in changed:
        embed_requirements(session, matching, [call], encoded)
    return call, changed


def archive_call(session: Session, call_id: int) -> None:
    """Archive the call: it leaves every listing but status=archived, and stays readable by
    id, with what names it (consortia, outcomes). Archiving it again changes nothing.
    Raises NotFound."""
    call = repository.find(session, call_id)
    if call is None:
        raise _not_found(call_id)
    if call.status != CallStatus.archived:
        before = state(call)
        call.status = CallStatus.archived
        session.flush()
        record_changes(session, call, before, state(call))


# --- listing ----------------------------------------------------------------------------

# By deadline, a permanent call after every dated one; by title, the French way (the folded
# key); ties broken by id.
_SORT: dict[CallSort, tuple[Any, bool]] = {
    CallSort.deadline: (repository.deadline_order(), False),
    CallSort.deadline_desc: (repository.deadline_order(), True),
    CallSort.title_asc: (Call.title_key, False),
    CallSort.title_desc: (Call.title_key, True),
    CallSort.created_at: (Call.created_at, False),
    CallSort.created_at_desc: (Call.created_at, True),
}


def _sort_value(call: Call, sort: CallSort) -> str:
    if sort in (CallSort.deadline, CallSort.deadline_desc):
        return (call.deadline or NO_DEADLINE).isoformat()
    if sort in (CallSort.title_asc, CallSort.title_desc):
        return call.title_key
    return call.created_at.isoformat()


def list_calls(
    session: Session,
    viewer: Principal,
    *,
    today: date,
    status: CallState = CallState.open,
    q: str | None = None,
    territory: str | None = None,
    theme: str | None = None,
    kind: OrganisationKind | None = None,
    legal_form: str | None = None,
    deadline_before: date | None = None,
    deadline_after: date | None = None,
    sort: CallSort = CallSort.deadline,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
) -> CallPage:
    """Calls as `today` reads them (by default the open ones), filtered, sorted, one page
    from `offset` or after `cursor` (whose filters, sort and day must be the same). Drafts
    only for the coordinator and admins. Raises InvalidInput (unknown territory, unreadable
    or foreign cursor)."""
    touching = None
    if territory is not None and territory.strip().casefold() != FRANCE.casefold():
        target = territory_service.resolve_ref(session, territory)
        touching = repository.touching(session, target)
    query = repository.calls(
        state=status,
        today=today,
        with_drafts=viewer.sees_everything,
        q=q,
        territory=touching,
        theme=theme,
        kind=kind,
        legal_form=canonical_legal_form(legal_form) if legal_form else None,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
    )
    column, descending = _SORT[sort]
    order = [(column, descending), (Call.id, descending)]
    scope = scope_of(
        list="calls",
        today=today,
        drafts=viewer.sees_everything,
        status=status.value,
        q=" ".join((q or "").split()),
        territory=territory,
        theme=theme,
        kind=kind,
        legal_form=legal_form,
        deadline_before=deadline_before,
        deadline_after=deadline_after,
        sort=sort.value,
    )
    parsers: dict[CallSort, Callable[[object], Any]] = {
        CallSort.created_at: key_datetime,
        CallSort.created_at_desc: key_datetime,
    }
    parsers.update({CallSort.deadline: key_date, CallSort.deadline_desc: key_date})
    key = decode_cursor(cursor, scope, [parsers.get(sort, key_text), key_id]) if cursor else None
    total = repository.count(session, query)
    rows, more = repository.page_rows(session, query, order, limit=limit, offset=offset, key=key)
    next_cursor = None
    if more and rows:
        next_cursor = encode_cursor(scope, [_sort_value(rows[-1], sort), rows[-1].id])
    return CallPage(
        items=[summary(c, today) for c in rows],
        total=total,
        limit=limit,
        offset=None if cursor else offset,
        next_cursor=next_cursor,
    )
