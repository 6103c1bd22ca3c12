"""The texts embeddings read: the stored roles and how an encoder reads each, an
organisation's statements and profile, and `reindex`, which embeds every text of the
database a space lacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from api.matching.repository import bump_version
from matcher.encoders import PASSAGE, QUERY, Role
from matcher.index import PROFILE, REQUIREMENT, REQUIREMENT_QUERY
from matcher.text import content_hash
from models import Organisation
from models.enums import StatementKind, Visibility

if TYPE_CHECKING:
    from api.matching.engine import MatchingEngine


ROLES = (*(kind.value for kind in StatementKind), PROFILE, REQUIREMENT)
# How each stored role is read by a retrieval-trained encoder: a need looks for something
# (as a search does), the others answer. Peer mode compares like with like (needs with
# needs, competencies with competencies), so it needs nothing more.
ENCODING_ROLE: dict[str, Role] = {
    StatementKind.need.value: QUERY,
    StatementKind.competency.value: PASSAGE,
    PROFILE: PASSAGE,
    REQUIREMENT: PASSAGE,
    # Read by content hash only (`api.calls.requirement_queries`): no HNSW index, so not
    # among ROLES.
    REQUIREMENT_QUERY: QUERY,
}


def profile_text(org: Organisation) -> str:
    """What an organisation's profile embedding reads: its description and competencies."""
    parts = [org.description or ""]
    parts += [
        s.text
        for s in org.statements
        if s.kind == StatementKind.competency and s.visibility == Visibility.network
    ]
    return "\n".join(p for p in parts if p.strip())


def organisation_texts(org: Organisation) -> dict[tuple[str, str], str]:
    """The texts an organisation's embeddings read, keyed by (role, content hash): its
    statements and its profile. Reads no database (the organisation may be new)."""
    texts = {(s.kind.value, s.content_hash): s.text for s in org.statements}
    profile = profile_text(org)
    if profile:
        texts[(PROFILE, content_hash(profile))] = profile
    return texts


def reindex(
    session: Session,
    matching: MatchingEngine,
    *,
    progress: Callable[[int], None] | None = None,
    on_total: Callable[[int], None] | None = None,
) -> tuple[int, int]:
    """Embed every statement, profile and call requirement this space lacks. Returns
    (texts, newly embedded); `on_total` hears how many are to be embedded, before the work."""
    from models import CallRequirement

    texts: dict[tuple[str, str], str] = {}
    for org in session.scalars(select(Organisation).options(selectinload(Organisation.statements))):
        for statement in org.statements:
            texts.setdefault((statement.kind.value, statement.content_hash), statement.text)
        profile = profile_text(org)
        new_hash = content_hash(profile) if profile else None
        if org.profile_hash != new_hash:
            org.profile_hash = new_hash
        if new_hash:
            texts.setdefault((PROFILE, new_hash), profile)
    for requirement in session.scalars(select(CallRequirement)):
        texts.setdefault((REQUIREMENT, requirement.content_hash), requirement.text)
        texts.setdefault((REQUIREMENT_QUERY, requirement.content_hash), requirement.text)
    done = matching.ensure_embeddings(session, texts, progress=progress, on_missing=on_total)
    bump_version(session, None)  # every text may have a new vector
    return len(texts), done
