"""Organisations and their statements: creation, listing, detail, partial update, archive;
statements created, edited and deleted. Every function takes the viewer (`Principal`): what it
may change (`acts_for`) and what it may see (contacts, statements of visibility coordinator).

Every write that changes what matching reads (statements, description, name, kind,
territories) re-embeds in its own transaction and bumps the index version there, so the
next request reads its write. The texts are encoded before the transaction's first SQL
statement (which takes SQLite's write lock): a write that must first read what it changes
reads it through the reader (a short transaction of its own), encodes what the change
will need, then runs its transaction, which encodes there only what changed meanwhile.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Mapping

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from api.accounts.principal import Principal
from api.kit.deps import Reader, take_turn
from api.kit.errors import Conflict, Forbidden, NotFound
from api.kit.pagination import decode_cursor, encode_cursor, key_datetime, key_id, key_text
from api.kit.pagination import scope_of as pagination_scope
from api.matching.engine import MatchingEngine
from api.matching.texts import organisation_texts
from api.organisations import repository
from api.organisations.schemas import (
    ContactIn,
    OrganisationIn,
    OrganisationPage,
    OrganisationPatch,
    OrganisationSort,
    StatementIn,
    StatementPage,
    StatementPatch,
)
from api.organisations.uniqueness import check_name_free, check_siren_free
from api.organisations.views import statement_out, summary
from api.territories import service as territory_service
from matcher.encoders import FloatMatrix
from matcher.text import content_hash, name_key
from models import Contact, Organisation, Statement
from models.base import utcnow
from models.enums import OrganisationKind, StatementKind, Visibility

Encoded = Mapping[tuple[str, str], FloatMatrix]
Change = Callable[[Organisation], None]


# --- building rows from payloads (no database) ----------------------------------------


def _apply(session: Session, org: Organisation, data: OrganisationIn) -> None:
    """Copy the payload onto `org`, replacing territories, contacts and statements."""
    _resolve_territories(session, org, data.territories)
    _copy(org, data)


def _resolve_territories(session: Session, org: Organisation, refs: list[str]) -> None:
    org.territories = territory_service.resolve_refs(session, refs, ["body", "territories"])


def _contacts(contacts: list[ContactIn]) -> list[Contact]:
    return [Contact(name=c.name, role=c.role, email=c.email, phone=c.phone) for c in contacts]


def _new_statement(data: StatementIn) -> Statement:
    return Statement(
        kind=data.kind,
        # Stored composed (NFC): the text hashed, shown and matched is the same string.
        text=unicodedata.normalize("NFC", data.text),
        themes=list(data.themes),
        visibility=data.visibility,
        content_hash=content_hash(data.text),
    )


def _copy(org: Organisation, data: OrganisationIn) -> None:
    """Copy what the payload holds besides territories; reads no database."""
    org.name = data.name
    org.kind = data.kind
    org.legal_form = data.legal_form
    org.siren = data.siren
    org.website = data.website
    org.description = data.description
    org.contacts = _contacts(data.contacts)
    org.statements = [_new_statement(s) for s in data.statements]


def _detached_copy(org: Organisation) -> Organisation:
    """What `organisation_texts` reads of `org`, in objects of no session: a change applied
    to it shows the texts the change will need without writing anything."""
    return Organisation(
        id=org.id,
        description=org.description,
        statements=[
            Statement(
                id=s.id,
                kind=s.kind,
                text=s.text,
                themes=list(s.themes or []),
                visibility=s.visibility,
                content_hash=s.content_hash,
            )
            for s in org.statements
        ],
    )


# --- rules -----------------------------------------------------------------------------


def _not_found(organisation_id: int) -> NotFound:
    return NotFound(f"Aucune organisation n° {organisation_id}.")


def _statement_not_found(statement_id: int) -> NotFound:
    return NotFound(f"Aucun énoncé n° {statement_id}.")


def _require_acts_for(viewer: Principal, org: Organisation) -> None:
    """Forbidden unless the viewer may change the organisation (its members, the
    coordinator, admins)."""
    if not viewer.acts_for(org.id):
        raise Forbidden(
            f"Seuls les membres de l'organisation « {org.name} » et le coordinateur peuvent "
            "la modifier."
        )


def _visible(viewer: Principal, statement: Statement) -> bool:
    """Statements of visibility coordinator are shown only to those acting for their
    organisation."""
    return statement.visibility == Visibility.network or viewer.acts_for(statement.organisation_id)


def _flush(session: Session, org: Organisation | None = None) -> None:
    """Flush, turning a unique violation into the Conflict a request coming second gets
    (the SIREN taken: `lock_identities` makes it rare, a SIREN written by a command
    is not locked)."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        if org is not None and org.siren is not None:
            check_siren_free(session, org.siren, org.id)
        raise Conflict(
            "Cette organisation entre en conflit avec une organisation existante."
        ) from exc


