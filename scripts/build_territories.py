"""Build fixtures/territories/territories-2026.json.gz from the npm package
@etalab/decoupage-administratif@6.0.0 (MIT; data from INSEE's Code officiel
géographique, DGCL's EPCI list and La Poste's postal codes, Licence Ouverte).

Usage:
    python scripts/build_territories.py [PATH_TO_UNPACKED_PACKAGE]

Without a path, the script runs `npm pack` in a temporary folder (npm must reach its
registry). Commune-actuelle and arrondissement-municipal records are the places; the
history the package carries is kept apart, in `former`, so that an old code or name that
lives on in people's files resolves to the commune of today: communes déléguées and
associées (code and name, the current commune in `chefLieu`) and the `anciensCodes` of
current communes (merged communes without a délégation: the code only, the package has no
name for them). Where the two disagree, the délégation's `chefLieu` is the current one.
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import tarfile
import tempfile
from collections import defaultdict
from pathlib import Path

PACKAGE = "@etalab/decoupage-administratif@6.0.0"
# Bumped whenever the file's content or the folding of names changes: a database loaded
# from an earlier revision is refreshed by `maillage territories load --if-empty` and the
# demo (api.territories.referential.referential_is_current).
REVISION = 2
OUT = Path(__file__).resolve().parents[1] / "fixtures" / "territories" / "territories-2026.json.gz"


def fetch_package(workdir: Path) -> Path:
    subprocess.run(["npm", "pack", PACKAGE, "--silent"], cwd=workdir, check=True)
    tgz = next(workdir.glob("*.tgz"))
    with tarfile.open(tgz) as tar:
        tar.extractall(workdir, filter="data")
    return workdir / "package"


def build(package_dir: Path) -> dict[str, object]:
    data = package_dir / "data"

    def read(name: str) -> list[dict[str, object]]:
        return json.loads((data / name).read_text(encoding="utf-8"))

    version = json.loads((package_dir / "package.json").read_text())["version"]
    communes = [c for c in read("communes.json") if c["type"] == "commune-actuelle"]
    arrondissements = [c for c in read("communes.json") if c["type"] == "arrondissement-municipal"]
    epcis = read("epci.json")
    current_codes = {str(c["code"]) for c in communes}
    former: dict[str, list[object]] = {}
    for c in read("communes.json"):
        if c["type"] in ("commune-deleguee", "commune-associee"):
            status = "deleguee" if c["type"] == "commune-deleguee" else "associee"
            former[str(c["code"])] = [c["code"], c["nom"], status, c["chefLieu"]]
    for c in communes:
        for old in c.get("anciensCodes") or []:  # type: ignore[union-attr]
            if str(old) not in former and str(old) not in current_codes:
                former[str(old)] = [old, None, "ancienne", c["code"]]

    population: dict[tuple[str, str], int] = defaultdict(int)
    for c in communes:
        pop = int(c.get("population") or 0)
        population[("departement", str(c["departement"]))] += pop
        population[("region", str(c["region"]))] += pop

    return {
        "source": f"npm {PACKAGE}",
        "version": version,
        "revision": REVISION,
        "regions": [
            [r["code"], r["nom"], population.get(("region", str(r["code"])))]
            for r in read("regions.json")
        ],
        "departements": [
            [d["code"], d["nom"], d["region"], population.get(("departement", str(d["code"])))]
            for d in read("departements.json")
        ],
        "epci": [
            [
                e["code"],
                e["nom"],
                e["type"],
                e.get("populationTotale"),
                sorted(str(m["code"]) for m in e["membres"]),
            ]  # type: ignore[union-attr]
            for e in epcis
        ],
        "communes": [
            [
                c["code"],
                c["nom"],
                c.get("departement"),
                c.get("region"),
                c.get("population"),
                sorted(c.get("codesPostaux") or []),
            ]  # type: ignore[type-var]
            for c in communes
        ],
        "arrondissements": [
            [
                c["code"],
                c["nom"],
                c["commune"],
                c.get("population"),
                sorted(c.get("codesPostaux") or []),
            ]  # type: ignore[type-var]
            for c in arrondissements
        ],
        "former": sorted(former.values(), key=lambda f: (str(f[3]), str(f[0]))),
    }


def main() -> None:
    if len(sys.argv) > 1:
        payload = build(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            payload = build(fetch_package(Path(tmp)))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    # mtime=0 keeps the file byte-identical from one build to the next.
    with OUT.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", mtime=0, compresslevel=9) as gz:
        gz.write(raw)
    counts = {k: len(v) for k, v in payload.items() if isinstance(v, list)}
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} KiB): {counts}")


if __name__ == "__main__":
    main()
