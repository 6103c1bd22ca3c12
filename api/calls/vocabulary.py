"""The words of calls' eligibility: organisation kinds in French, legal forms (the Hlm forms
first-class) and the audiences of the national catalogue Aides-territoires mapped to them.
No database here."""

from __future__ import annotations

from collections.abc import Iterable

from matcher.text import name_key
from models.enums import HlmLegalForm, OrganisationKind

# How each Hlm legal form is written in people's files and in funders' texts, folded
# (`name_key`): any of these reads as the form itself.
_HLM_SPELLINGS: dict[HlmLegalForm, tuple[str, ...]] = {
    HlmLegalForm.oph: (
        "oph",
        "office public de l habitat",
        "office public d habitat",
        "office public hlm",
        "office public d hlm",
        "opac",
        "office public d amenagement et de construction",
    ),
    HlmLegalForm.esh: (
        "esh",
        "entreprise sociale pour l habitat",
        "entreprises sociales pour l habitat",
        "sa d hlm",
        "sa hlm",
        "societe anonyme d hlm",
        "societe anonyme d habitations a loyer modere",
    ),
    HlmLegalForm.cooperative_hlm: (
        "cooperative hlm",
        "cooperative d hlm",
        "cooperatives hlm",
        "societe cooperative d hlm",
        "scp d hlm",
        "scp hlm",
        "coop hlm",
        "scic d hlm",
        "scic hlm",
    ),
    HlmLegalForm.sem: (
        "sem",
        "saem",
        "sem immobiliere",
        "sem de logement",
        "societe d economie mixte",
        "societe anonyme d economie mixte",
    ),
}
_HLM_FORMS: dict[str, HlmLegalForm] = {
    spelling: form for form, spellings in _HLM_SPELLINGS.items() for spelling in spellings
}


def hlm_legal_form(text: str) -> HlmLegalForm | None:
    """The Hlm legal form `text` names, however it is spelt ("SA d'HLM" is ESH, "office
    public de l'habitat" OPH), or None for any other legal form."""
    return _HLM_FORMS.get(name_key(text))


def canonical_legal_form(text: str) -> str:
    """A legal form as calls store it: an Hlm form in its one spelling (`HlmLegalForm`),
    any other as given, spaces tidied ("Association loi 1901")."""
    form = hlm_legal_form(text)
    return form.value if form is not None else " ".join(text.split())


def unique(values: Iterable[str]) -> list[str]:
    """The values in their first order, each once (folded: "SEM" and "sem" are one)."""
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = name_key(value)
        if key not in seen:
            seen.add(key)
            out.append(value)
    return out


# Aides-territoires' audiences (its `targeted_audiences` labels, or their keys as some
# feeds give them), folded, and what they open a call to here: kinds, legal forms. The
# national catalogue has no audience for social-housing landlords: they come in by the
# network's own eligibility (a coordinator adds OPH, ESH… to a call), never from the feed.
# Audiences that no organisation of the network is (individuals, farmers) open nothing.
AUDIENCES: dict[str, tuple[tuple[OrganisationKind, ...], tuple[str, ...]]] = {}


def _audience(
    labels: Iterable[str], kinds: Iterable[OrganisationKind], forms: Iterable[str]
) -> None:
    for label in labels:
        AUDIENCES[name_key(label)] = (tuple(kinds), tuple(forms))


_audience(("Communes", "commune"), [OrganisationKind.public_body], [])
_audience(("Intercommunalités / Pays", "epci"), [OrganisationKind.public_body], [])
_audience(("Départements", "department"), [OrganisationKind.public_body], [])
_audience(("Régions", "region"), [OrganisationKind.public_body], [])
_audience(
    ("Collectivités d'outre-mer à statuts particuliers", "special"),
    [OrganisationKind.public_body],
    [],
)
_audience(("Associations", "association"), [OrganisationKind.association], [])
_audience(("Particuliers", "private_person"), [], [])
_audience(("Agriculteurs", "farmer"), [], [])
_audience(("Entreprises privées", "private_sector"), [OrganisationKind.company], [])
_audience(
    ("Entreprises publiques locales (Sem, Spl, SemOp)", "public_cies"),
    [],
    [HlmLegalForm.sem.value, "SPL", "SEMOP"],
)
_audience(
    (
        "Établissements publics (écoles, bibliothèques…) / Services de l'État",
        "Établissements publics (écoles, bibliothèques…)",
        "Établissements publics",
        "Services de l'État",
        "public_org",
    ),
    [OrganisationKind.public_body],
    [],
)
_audience(("Recherche", "researcher"), [OrganisationKind.research], [])


def open_to(
    eligible_kinds: Iterable[str],
    eligible_legal_forms: Iterable[str],
    kind: OrganisationKind | str,
    legal_form: str | None,
) -> bool:
    """Whether a call with these eligibility lists is open to an organisation of `kind` and
    `legal_form`: both lists empty, to everyone; else to a listed kind *or* a listed legal
    form (Hlm forms compared however they are spelt: "SA d'HLM" is ESH). The call
    listing's `kind` and `legal_form` filters keep the calls open to *some* organisation of
    a kind or form; this is the test for one organisation (eligibility, issue 10 point 3)."""
    kinds = {str(k) for k in eligible_kinds}
    forms = {name_key(canonical_legal_form(f)) for f in eligible_legal_forms}
    if not kinds and not forms:
        return True
    if OrganisationKind(kind).value in kinds:
        return True
    return legal_form is not None and name_key(canonical_legal_form(legal_form)) in forms
