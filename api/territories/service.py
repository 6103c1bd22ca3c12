"""Territory referential: loading, resolving references, search."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, and_, delete, func, insert, or_, select, text, tuple_, update
from sqlalchemy.orm import Session, selectinload

from api.kit.errors import InvalidInput, NotFound
from api.territories.schemas import TerritoryBrief, TerritoryOut
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
from models import Territory, TerritoryPostalCode
from models.enums import TerritoryLevel

REFERENTIAL_FILE = "territories/territories-2026.json.gz"


class UnknownTerritory(InvalidInput):
    """A well-formed reference naming no territory of the referential."""


@dataclass(frozen=True)
class LoadReport:
    inserted: int
    updated: int
    postal_codes: int


def _rows_from_fixture(path: Path) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]]]:
    """Territory rows and (level, code, postal_code) triples from the compact file."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    commune_epci: dict[str, str] = {}
    epci_rows = []
    commune_dep = {c[0]: c[2] for c in data["communes"]}
    commune_reg = {c[0]: c[3] for c in data["communes"]}
    for siren, name, subtype, population, members in data["epci"]:
        for member in members:
            commune_epci[member] = siren
        deps = {commune_dep.get(m) for m in members}
        regs = {commune_reg.get(m) for m in members}
        epci_rows.append(
            {
                "level": TerritoryLevel.epci,
                "code": siren,
                "name": name,
                "population": population,
                "subtype": subtype,
                "departement_code": deps.pop() if len(deps) == 1 else None,
                "region_code": regs.pop() if len(regs) == 1 else None,
            }
        )
    rows: list[dict[str, Any]] = []
    postal: list[tuple[str, str, str]] = []
    for code, name, population in data["regions"]:
        rows.append(
            {"level": TerritoryLevel.region, "code": code, "name": name, "population": population}
        )
    for code, name, region, population in data["departements"]:
        rows.append(
            {
                "level": TerritoryLevel.departement,
                "code": code,
                "name": name,
                "population": population,
                "region_code": region,
            }
        )
    rows.extend(epci_rows)
    for code, name, dep, region, population, postal_codes in data["communes"]:
        rows.append(
            {
                "level": TerritoryLevel.commune,
                "code": code,
                "name": name,
                "population": population,
                "epci_code": commune_epci.get(code),
                "departement_code": dep,
                "region_code": region,
            }
        )
        postal.extend(("commune", code, p) for p in postal_codes)
    for code, name, commune, population, postal_codes in data["arrondissements"]:
        rows.append(
            {
                "level": TerritoryLevel.arrondissement,
                "code": code,
                "name": name,
                "population": population,
                "commune_code": commune,
                "epci_code": commune_epci.get(commune),
                "departement_code": commune_dep.get(commune),
                "region_code": commune_reg.get(commune),
            }
        )
        postal.extend(("arrondissement", code, p) for p in postal_codes)
    columns = ("subtype", "commune_code", "epci_code", "departement_code", "region_code")
    for row in rows:
        row["search_name"] = fold_place_name(row["name"])
        for column in columns:
            row.setdefault(column, None)
    return rows, postal


def load_territories(session: Session, path: Path) -> LoadReport:
    """Insert or update the referential in place (organisations keep their links)."""
    rows, postal = _rows_from_fixture(path)
    existing = {
        (level.value, code): id_
        for id_, level, code in session.execute(
            select(Territory.id, Territory.level, Territory.code)
        )
    }
    new_rows = [r for r in rows if (r["level"].value, r["code"]) not in existing]
    changed = [
        {**r, "id": existing[(r["level"].value, r["code"])]}
        for r in rows
        if (r["level"].value, r["code"]) in existing
    ]
    if new_rows:
        session.execute(insert(Territory), new_rows)
    if changed:
        session.execute(update(Territory), changed)
    ids = {
        (level.value, code): id_
        for id_, level, code in session.execute(
            select(Territory.id, Territory.level, Territory.code)
        )
    }
    session.execute(delete(TerritoryPostalCode))
    postal_rows = [
        {"postal_code": p, "territory_id": ids[(level, code)]} for level, code, p in postal
    ]
    session.execute(insert(TerritoryPostalCode), postal_rows)
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner hashes the whole
        # referential to join a few organisations to their territories.
        session.execute(text("ANALYZE territories"))
        session.execute(text("ANALYZE territory_postal_codes"))
    return LoadReport(inserted=len(new_rows), updated=len(changed), postal_codes=len(postal_rows))


