"""Why a consortium cannot be composed: one exception per condition, each with a French
`message` for the user (the API maps `InvalidComposition` to 422 and
`ImpossibleConsortium` to 409).

Every class is a `ValueError`, so plain callers can catch that.
"""

from __future__ import annotations

from collections.abc import Iterable


def _ids(ids: Iterable[int]) -> str:
    return ", ".join(str(i) for i in sorted(set(ids)))


class CompositionError(ValueError):
    """Base class. `message`: what went wrong, in French, for the user; `ids`: the
    organisations concerned, if any (sorted)."""

    def __init__(self, message: str, ids: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.ids: tuple[int, ...] = tuple(sorted(set(ids)))


# --- The request contradicts itself, whatever the candidates (422) ---------------------


class InvalidComposition(CompositionError):
    """The options or inputs are malformed, whatever the candidates."""


class InvalidSize(InvalidComposition):
    """`min_size` < 1, or `min_size` > `max_size`."""

    def __init__(self, min_size: int, max_size: int) -> None:
        if min_size < 1:
            message = f"La taille minimale d'un consortium est d'au moins 1 (reçu {min_size})."
        else:
            message = f"La taille minimale ({min_size}) dépasse la taille maximale ({max_size})."
        super().__init__(message)
        self.min_size, self.max_size = min_size, max_size


class IncludeExcludeConflict(InvalidComposition):
    """Some organisations are both imposed (`include`, or `lead`) and excluded."""

    def __init__(self, ids: Iterable[int]) -> None:
        ids = tuple(ids)
        super().__init__(
            f"Organisations à la fois imposées et exclues : {_ids(ids)}.",
            ids,
        )


class InvalidOption(InvalidComposition):
    """A numeric option is out of its range (see `ConsortiumOptions`)."""

    def __init__(self, name: str, value: object, expected: str) -> None:
        super().__init__(f"Paramètre « {name} » invalide ({value!r}) : {expected}.")
        self.name = name


class InvalidInput(InvalidComposition):
    """The arrays do not match the candidates (a caller's bug rather than a user's)."""


# --- These candidates cannot satisfy the constraints (409) -----------------------------


class ImpossibleConsortium(CompositionError):
    """The options are sound but these candidates cannot satisfy them."""


class NoRequirement(ImpossibleConsortium):
    """The call has no requirement: there is nothing to cover."""

    def __init__(self) -> None:
        super().__init__(
            "L'appel n'a aucune exigence : impossible de composer un consortium pour les couvrir."
        )


class NotCandidate(ImpossibleConsortium):
    """Organisations imposed (`include`, `lead`, or the members of an evaluated
    consortium) are not among the candidates, i.e. not eligible to the call."""

    def __init__(self, ids: Iterable[int]) -> None:
        ids = tuple(ids)
        super().__init__(
            f"Organisations non éligibles à cet appel, qui ne peuvent pas en être membres : "
            f"{_ids(ids)}.",
            ids,
        )


class LeadNotLandlord(ImpossibleConsortium):
    """The lead asked for is not a social landlord."""

    def __init__(self, organisation_id: int) -> None:
        super().__init__(
            f"L'organisation {organisation_id} n'est pas un bailleur social : "
            "elle ne peut pas être chef de file du consortium.",
            (organisation_id,),
        )


class LeadNotMember(ImpossibleConsortium):
    """The lead of an evaluated consortium is not one of its members."""

    def __init__(self, organisation_id: int) -> None:
        super().__init__(
            f"Le chef de file {organisation_id} doit être membre du consortium.",
            (organisation_id,),
        )


class TooFewCandidates(ImpossibleConsortium):
    """Fewer candidates than `min_size` once the exclusions are removed."""

    def __init__(self, available: int, min_size: int) -> None:
        super().__init__(
            f"{available} organisation(s) éligible(s) hors exclusions, "
            f"pour un consortium d'au moins {min_size} membres."
        )
        self.available, self.min_size = available, min_size


class NoLandlord(ImpossibleConsortium):
    """No social landlord among the candidates once the exclusions are removed."""

    def __init__(self) -> None:
        super().__init__(
            "Aucun bailleur social parmi les organisations éligibles (hors exclusions) : "
            "un consortium doit en compter un, chef de file."
        )


class TooManyImposed(ImpossibleConsortium):
    """The imposed members (`include` and `lead`) exceed `max_size`, or fill it without
    a social landlord among them."""

    def __init__(self, ids: Iterable[int], max_size: int, *, landlord_missing: bool) -> None:
        ids = tuple(ids)
        if landlord_missing:
            message = (
                f"Les {len(ids)} organisations imposées remplissent le consortium "
                f"(taille maximale {max_size}) sans bailleur social pour le porter."
            )
        else:
            message = (
                f"{len(ids)} organisations imposées (chef de file compris) pour une taille "
                f"maximale de {max_size}."
            )
        super().__init__(message, ids)
        self.max_size = max_size