def _encode_ahead(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    change: Change,
    *,
    organisation_id: int | None = None,
    statement_id: int | None = None,
) -> Encoded:
    """Vectors of the texts the organisation will need once `change` is applied and that
    the space lacks, read and encoded before the caller's transaction begins, in the
    organisation's turn (`api.kit.turns`: no other request of this process writes its
    texts until this one has committed, so nothing read here changes before the write).
    Nothing when the organisation (or the statement) is unknown, archived or not the
    viewer's to change: the caller's transaction answers that. Raises ServiceUnavailable
    (503) when the turn does not come within the lock timeout."""
    if statement_id is not None:
        with reader() as read:
            statement = repository.find_statement(read, statement_id)
            if statement is None:
                return {}
            organisation_id = statement.organisation_id
    if organisation_id is None or not viewer.acts_for(organisation_id):
        return {}
    take_turn(session, organisation_id)
    with reader() as read:
        org = repository.find_active(read, organisation_id)
        if org is None:
            return {}
        after = _detached_copy(org)
        try:
            change(after)
        except NotFound:
            return {}
        missing = matching.unembedded(read, organisation_texts(after))
    return matching.embed(missing)


def _editable(session: Session, viewer: Principal, organisation_id: int) -> Organisation:
    """The organisation the viewer changes, its row locked until the transaction ends
    (concurrent writes to one organisation run one after the other). Raises NotFound
    (unknown or archived), Forbidden (not the viewer's)."""
    org = repository.find_active(session, organisation_id, for_update=True)
    if org is None:
        raise _not_found(organisation_id)
    _require_acts_for(viewer, org)
    return org


def _readable_statement(session: Session, viewer: Principal, statement_id: int) -> Statement:
    """The statement if the viewer may see it. Raises NotFound (unknown, of an archived
    organisation, or of visibility coordinator and the viewer does not act for its
    organisation: its existence is not told either)."""
    statement = repository.find_statement(session, statement_id)
    if statement is None or not _visible(viewer, statement):
        raise _statement_not_found(statement_id)
    return statement


def _write(
    session: Session,
    matching: MatchingEngine,
    viewer: Principal,
    organisation_id: int,
    change: Change,
    *,
    encoded: Encoded,
) -> Organisation:
    """Apply `change` to the organisation in the request's transaction, re-embed what it
    changed and bump the index version. Raises NotFound, Forbidden, Conflict."""
    org = _editable(session, viewer, organisation_id)
    change(org)
    _flush(session, org)
    matching.organisation_written(session, org, encoded=encoded)
    return org


# --- organisations ---------------------------------------------------------------------


