"""Who may answer a call for projects: its perimeter, the kinds of organisation and the
legal forms it accepts. Pure: places and plain values in, booleans and French reasons out.

Territory. An organisation is eligible when one of its territories lies in the call's
perimeter, contains part of it, or overlaps it: a place p and a perimeter territory q
overlap when q contains p (q ∈ ancestors(p)) or p contains q (p ∈ ancestors(q)). An EPCI
spanning several départements carries each of them in its ancestors (`touches`, see
`api.territories.service.places_of`), so it overlaps each. A nationwide call ("France")
or a call without perimeter is open everywhere.

Kind and legal form. Both lists empty: every organisation. Otherwise an organisation is
accepted when its legal form is listed, or when its kind is listed — except a social
landlord when the call names Hlm legal forms that are not its own: the Hlm forms then say
which landlords may answer ("bailleurs : OPH, ESH, SEM" leaves out a coopérative Hlm).

Legal forms are compared canonically: the Hlm forms however they are written ("SA
d'HLM" is ESH, "Office public de l'habitat" and "OPAC" are OPH), any other form by its
folded spelling. The organismes d'habitations à loyer modéré are those of the Code de
la construction et de l'habitation, article L411-2: offices publics de l'habitat,
sociétés anonymes d'habitations à loyer modéré (entreprises sociales pour l'habitat),
sociétés anonymes coopératives de production et sociétés coopératives d'intérêt
collectif d'habitations à loyer modéré, fondations d'HLM; the sociétés d'économie mixte
agréées (CCH L481-1) build and manage social housing too. The OPAC were merged into the
OPH by ordonnance 2007-137.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from matcher.territory import Key, Place
from matcher.text import name_key

# The Hlm legal forms, as calls store them (the same spelling as api.calls' vocabulary).
OPH = "OPH"
ESH = "ESH"
COOPERATIVE_HLM = "Coopérative Hlm"
SEM = "SEM"
HLM_FORMS: tuple[str, ...] = (OPH, ESH, COOPERATIVE_HLM, SEM)

LANDLORD = "landlord"

KIND_LABELS_FR: dict[str, str] = {
    "landlord": "bailleur social",
    "association": "association",
    "public_body": "organisme public",
    "company": "entreprise",
    "research": "recherche",
    "other": "autre",
}

# How each Hlm form is written in files and funders' texts, as `name_key` folds it.
_SPELLINGS: dict[str, tuple[str, ...]] = {
    OPH: (
        "oph",
        "office public de l habitat",
        "office public d habitat",
        "office public hlm",
        "office public d hlm",
        "office public de l habitat oph",
        "opac",
        "office public d amenagement et de construction",
        "ophlm",
    ),
    ESH: (
        "esh",
        "entreprise sociale pour l habitat",
        "entreprises sociales pour l habitat",
        "sa d hlm",
        "sa hlm",
        "sa de hlm",
        "societe anonyme d hlm",
        "societe anonyme d habitations a loyer modere",
    ),
    COOPERATIVE_HLM: (
        "cooperative hlm",
        "cooperative d hlm",
        "cooperatives hlm",
        "societe cooperative d hlm",
        "scp d hlm",
        "scp hlm",
        "coop hlm",
        "scic d hlm",
        "scic hlm",
        "sacp hlm",
        "societe anonyme cooperative de production d hlm",
    ),
    SEM: (
        "sem",
        "seml",
        "saem",
        "sem immobiliere",
        "sem de logement",
        "societe d economie mixte",
        "societe d economie mixte locale",
        "societe anonyme d economie mixte",
        "epl",
        "entreprise publique locale",
    ),
}
_HLM_BY_KEY: dict[str, str] = {
    spelling: form for form, spellings in _SPELLINGS.items() for spelling in spellings
}
_HLM_KEYS = frozenset(name_key(f) for f in HLM_FORMS)

BoolArray = npt.NDArray[np.bool_]


def hlm_legal_form(text: str | None) -> str | None:
    """The Hlm legal form (one of `HLM_FORMS`) `text` names, whatever its case, accents
    and punctuation ("SA d'HLM" -> "ESH", "Office public de l'habitat" -> "OPH"); None
    for any other form or no text."""
    if not text:
        return None
    return _HLM_BY_KEY.get(name_key(text))


def legal_form_key(text: str) -> str:
    """The key two spellings of one legal form share: an Hlm form's canonical spelling
    folded, any other form folded ("Association loi 1901" -> "association loi 1901")."""
    return name_key(hlm_legal_form(text) or text)


@dataclass(frozen=True)
class CallRules:
    """What a call accepts, ready for many organisations.

    perimeter : the call's territories as places; empty (or `nationwide`) is everywhere.
    perimeter_names : how the perimeter reads in French, for refusal reasons.
    kinds : accepted OrganisationKind values (empty: any, unless legal forms are listed).
    legal_forms : accepted legal forms, any spelling.
    """

    perimeter: tuple[Place, ...] = ()
    nationwide: bool = False
    kinds: frozenset[str] = frozenset()
    legal_forms: tuple[str, ...] = ()
    perimeter_names: tuple[str, ...] = ()

    @property
    def everywhere(self) -> bool:
        return self.nationwide or not self.perimeter

    @property
    def _form_keys(self) -> frozenset[str]:
        return frozenset(legal_form_key(f) for f in self.legal_forms)

    @property
    def _perimeter_keys(self) -> frozenset[Key]:
        return frozenset(q.key for q in self.perimeter)

    @property
    def _perimeter_ancestors(self) -> frozenset[Key]:
        return frozenset(k for q in self.perimeter for k in q.ancestors)


def overlaps(
    places: Iterable[Place], perimeter_keys: Collection[Key], ancestors: Collection[Key]
) -> bool:
    """Whether a place lies in a perimeter territory (one of `perimeter_keys` is among its
    ancestors) or contains one (it is among the perimeter's `ancestors`)."""
    return any(p.key in ancestors or not p.ancestors.isdisjoint(perimeter_keys) for p in places)


def _kind_or_form_accepted(
    kinds: frozenset[str], forms: frozenset[str], kind: str, legal_form: str | None
) -> bool:
    if not kinds and not forms:
        return True
    own = legal_form_key(legal_form) if legal_form else None
    if own is not None and own in forms:
        return True
    if kind not in kinds:
        return False
    # The Hlm forms listed narrow the landlords the kind lets in.
    return not (kind == LANDLORD and forms & _HLM_KEYS)


def refusals(
    rules: CallRules, kind: str, legal_form: str | None, places: Sequence[Place]
) -> list[str]:
    """Why an organisation may not answer the call, in French: empty when it is eligible.

    kind : its OrganisationKind value. legal_form : as written, or None. places : its
    territories (with their ancestors, see the module docstring)."""
    reasons = []
    if not rules.everywhere and not overlaps(
        places, rules._perimeter_keys, rules._perimeter_ancestors
    ):
        where = ", ".join(rules.perimeter_names) or ", ".join(
            f"{q.level}:{q.code}" for q in rules.perimeter
        )
        reasons.append(
            f"Aucun de ses territoires d'intervention n'est dans le périmètre de l'appel ({where})."
        )
    if not _kind_or_form_accepted(rules.kinds, rules._form_keys, kind, legal_form):
        accepted = [KIND_LABELS_FR.get(k, k) for k in sorted(rules.kinds)]
        forms = [hlm_legal_form(f) or f for f in rules.legal_forms]
        own_form = f"« {legal_form} »" if legal_form else "non renseignée"
        if kind == LANDLORD and kind in rules.kinds and forms:
            reasons.append(
                "L'appel n'est ouvert qu'aux bailleurs sociaux de forme juridique "
                f"{', '.join(forms)} ; la sienne est {own_form}."
            )
        else:
            parts = []
            if accepted:
                parts.append(f"aux organisations de type {', '.join(accepted)}")
            if forms:
                parts.append(f"aux formes juridiques {', '.join(forms)}")
            reasons.append(
                f"L'appel est réservé {' et '.join(parts)} ; cette organisation est de type "
                f"{KIND_LABELS_FR.get(kind, kind)}, de forme juridique {own_form}."
            )
    return reasons


def eligible_mask(
    rules: CallRules,
    kinds: Sequence[str],
    legal_forms: Sequence[str | None],
    places: Sequence[Sequence[Place]],
) -> BoolArray:
    """(n,) bool: which of n organisations (their kinds, legal forms, places, aligned)
    may answer the call; the same decision as `refusals(...) == []`, in one pass with
    the perimeter's sets built once."""
    keys, ancestors = rules._perimeter_keys, rules._perimeter_ancestors
    everywhere, accepted, forms = rules.everywhere, rules.kinds, rules._form_keys
    out = np.zeros(len(kinds), dtype=bool)
    for i, (kind, form, own) in enumerate(zip(kinds, legal_forms, places, strict=True)):
        out[i] = (everywhere or overlaps(own, keys, ancestors)) and _kind_or_form_accepted(
            accepted, forms, kind, form
        )
    return out


__all__ = [
    "COOPERATIVE_HLM",
    "ESH",
    "HLM_FORMS",
    "OPH",
    "SEM",
    "CallRules",
    "eligible_mask",
    "hlm_legal_form",
    "legal_form_key",
    "overlaps",
    "refusals",
]
