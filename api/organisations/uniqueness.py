"""What makes two organisations one: the same SIREN, or the same folded name and kind
with no SIREN to tell them apart. Each check raises the Conflict that names the
organisation already there."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api.kit.errors import Conflict
from api.kit.labels import KIND_FR
from api.organisations import repository
from models.enums import OrganisationKind


def check_siren_free(session: Session, siren: str | None, own_id: int | None = None) -> None:
    """Conflict naming the organisation that holds `siren`, archived or not, unless it is
    `own_id`."""
    if siren is None:
        return
    other = repository.siren_holder(session, siren)
    if other is not None and other.id != own_id:
        archived = ", archivée" if other.archived_at is not None else ""
        raise Conflict(
            f"Le SIREN {siren} est déjà celui de l'organisation « {other.name} » "
            f"(n° {other.id}{archived})."
        )


def check_name_free(
    session: Session,
    name: str,
    kind: OrganisationKind,
    siren: str | None,
    *,
    own_id: int | None = None,
) -> None:
    """Conflict naming the organisation (not archived) of the same kind whose name folds
    as `name` does (accents, case, punctuation and apostrophe style aside), unless a SIREN
    on each side tells the two apart."""
    for other in repository.same_name(session, name, kind, exclude_id=own_id):
        if siren is not None and other.siren is not None:
            continue  # two SIRENs, two organisations (the same SIREN is refused apart)
        message = (
            f"L'organisation « {other.name} » (n° {other.id}, {KIND_FR[other.kind]}) existe "
            "déjà : même nom, aux accents, majuscules et ponctuation près, et même type, sans "
            "SIREN pour les distinguer. Complétez-la plutôt que d'en créer une seconde ; s'il "
            "s'agit bien d'une autre organisation, donnez son SIREN, ou confirmez avec "
            "allow_duplicate_name=true."
        )
        raise Conflict(
            message,
            errors=[
                {"loc": ["body", "name"], "msg": message, "type": "duplicate_name"},
            ],
        )