def create_organisation(
    session: Session,
    data: OrganisationIn,
    *,
    slug: str | None = None,
    matching: MatchingEngine | None = None,
    viewer: Principal | None = None,
    allow_duplicate_name: bool = False,
) -> Organisation:
    """Create an organisation; with `matching`, embed its statements in the same transaction.

    Who may create one is the route's access rule (`api.kit.auth`: the coordinator and
    admins). Raises Conflict (its SIREN is taken, by an archived organisation too; an
    organisation of the same kind and folded name exists and no SIREN tells them apart,
    unless `allow_duplicate_name`), InvalidInput (an unknown territory)."""
    # TODO(auth): if members may one day create organisations, make the creating member
    # a member of the new one here (memberships are `api.accounts`').
    del viewer
    org = Organisation(slug=slug)
    _copy(org, data)
    # Encoded before the request's first statement: on SQLite that statement takes the
    # write lock (models.db), which concurrent writers would otherwise wait on while
    # this one encodes.
    encoded = matching.embed(organisation_texts(org)) if matching is not None else None
    repository.lock_identities(session, repository.identity_keys(data.name, data.siren))
    check_siren_free(session, data.siren)
    if not allow_duplicate_name:
        check_name_free(session, data.name, data.kind, data.siren)
    _resolve_territories(session, org, data.territories)
    session.add(org)
    _flush(session, org)
    if matching is not None:
        matching.organisation_written(session, org, encoded=encoded)
    return org


def upsert_fixture_organisation(session: Session, slug: str, data: OrganisationIn) -> Organisation:
    """Create or replace the organisation that a fixture file names by `slug`."""
    org = session.scalar(select(Organisation).where(Organisation.slug == slug))
    if org is None:
        # A fixture names its organisations by slug: two may share a name.
        return create_organisation(session, data, slug=slug, allow_duplicate_name=True)
    check_siren_free(session, data.siren, org.id)
    _apply(session, org, data)
    session.flush()
    return org


def get_organisation(session: Session, organisation_id: int) -> Organisation:
    """The organisation with its territories, contacts and statements. Raises NotFound
    (unknown or archived: an archived organisation answers as if it had never been)."""
    org = repository.find_active(session, organisation_id)
    if org is None:
        raise _not_found(organisation_id)
    return org


def update_organisation(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    organisation_id: int,
    data: OrganisationPatch,
    *,
    allow_duplicate_name: bool = False,
) -> Organisation:
    """Partial update: the fields present in `data` replace the current ones (null clears an
    optional field; territories and contacts are replaced as a whole). Re-embeds the
    profile when the description changes and bumps the index version. Raises NotFound
    (unknown or archived), Forbidden (not the viewer's), Conflict (the SIREN is another
    organisation's; the new name or kind makes it a duplicate, see `create_organisation`),
    InvalidInput (an unknown territory)."""
    given = data.model_fields_set

    def change(org: Organisation) -> None:
        for field in ("name", "kind", "legal_form", "siren", "website", "description"):
            if field in given:
                setattr(org, field, getattr(data, field))
        if data.contacts is not None:  # null is refused by the schema: None is absent
            org.contacts = _contacts(data.contacts)

    encoded = (
        _encode_ahead(session, reader, matching, viewer, change, organisation_id=organisation_id)
        if "description" in given
        else {}
    )
    org = _editable(session, viewer, organisation_id)
    new_name = data.name if data.name is not None else org.name
    new_kind = data.kind if data.kind is not None else org.kind
    new_siren = data.siren if "siren" in given else org.siren
    # Only a change that makes it a namesake is checked: respelling its own name, or a
    # namesake confirmed earlier, is no new duplicate.
    becomes_namesake = (
        name_key(new_name) != org.name_key
        or new_kind != org.kind
        or (new_siren is None and org.siren is not None)
    )
    new_identity = repository.identity_keys(
        new_name if becomes_namesake else None,
        new_siren if "siren" in given and new_siren != org.siren else None,
    )
    repository.lock_identities(session, new_identity)
    if "siren" in given:
        check_siren_free(session, data.siren, org.id)
    if not allow_duplicate_name and becomes_namesake:
        check_name_free(session, new_name, new_kind, new_siren, own_id=org.id)
    if data.territories is not None:
        _resolve_territories(session, org, data.territories)
    change(org)
    _flush(session, org)
    if given:
        matching.organisation_written(session, org, encoded=encoded)
    return org