def count_territories(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Territory)) or 0


def _lookup(session: Session, ref: TerritoryRef) -> Territory | None:
    levels = [ref.level]
    if ref.level == "commune":
        # An arrondissement municipal's INSEE code (13201) is a commune-level code too.
        levels.append("arrondissement")
    return session.scalars(
        select(Territory)
        .where(Territory.code == ref.code, Territory.level.in_(levels))
        .order_by(Territory.level)
    ).first()


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


def resolve_ref(session: Session, raw: str) -> Territory:
    """One reference to its territory; InvalidInput (French) when it cannot be resolved."""
    try:
        ref = parse_territory_ref(raw)
    except AmbiguousTerritoryRef as exc:
        raise InvalidInput(_ambiguous_message(session, exc.code)) from exc
    except TerritoryRefError as exc:
        raise InvalidInput(str(exc)) from exc
    territory = _lookup(session, ref)
    if territory is None:
        raise UnknownTerritory(_not_found_message(ref))
    return territory


def resolve_refs(
    session: Session, raws: Sequence[str], loc: Sequence[str | int]
) -> list[Territory]:
    """Resolve every reference, reporting all failures at once with their position."""
    territories: list[Territory] = []
    errors: list[dict[str, Any]] = []
    seen: set[int] = set()
    for index, raw in enumerate(raws):
        try:
            territory = resolve_ref(session, raw)
        except InvalidInput as exc:
            errors.append({"loc": [*loc, index], "msg": exc.message, "type": "territory"})
            continue
        if territory.id not in seen:
            seen.add(territory.id)
            territories.append(territory)
    if errors:
        detail = errors[0]["msg"]
        if len(errors) > 1:
            detail += f" Et {len(errors) - 1} autre(s) territoire(s) refusé(s)."
        raise InvalidInput(detail, errors=errors)
    return territories


def get_territory(session: Session, raw: str) -> Territory:
    try:
        return resolve_ref(session, raw)
    except UnknownTerritory as exc:
        raise NotFound(exc.message) from exc


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


def brief(territory: Territory) -> TerritoryBrief:
    return TerritoryBrief(
        ref=territory.ref, level=territory.level.value, code=territory.code, name=territory.name
    )


def describe(session: Session, territories: Sequence[Territory]) -> list[TerritoryOut]:
    """Full descriptions with parents, fetching every parent in one query."""
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
        )
        for t in territories
    ]


def search_territories(
    session: Session,
    *,
    q: str | None,
    postal_code: str | None,
    levels: Iterable[str] | None,
    limit: int,
) -> tuple[list[Territory], int]:
    """Search by name (accent- and case-insensitive, every word must appear) or postal code."""
    conditions: list[ColumnElement[bool]] = []
    if q is not None:
        tokens = fold_place_name(q).split()
        if not tokens:
            raise InvalidInput("La recherche par nom (q) est vide.")
        conditions.extend(
            Territory.search_name.contains(token, autoescape=True) for token in tokens
        )
    if postal_code is not None:
        conditions.append(
            Territory.id.in_(
                select(TerritoryPostalCode.territory_id).where(
                    TerritoryPostalCode.postal_code == postal_code
                )
            )
        )
    if levels:
        conditions.append(Territory.level.in_(list(levels)))
    where = and_(*conditions)
    total = session.scalar(select(func.count()).select_from(Territory).where(where)) or 0
    order = [Territory.population.desc().nulls_last(), Territory.name]
    if q is not None:
        folded = fold_place_name(q)
        order = [
            (Territory.search_name == folded).desc(),
            or_(Territory.search_name.startswith(folded, autoescape=True)).desc(),
            *order,
        ]
    found = session.scalars(
        select(Territory)
        .where(where)
        .options(selectinload(Territory.postal_codes))
        .order_by(*order)
        .limit(limit)
    ).all()
    return list(found), total
