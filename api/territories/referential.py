"""Loading the territory referential (`fixtures/territories`) into the database, and knowing
whether the database holds the current revision of it."""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from matcher.text import fold, fold_place_name
from models import FormerCommune, ReferentialVersion, Territory, TerritoryPostalCode
from models.enums import TerritoryLevel

REFERENTIAL_FILE = "territories/territories-2026.json.gz"
REFERENTIAL_NAME = "territories"


@dataclass(frozen=True)
class LoadReport:
    inserted: int
    updated: int
    postal_codes: int
    former_communes: int = 0


def _version_of(data: Mapping[str, Any]) -> str:
    return f"{data.get('version')}/{data.get('revision', 1)}"


def file_version(path: Path) -> str:
    """'6.0.0/2': the package version and the file's revision, read from the file's head
    (both come first in it) without decompressing the rest."""
    with path.open("rb") as fh:
        head = zlib.decompressobj(wbits=31).decompress(fh.read(4096), 400)
    text_head = head.decode("utf-8", "ignore")
    version = re.search(r'"version":"([^"]*)"', text_head)
    revision = re.search(r'"revision":(\d+)', text_head)
    return _version_of(
        {
            "version": version.group(1) if version else None,
            "revision": int(revision.group(1)) if revision else 1,
        }
    )


@lru_cache(maxsize=2)
def place_name_words(path: Path) -> frozenset[str]:
    """Every word of the referential's place names (régions, départements, EPCI, communes
    with their arrondissements and former communes), folded (`matcher.text.fold`): what a
    search leaves as written rather than take "Berre" or "Trets" for a typo."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    names = [
        row[1]
        for part in ("regions", "departements", "epci", "communes", "arrondissements", "former")
        for row in data.get(part, [])
        if isinstance(row[1], str)
    ]
    return frozenset(fold("\n".join(names)).split())


def referential_is_current(session: Session, path: Path) -> bool:
    """Whether the database holds the referential of `path`, at its revision: an older one
    (loaded before the history of merged communes shipped, say) is refreshed by
    `territories load --if-empty` and the demo."""
    if count_territories(session) == 0:
        return False
    stored = session.get(ReferentialVersion, REFERENTIAL_NAME)
    return stored is not None and stored.version == file_version(path)


def _rows_from_fixture(
    path: Path,
) -> tuple[list[dict[str, Any]], list[tuple[str, str, str]], dict[str, Any]]:
    """Territory rows, (level, code, postal_code) triples and the file itself."""
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
    return rows, postal, data


def _former_rows(
    data: Mapping[str, Any], ids: Mapping[tuple[str, str], int], names: Mapping[str, str]
) -> list[dict[str, Any]]:
    """Rows of `former_communes`: a former name folded as the current commune's is no
    alias (the chef-lieu déléguée of the same name) and is not searched by name."""
    rows = []
    for code, name, status, current in data.get("former", []):
        territory_id = ids.get(("commune", current))
        if territory_id is None:
            continue
        folded = fold_place_name(name) if name else None
        rows.append(
            {
                "code": code,
                "name": name,
                "search_name": folded if folded and folded != names.get(current) else None,
                "status": status,
                "territory_id": territory_id,
            }
        )
    return rows


def load_territories(session: Session, path: Path) -> LoadReport:
    """Insert or update the referential in place (organisations keep their links)."""
    rows, postal, data = _rows_from_fixture(path)
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
    session.execute(delete(FormerCommune))
    commune_names = {r["code"]: r["search_name"] for r in rows if r["level"] == "commune"}
    former_rows = _former_rows(data, ids, commune_names)
    if former_rows:
        session.execute(insert(FormerCommune), former_rows)
    version = session.get(ReferentialVersion, REFERENTIAL_NAME)
    if version is None:
        session.add(ReferentialVersion(name=REFERENTIAL_NAME, version=_version_of(data)))
    else:
        version.version = _version_of(data)
    session.flush()
    if session.get_bind().dialect.name == "postgresql":
        # Fresh statistics after a bulk load: without them the planner hashes the whole
        # referential to join a few organisations to their territories.
        session.execute(text("ANALYZE territories"))
        session.execute(text("ANALYZE territory_postal_codes"))
        session.execute(text("ANALYZE former_communes"))
    return LoadReport(
        inserted=len(new_rows),
        updated=len(changed),
        postal_codes=len(postal_rows),
        former_communes=len(former_rows),
    )


def count_territories(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Territory)) or 0