def archive_organisation(
    session: Session, matching: MatchingEngine, viewer: Principal, organisation_id: int
) -> None:
    """Archive the organisation: it leaves matching, search and listings at once (the index
    version is bumped in this transaction) and answers 404 from then on; its rows stay, with
    its history in consortia, and its SIREN stays taken. Raises NotFound (unknown or already
    archived), Forbidden (not the viewer's)."""
    org = _editable(session, viewer, organisation_id)
    org.archived_at = utcnow()
    session.flush()
    matching.organisation_archived(session, org.id)


# By name is by `name_key`: accents, case and punctuation aside, the same order on both
# databases (byte order of the folded key), ties broken by id.
_SORT_COLUMN = {
    OrganisationSort.name: (Organisation.name_key, False),
    OrganisationSort.name_desc: (Organisation.name_key, True),
    OrganisationSort.created_at: (Organisation.created_at, False),
    OrganisationSort.created_at_desc: (Organisation.created_at, True),
}


def list_organisations(
    session: Session,
    viewer: Principal,
    *,
    q: str | None = None,
    kind: OrganisationKind | None = None,
    legal_form: str | None = None,
    territory: str | None = None,
    sort: OrganisationSort = OrganisationSort.name,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
) -> OrganisationPage:
    """Organisations not archived, filtered (words of `q` in the name, accents, case and
    apostrophes aside, or in the description; kind, legal form, a territory reference),
    sorted by `sort` (names the French way: folded) then id, one page from `offset` or
    after `cursor` (whose filters and sort must be the same). Summaries only: no contacts.
    Raises InvalidInput (unknown territory, unreadable or foreign cursor)."""
    del viewer  # summaries show nothing private
    within = None
    if territory is not None:
        within = repository.working_on(territory_service.resolve_ref(session, territory))
    query = repository.organisations(
        q=q, kind=kind, legal_form=legal_form.strip() if legal_form else None, within=within
    )
    column, descending = _SORT_COLUMN[sort]
    order = [(column, descending), (Organisation.id, descending)]
    scope = pagination_scope(
        list="organisations",
        q=" ".join((q or "").split()),
        kind=kind,
        legal_form=legal_form,
        territory=territory,
        sort=sort.value,
        # Cursors of the raw-name order (before name_key) serve no longer.
        by="name_key",
    )
    parse_key = key_datetime if column is Organisation.created_at else key_text
    key = decode_cursor(cursor, scope, [parse_key, key_id]) if cursor else None
    total = repository.count(session, query)
    rows, more = repository.page_rows(
        session,
        query.options(selectinload(Organisation.territories)),
        order,
        limit=limit,
        offset=offset,
        key=key,
    )
    next_cursor = None
    if more and rows:
        last = rows[-1]
        value = last.created_at.isoformat() if column is Organisation.created_at else last.name_key
        next_cursor = encode_cursor(scope, [value, last.id])
    return OrganisationPage(
        items=[summary(o) for o in rows],
        total=total,
        limit=limit,
        offset=None if cursor else offset,
        next_cursor=next_cursor,
    )


# --- statements ------------------------------------------------------------------------


def list_statements(
    session: Session,
    viewer: Principal,
    organisation_id: int,
    *,
    kind: StatementKind | None = None,
    limit: int = 50,
    offset: int = 0,
    cursor: str | None = None,
) -> StatementPage:
    """The organisation's statements by id, of `kind` when given; those of visibility
    coordinator only when the viewer acts for it (`total` counts what the viewer sees).
    Raises NotFound (unknown or archived organisation), InvalidInput (bad cursor)."""
    org = get_organisation(session, organisation_id)
    query = repository.statements(org.id, kind=kind, coordinator_only=viewer.acts_for(org.id))
    scope = pagination_scope(list="statements", organisation=org.id, kind=kind)
    key = decode_cursor(cursor, scope, [key_id]) if cursor else None
    total = repository.count(session, query)
    rows, more = repository.page_rows(
        session, query, [(Statement.id, False)], limit=limit, offset=offset, key=key
    )
    return StatementPage(
        items=[statement_out(s) for s in rows],
        total=total,
        limit=limit,
        offset=None if cursor else offset,
        next_cursor=encode_cursor(scope, [rows[-1].id]) if more and rows else None,
    )


