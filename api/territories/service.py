"""Territory referential: resolving references, search (loading it: `referential.py`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select, true, tuple_
from sqlalchemy.orm import Session, selectinload

from api.kit.errors import InvalidInput, NotFound
from api.territories.postal_codes import (
    CORSICAN_INSEE,
    SEPARATORS,
    postal_code_miss,
    read_postal_code,
)
from api.territories.schemas import FormerCommune as FormerCommuneOut
from api.territories.schemas import TerritoryBrief, TerritoryOut
from matcher.identifiers import ascii_digits
from matcher.territory import (
    LEVEL_LABELS_FR,
    AmbiguousTerritoryRef,
    Place,
    TerritoryRef,
    TerritoryRefError,
    make_place,
    parse_territory_ref,
)
from matcher.text import fold_place_name
from models import FormerCommune, Territory, TerritoryPostalCode
from models.enums import TerritoryLevel


class UnknownTerritory(NotFound):
    """A well-formed reference naming no territory of the referential (404: the request
    is valid, what it names does not exist)."""

    type_slug = "unknown-territory"


def _lookup(session: Session, ref: TerritoryRef) -> tuple[Territory | None, FormerCommune | None]:
    """The territory `ref` names; for the code of a former commune, the current commune it
    is part of, with the former one."""
    levels = [ref.level]
    if ref.level == "commune":
        # An arrondissement municipal's INSEE code (13201) is a commune-level code too.
        levels.append("arrondissement")
    found = session.scalars(
        select(Territory)
        .where(Territory.code == ref.code, Territory.level.in_(levels))
        .order_by(Territory.level)
    ).first()
    if found is not None or ref.level != "commune":
        return found, None
    former = session.scalars(
        select(FormerCommune)
        .where(FormerCommune.code == ref.code)
        .options(selectinload(FormerCommune.territory))
        .order_by(FormerCommune.id)
    ).first()
    if former is None:
        return None, None
    return former.territory, former


_STATUS_FR = {
    "deleguee": "c'est une commune déléguée de {current}, commune nouvelle",
    "associee": "c'est une commune associée à {current}",
    "ancienne": "elle a fusionné dans {current}",
}


def former_out(former: FormerCommune, current: Territory) -> FormerCommuneOut:
    """The former commune as an answer says it, with a French note."""
    who = f"{former.name} ({former.code})" if former.name else f"L'ancienne commune {former.code}"
    what = _STATUS_FR[former.status].format(current=f"{current.name} ({current.code})")
    if former.code == current.code:
        note = f"{who} est aujourd'hui une partie de la commune : {what}, décrite ici."
    else:
        note = f"{who} n'est plus une commune : {what}, décrite ici."
    return FormerCommuneOut(
        code=former.code,
        name=former.name,
        status=former.status,  # type: ignore[arg-type]
        note=note,
    )


def _ambiguous_message(session: Session, code: str) -> str:
    found = session.scalars(
        select(Territory).where(
            Territory.code == code, Territory.level.in_(["departement", "region"])
        )
    ).all()
    if not found:
        return f"« {code} » n'est ni un département ni une région connus."
    options = " ou ".join(
        f"{t.level.value}:{t.code} ({LEVEL_LABELS_FR[t.level.value]} {t.name})"
        for t in sorted(found, key=lambda t: t.level.value)
    )
    if len(found) > 1:
        return f"« {code} » est ambigu : c'est à la fois un département et une région. Écrivez {options}."
    return f"« {code} » seul est ambigu (un code de 2 ou 3 caractères) : écrivez {options}."


def _not_found_message(ref: TerritoryRef) -> str:
    if ref.level == "commune":
        return f"Code commune INSEE inconnu : {ref.code}."
    if ref.level == "epci":
        return f"SIREN d'EPCI inconnu : {ref.code}."
    return f"Code de {LEVEL_LABELS_FR[ref.level]} inconnu : {ref.code}."


def find_ref(session: Session, raw: str) -> tuple[Territory, FormerCommuneOut | None]:
    """One reference to its territory, and the former commune it named if it did (the old
    code of a commune déléguée, associée or merged resolves to the current commune).
    Raises InvalidInput (French) for a reference that cannot be read, UnknownTerritory
    (404) for one that names no territory."""
    try:
        ref = parse_territory_ref(raw)
    except AmbiguousTerritoryRef as exc:
        raise InvalidInput(_ambiguous_message(session, exc.code)) from exc
    except TerritoryRefError as exc:
        raise InvalidInput(str(exc)) from exc
    territory, former = _lookup(session, ref)
    if territory is None:
        raise UnknownTerritory(_not_found_message(ref))
    return territory, former_out(former, territory) if former is not None else None


def resolve_ref(session: Session, raw: str) -> Territory:
    """One reference to its territory (a former commune's code to the current commune).
    Raises InvalidInput or UnknownTerritory, as `find_ref`."""
    return find_ref(session, raw)[0]


def resolve_refs(
    session: Session, raws: Sequence[str], loc: Sequence[str | int]
) -> list[Territory]:
    """Resolve every reference, reporting all failures at once with their position:
    InvalidInput (422) when one cannot be read, else UnknownTerritory (404) when one names
    no territory."""
    territories: list[Territory] = []
    errors: list[dict[str, Any]] = []
    unreadable = False
    seen: set[int] = set()
    for index, raw in enumerate(raws):
        try:
            territory = resolve_ref(session, raw)
        except (InvalidInput, UnknownTerritory) as exc:
            unreadable = unreadable or isinstance(exc, InvalidInput)
            errors.append({"loc": [*loc, index], "msg": exc.message, "type": "territory"})
            continue
        if territory.id not in seen:
            seen.add(territory.id)
            territories.append(territory)
    if errors:
        detail = errors[0]["msg"]
        if len(errors) > 1:
            detail += f" Et {len(errors) - 1} autre(s) territoire(s) refusé(s)."
        raise (InvalidInput if unreadable else UnknownTerritory)(detail, errors=errors)
    return territories


_DEPARTEMENT_HINT = re.compile(r"^(.*?)\s*\(\s*([0-9]{2,3}|2[AB])\s*\)\s*$", re.IGNORECASE)


def resolve_name(session: Session, name: str) -> Territory:
    """The territory a *name* designates, as catalogues of calls write perimeters ("Drôme",
    "Provence-Alpes-Côte d'Azur", "Métropole d'Aix-Marseille-Provence", "Saint-Denis (93)"):
    a territory whose folded name is the name's (accents, case, punctuation and "St"
    aside), in the département a trailing "(93)" names. Several territories may bear one
    name: when one of them contains all the others (the région and the département of
    Guadeloupe, the département and the commune of Paris) it is the same ground, that one;
    else, when the territories above communes nest in one, that one (the région of La
    Réunion, not the commune of Lot-et-Garonne: a catalogue names a commune with its
    département). Never a guess beyond that: InvalidInput (French) when no territory bears
    the name, or several distinct ones do (the communes named Saint-Denis)."""
    shown = " ".join(name.split())
    hint = _DEPARTEMENT_HINT.match(shown)
    departement = hint.group(2).upper() if hint else None
    folded = fold_place_name(hint.group(1) if hint else shown)
    if not folded:
        # Blank, or only signs (« 🏠 », « -- »): no letter or digit to look a name up by.
        raise InvalidInput(
            f"« {shown[:60]} » ne nomme aucun territoire : écrivez le nom d'une commune, "
            "d'une intercommunalité, d'un département ou d'une région, ou son code."
            if shown
            else "Nom de territoire vide."
        )
    query = select(Territory).where(
        Territory.search_name == folded, Territory.level != TerritoryLevel.arrondissement
    )
    if departement is not None:
        query = query.where(
            or_(
                Territory.departement_code == departement,
                and_(Territory.level == TerritoryLevel.departement, Territory.code == departement),
            )
        )
    found = list(session.scalars(query.order_by(Territory.level, Territory.code)).all())
    if not found:
        where = f" dans le département {departement}" if departement else ""
        raise UnknownTerritory(
            f"Aucun territoire du référentiel ne s'appelle « {shown} »{where} (communes, EPCI, "
            "départements, régions) : écrivez son nom exact ou sa référence "
            "(departement:26, epci:200054807…)."
        )
    places = places_of(session, found)

    def container(group: list[Territory]) -> Territory | None:
        for candidate in group:
            level, code = candidate.level.value, candidate.code
            if all(places[other.id].within(level, code) for other in group):
                return candidate
        return None

    above_communes = [t for t in found if t.level != TerritoryLevel.commune]
    chosen = container(found) or (container(above_communes) if above_communes else None)
    if chosen is not None:
        return chosen
    options = ", ".join(
        f"{t.ref} ({LEVEL_LABELS_FR[t.level.value]} {t.name}"
        + (f", département {t.departement_code}" if t.departement_code else "")
        + ")"
        for t in found[:6]
    )
    more = f" et {len(found) - 6} autre(s)" if len(found) > 6 else ""
    raise InvalidInput(
        f"« {shown} » est le nom de {len(found)} territoires : {options}{more}. "
        f"Donnez sa référence, ou son département entre parenthèses (« {shown} "
        f"({found[0].departement_code or found[0].code}) »)."
    )


def describe_ref(session: Session, raw: str) -> TerritoryOut:
    """The territory a reference names, described, saying which former commune the
    reference named if it did. Raises InvalidInput, UnknownTerritory (a NotFound)."""
    territory, former = find_ref(session, raw)
    return describe(session, [territory], {territory.id: former} if former else None)[0]


def place_of(territory: Territory, touches: Iterable[tuple[str, str]] = ()) -> Place:
    return make_place(
        territory.level.value,
        territory.code,
        commune=territory.commune_code,
        epci=territory.epci_code,
        departement=territory.departement_code,
        region=territory.region_code,
        touches=touches,
    )


def places_of(session: Session, territories: Iterable[Territory]) -> dict[int, Place]:
    """Places by territory id; an EPCI across départements or régions touches each of them."""
    territories = list(territories)
    spanning = [
        t.code
        for t in territories
        if t.level == TerritoryLevel.epci and (t.departement_code is None or t.region_code is None)
    ]
    touches: dict[str, set[tuple[str, str]]] = {code: set() for code in spanning}
    if spanning:
        rows = session.execute(
            select(Territory.epci_code, Territory.departement_code, Territory.region_code)
            .where(Territory.level == TerritoryLevel.commune, Territory.epci_code.in_(spanning))
            .distinct()
        )
        for epci, departement, region in rows:
            if epci is None:
                continue
            if departement:
                touches[epci].add(("departement", departement))
            if region:
                touches[epci].add(("region", region))
    return {
        t.id: place_of(t, touches.get(t.code, ()) if t.level == TerritoryLevel.epci else ())
        for t in territories
    }


_CHILD_COLUMN = {
    "commune": Territory.commune_code,
    "epci": Territory.epci_code,
    "departement": Territory.departement_code,
    "region": Territory.region_code,
}


def overlapping(target: Territory, place: Place | None = None) -> Select[Any]:
    """Ids of the territories that share ground with `target`: those that contain it (the
    ancestors of its `place`, by default `place_of(target)`; with `places_of`'s, also the
    départements and régions an EPCI across them touches), those inside it, and the EPCIs
    that reach into it (the Métropole d'Aix-Marseille-Provence reaches into the Var)."""
    place = place or place_of(target)
    conditions: list[ColumnElement[bool]] = [
        (Territory.level == level) & (Territory.code == code) for level, code in place.ancestors
    ]
    child_column = _CHILD_COLUMN.get(target.level.value)
    if child_column is not None:
        conditions.append(child_column == target.code)
    if child_column is not None and target.level.value in ("departement", "region"):
        reaching = select(Territory.epci_code).where(
            Territory.level == "commune", child_column == target.code
        )
        conditions.append((Territory.level == "epci") & Territory.code.in_(reaching))
    return select(Territory.id).where(or_(*conditions))


def brief(territory: Territory) -> TerritoryBrief:
    return TerritoryBrief(
        ref=territory.ref, level=territory.level.value, code=territory.code, name=territory.name
    )


def describe(
    session: Session,
    territories: Sequence[Territory],
    formerly: Mapping[int, FormerCommuneOut] | None = None,
) -> list[TerritoryOut]:
    """Full descriptions with parents, fetching every parent in one query; `formerly` by
    territory id: the former commune a request named."""
    formerly = formerly or {}
    wanted: set[tuple[str, str]] = set()
    for t in territories:
        for level, code in (
            ("commune", t.commune_code),
            ("epci", t.epci_code),
            ("departement", t.departement_code),
            ("region", t.region_code),
        ):
            if code:
                wanted.add((level, code))
    parents: dict[tuple[str, str], Territory] = {}
    if wanted:
        for row in session.scalars(
            select(Territory).where(tuple_(Territory.level, Territory.code).in_(list(wanted)))
        ):
            parents[(row.level.value, row.code)] = row

    def parent(level: str, code: str | None) -> TerritoryBrief | None:
        found = parents.get((level, code)) if code else None
        return brief(found) if found else None

    return [
        TerritoryOut(
            **brief(t).model_dump(),
            population=t.population,
            subtype=t.subtype,
            postal_codes=[p.postal_code for p in t.postal_codes],
            commune=parent("commune", t.commune_code),
            epci=parent("epci", t.epci_code),
            departement=parent("departement", t.departement_code),
            region=parent("region", t.region_code),
            formerly=formerly.get(t.id),
        )
        for t in territories
    ]


def name_query_hint(q: str) -> str | None:
    """In French, where to look instead when `q`, which searches names, holds a code: a
    number (a postal code or an INSEE code), a Corsican INSEE code (2A004), a typed
    reference (commune:13001); None for a name. A hint, not an error: the request is
    well formed, it finds no name."""
    text = ascii_digits(q).strip()
    compact = SEPARATORS.sub("", text).upper()
    if compact.isdigit():
        return (
            f"q cherche par nom ; « {text} » est un nombre : pour un code postal utilisez "
            f"postal_code={compact}, pour un code INSEE ou un SIREN "
            f"/api/v1/territories/{compact}."
        )
    if CORSICAN_INSEE.match(compact) or re.fullmatch(r"2[AB]", compact):
        target = compact if len(compact) == 5 else f"departement:{compact}"
        what = "un code INSEE de commune corse" if len(compact) == 5 else "un département corse"
        return (
            f"q cherche par nom ; « {text} » est {what} : utilisez "
            f"/api/v1/territories/{target}. Les codes postaux de la Corse, eux, commencent par "
            "20 (postal_code=20000 pour Ajaccio)."
        )
    prefix, colon, code = text.partition(":")
    if colon and prefix.strip().lower() in {
        "commune",
        "arrondissement",
        "epci",
        "departement",
        "département",
        "dep",
        "region",
        "région",
        "reg",
    }:
        return (
            f"q cherche par nom ; « {text} » est une référence de territoire : utilisez "
            f"/api/v1/territories/{prefix.strip().lower()}:{code.strip()}."
        )
    return None


@dataclass(frozen=True)
class SearchResult:
    """A page of territories; `formerly`: by territory id, the former commune whose name
    the query matched; `notes`: how the query was read, why nothing was found (French)."""

    territories: list[Territory]
    total: int
    formerly: dict[int, FormerCommuneOut]
    notes: list[str]


def search_territories(
    session: Session,
    *,
    q: str | None,
    postal_code: str | None,
    levels: Iterable[str] | None,
    limit: int,
) -> SearchResult:
    """Search by name (accent- and case-insensitive, every word must appear, in the current
    name or in a former commune's) or postal code (as people type it, see
    `read_postal_code`); with neither, every territory (of `levels`). A name query that
    holds a code, or no word, finds nothing and says why in `notes`. Raises InvalidInput
    (a postal code that cannot be read)."""
    conditions: list[ColumnElement[bool]] = []
    notes: list[str] = []
    tokens: list[str] = []
    postal = read_postal_code(postal_code) if postal_code is not None else None
    if q is not None:
        hint = name_query_hint(q)
        tokens = fold_place_name(q).split()
        if hint is None and not tokens:
            hint = (
                "La recherche par nom (q) ne contient aucun mot : écrivez un nom de commune, "
                "d'EPCI, de département ou de région."
            )
        if hint is not None:
            return SearchResult(territories=[], total=0, formerly={}, notes=[hint])
        current = and_(
            *(Territory.search_name.contains(token, autoescape=True) for token in tokens)
        )
        former = select(FormerCommune.territory_id).where(
            *(FormerCommune.search_name.contains(token, autoescape=True) for token in tokens)
        )
        conditions.append(or_(current, Territory.id.in_(former)))
    if postal is not None:
        notes.extend(postal.notes)
        conditions.append(
            Territory.id.in_(
                select(TerritoryPostalCode.territory_id).where(
                    TerritoryPostalCode.postal_code == postal.code
                )
            )
        )
    if levels:
        conditions.append(Territory.level.in_(list(levels)))
    where = and_(true(), *conditions)
    total = session.scalar(select(func.count()).select_from(Territory).where(where)) or 0
    order = [Territory.population.desc().nulls_last(), Territory.name]
    if q is not None:
        folded = " ".join(tokens)
        former_exact = select(FormerCommune.territory_id).where(FormerCommune.search_name == folded)
        order = [
            or_(Territory.search_name == folded, Territory.id.in_(former_exact)).desc(),
            Territory.search_name.startswith(folded, autoescape=True).desc(),
            *order,
        ]
    found = list(
        session.scalars(
            select(Territory)
            .where(where)
            .options(selectinload(Territory.postal_codes))
            .order_by(*order)
            .limit(limit)
        ).all()
    )
    if postal is not None and total == 0:
        known = session.scalar(
            select(func.count())
            .select_from(TerritoryPostalCode)
            .where(TerritoryPostalCode.postal_code == postal.code)
        )
        if not known:
            notes.append(postal_code_miss(session, postal))
    formerly = _former_names_matched(session, found, tokens) if tokens else {}
    return SearchResult(territories=found, total=total, formerly=formerly, notes=notes)


def _former_names_matched(
    session: Session, found: Sequence[Territory], tokens: Sequence[str]
) -> dict[int, FormerCommuneOut]:
    """For each territory found by a former commune's name only, that former commune (the
    one named exactly, else the first by name)."""
    by_former = [t for t in found if not all(token in t.search_name for token in tokens)]
    if not by_former:
        return {}
    folded = " ".join(tokens)
    out: dict[int, FormerCommuneOut] = {}
    rows = session.scalars(
        select(FormerCommune)
        .where(
            FormerCommune.territory_id.in_([t.id for t in by_former]),
            *(FormerCommune.search_name.contains(token, autoescape=True) for token in tokens),
        )
        .order_by((FormerCommune.search_name == folded).desc(), FormerCommune.search_name)
    ).all()
    current = {t.id: t for t in by_former}
    for former in rows:
        if former.territory_id not in out:
            out[former.territory_id] = former_out(former, current[former.territory_id])
    return out