def get_statement(session: Session, viewer: Principal, statement_id: int) -> Statement:
    """One statement. Raises NotFound (unknown, of an archived organisation, or of
    visibility coordinator and the viewer does not act for its organisation)."""
    return _readable_statement(session, viewer, statement_id)


def create_statement(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    organisation_id: int,
    data: StatementIn,
) -> Statement:
    """Add a statement to the organisation, embedded (with the profile it changes) in the
    same transaction; the index follows. Raises NotFound (unknown or archived organisation),
    Forbidden (not the viewer's)."""
    added: list[Statement] = []

    def change(org: Organisation) -> None:
        statement = _new_statement(data)
        org.statements.append(statement)
        added.append(statement)

    encoded = _encode_ahead(
        session, reader, matching, viewer, change, organisation_id=organisation_id
    )
    added.clear()
    _write(session, matching, viewer, organisation_id, change, encoded=encoded)
    return added[-1]


def _find_in(org: Organisation, statement_id: int) -> Statement:
    for statement in org.statements:
        if statement.id == statement_id:
            return statement
    raise _statement_not_found(statement_id)


def _statement_write(
    session: Session, viewer: Principal, statement_id: int
) -> tuple[Statement, Organisation]:
    """The statement to change and its organisation, as they are once the organisation is
    locked (a concurrent write may have changed or deleted it meanwhile). Raises NotFound
    (see `_readable_statement`), Forbidden (the viewer sees it but does not act for it)."""
    statement = _readable_statement(session, viewer, statement_id)
    org = _editable(session, viewer, statement.organisation_id)
    return _find_in(org, statement_id), org


def update_statement(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    statement_id: int,
    data: StatementPatch,
) -> Statement:
    """Change a statement's text, kind, themes or visibility (the fields present in `data`),
    re-embedded with the profile it changes in the same transaction; the index follows, so
    the next search reads the new text. Raises NotFound (see `get_statement`), Forbidden
    (the viewer sees it but does not act for its organisation)."""
    given = data.model_fields_set

    def change(org: Organisation) -> None:
        # None is an absent field: the schema refuses an explicit null.
        statement = _find_in(org, statement_id)
        if data.kind is not None:
            statement.kind = data.kind
        if data.text is not None:
            statement.text = unicodedata.normalize("NFC", data.text)
            statement.content_hash = content_hash(data.text)
        if data.themes is not None:
            statement.themes = list(data.themes)
        if data.visibility is not None:
            statement.visibility = data.visibility

    encoded = _encode_ahead(session, reader, matching, viewer, change, statement_id=statement_id)
    statement, org = _statement_write(session, viewer, statement_id)
    if given:
        change(org)
        _flush(session, org)
        matching.organisation_written(session, org, encoded=encoded)
    return statement


def delete_statement(
    session: Session,
    reader: Reader,
    matching: MatchingEngine,
    viewer: Principal,
    statement_id: int,
) -> None:
    """Delete a statement; the profile it was part of is re-embedded and the index follows.
    Raises NotFound (see `get_statement`), Forbidden (not the viewer's to change)."""

    def change(org: Organisation) -> None:
        org.statements.remove(_find_in(org, statement_id))

    encoded = _encode_ahead(session, reader, matching, viewer, change, statement_id=statement_id)
    _statement, org = _statement_write(session, viewer, statement_id)
    change(org)
    _flush(session, org)
    matching.organisation_written(session, org, encoded=encoded)
