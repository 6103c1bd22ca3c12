"""Importing calls, step one: a file read into call records, every value checked, without
the database (see `call_import.py` for the steps that follow).

Two kinds of file. A spreadsheet (CSV or XLSX, one call per row, the columns of
`CALLS_LAYOUT`), the network's own: an empty cell says nothing. A JSON file in the record
shape of Aides-territoires, the State's catalogue (`{"results": [...]}` as its API pages
them, or a plain list): each record says everything it maps, HTML turned into text,
audiences into the kinds and legal forms of the network.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from api.calls.schemas import FRANCE, CallPatch
from api.calls.vocabulary import AUDIENCES, unique
from api.imports.formats import FileFormat, FileProblems, Layout, Problem, read_table
from api.imports.html import looks_like_html, plain_text
from api.imports.schemas import KIND_LABELS
from api.kit.errors import french_errors
from matcher.text import name_key
from models.enums import OrganisationKind

# --- the spreadsheet ----------------------------------------------------------------------

CALL_COLUMNS: tuple[str, ...] = (
    "titre",
    "financeurs",
    "description",
    "exigences",
    "perimetre",
    "types_eligibles",
    "formes_juridiques",
    "ouverture",
    "date_limite",
    "url",
    "thematiques",
    "types_aide",
    "source",
    "identifiant",
)
CALL_ALIASES: dict[str, str] = {
    "title": "titre",
    "nom": "titre",
    "intitule": "titre",
    "financeur": "financeurs",
    "funders": "financeurs",
    "porteur": "financeurs",
    "exigence": "exigences",
    "requirements": "exigences",
    "criteres": "exigences",
    "perimetres": "perimetre",
    "perimeter": "perimetre",
    "territoire": "perimetre",
    "territoires": "perimetre",
    "types_eligible": "types_eligibles",
    "type_eligible": "types_eligibles",
    "publics": "types_eligibles",
    "beneficiaires": "types_eligibles",
    "forme_juridique": "formes_juridiques",
    "formes_juridiques_eligibles": "formes_juridiques",
    "date_d_ouverture": "ouverture",
    "debut": "ouverture",
    "opens_on": "ouverture",
    "date_de_cloture": "date_limite",
    "date_limite_de_depot": "date_limite",
    "cloture": "date_limite",
    "echeance": "date_limite",
    "deadline": "date_limite",
    "lien": "url",
    "site": "url",
    "adresse": "url",
    "themes": "thematiques",
    "thematique": "thematiques",
    "type_d_aide": "types_aide",
    "types_d_aide": "types_aide",
    "aid_types": "types_aide",
    "id": "identifiant",
    "external_id": "identifiant",
    "reference": "identifiant",
}
CALLS_LAYOUT = Layout(CALL_COLUMNS, CALL_ALIASES, "titre", frozenset({"ouverture", "date_limite"}))

# Where each field of a call comes from, in a spreadsheet and in an Aides-territoires record.
_CSV_FIELDS = {
    "title": "titre",
    "funders": "financeurs",
    "description": "description",
    "requirements": "exigences",
    "perimeter": "perimetre",
    "eligible_kinds": "types_eligibles",
    "eligible_legal_forms": "formes_juridiques",
    "opens_on": "ouverture",
    "deadline": "date_limite",
    "url": "url",
    "themes": "thematiques",
    "aid_types": "types_aide",
    "source": "source",
    "external_id": "identifiant",
}
_JSON_FIELDS = {
    "title": "name",
    "funders": "financers",
    "description": "description",
    "perimeter": "perimeter",
    "eligible_kinds": "targeted_audiences",
    "eligible_legal_forms": "targeted_audiences",
    "opens_on": "start_date",
    "deadline": "submission_deadline",
    "url": "origin_url",
    "themes": "categories",
    "aid_types": "aid_types",
    "source": "id",
    "external_id": "id",
}

# The order problems are listed in, within a row or a record.
PROBLEM_ORDER: tuple[str, ...] = (
    *CALL_COLUMNS,
    "id",
    "name",
    "financers",
    "description",
    "eligibility",
    "perimeter",
    "targeted_audiences",
    "aid_types",
    "start_date",
    "submission_deadline",
    "origin_url",
    "categories",
)

# Perimeters catalogues name that are no territory of the referential: all of France (a
# European call is open everywhere in France), and the régions of the mainland or overseas.
_METROPOLE = ("11", "24", "27", "28", "32", "44", "52", "53", "75", "76", "84", "93", "94")
_OUTRE_MER = ("01", "02", "03", "04", "06")
SPECIAL_PERIMETERS: dict[str, list[str]] = {
    "france": [FRANCE],
    "europe": [FRANCE],
    "union europeenne": [FRANCE],
    "france entiere": [FRANCE],
    "national": [FRANCE],
    "france metropolitaine": [f"region:{code}" for code in _METROPOLE],
    "metropole": [f"region:{code}" for code in _METROPOLE],
    "outre mer": [f"region:{code}" for code in _OUTRE_MER],
    "outre mer dom": [f"region:{code}" for code in _OUTRE_MER],
    "dom": [f"region:{code}" for code in _OUTRE_MER],
}


def expand_perimeter(tokens: list[str]) -> list[str]:
    """The perimeter's references and names, those of `SPECIAL_PERIMETERS` replaced by
    what they stand for."""
    out: list[str] = []
    for token in tokens:
        for part in SPECIAL_PERIMETERS.get(name_key(token), [token]):
            if part not in out:
                out.append(part)
    return out


MAX_RECORDS = 20_000
DEFAULT_SOURCES = {FileFormat.csv: "import", FileFormat.xlsx: "import"}
AIDES_TERRITOIRES = "aides-territoires"


@dataclass
class CallRecord:
    """One call of the file: the fields it gives (as `CallPatch` reads them), the
    perimeter as written (references or names), where each field came from."""

    position: int  # its row (header: 1), or its place among the JSON records (first: 1)
    unit: str  # "row" or "record"
    values: dict[str, Any] = field(default_factory=dict)
    origin: dict[str, str] = field(default_factory=dict)
    perimeter: list[str] | None = None
    # The record states every field it maps (JSON): a null clears, eligibility is the feed's.
    complete: bool = False
    # Why no call comes of it (French), for a record no organisation of the network may answer.
    skipped: str | None = None
    data: CallPatch | None = None

    @property
    def title(self) -> str:
        return str(self.values.get("title") or "(sans titre)")

    def problem(self, msg: str, name: str | None) -> Problem:
        column = self.origin.get(name, name) if name else None
        return Problem(msg, self.position, column, unit=self.unit)

    def dedupe_key(self) -> tuple[Any, ...]:
        """What names the call: its source id, else its folded title, funders and deadline."""
        assert self.data is not None
        if self.data.external_id is not None:
            return ("id", self.data.source, self.data.external_id)
        funders = tuple(sorted(name_key(f) for f in self.data.funders or []))
        title = name_key(self.data.title or "")
        return ("title", title, funders, self.data.deadline)


def _split(cell: str, separators: str) -> list[str]:
    return [t.strip() for t in re.split(f"[{separators}]+", cell) if t.strip()]


_LIST = r"\n;|"
_LIST_OR_COMMA = r"\n;|,"
_LINES = r"\n|"


def _read_date(text: str) -> str:
    """AAAA-MM-JJ (a timestamp's date part too) or JJ/MM/AAAA, as AAAA-MM-JJ; anything else
    comes back as it is, for the schema to refuse with its message."""
    text = text.strip()
    iso = re.match(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ][0-9:.+Z-]*)?$", text)
    if iso:
        return iso.group(1)
    french = re.match(r"^([0-9]{1,2})[/.-]([0-9]{1,2})[/.-]([0-9]{4})$", text)
    if french:
        day, month, year = (int(g) for g in french.groups())
        try:
            return date(year, month, day).isoformat()
        except ValueError:
            return text
    return text


def _kind_labels() -> dict[str, OrganisationKind]:
    out: dict[str, OrganisationKind] = {}
    for kind, labels in KIND_LABELS.items():
        for label in (kind.value, *labels):
            out[name_key(label)] = kind
    plurals = {
        "bailleurs": OrganisationKind.landlord,
        "bailleurs sociaux": OrganisationKind.landlord,
        "organismes hlm": OrganisationKind.landlord,
        "associations": OrganisationKind.association,
        "entreprises": OrganisationKind.company,
        "organismes publics": OrganisationKind.public_body,
        "collectivites": OrganisationKind.public_body,
    }
    out.update(plurals)
    return out


_KINDS = _kind_labels()


def _check(record: CallRecord, problems: list[Problem]) -> None:
    """Check the record's fields with the API's own schema, naming the column (or field)
    of each problem."""
    try:
        record.data = CallPatch.model_validate(record.values)
    except ValidationError as exc:
        for error in french_errors(exc.errors()):
            loc = error["loc"]
            name = str(loc[0]) if loc else None
            problems.append(record.problem(error["msg"], name))
        return
    opens_on, deadline = record.data.opens_on, record.data.deadline
    if opens_on is not None and deadline is not None and deadline < opens_on:
        problems.append(
            record.problem(
                f"La date limite ({deadline.isoformat()}) précède l'ouverture "
                f"({opens_on.isoformat()}).",
                "deadline",
            )
        )


def _row_record(
    number: int, cells: Mapping[str, str], source: str, problems: list[Problem]
) -> CallRecord:
    record = CallRecord(number, "row", origin=dict(_CSV_FIELDS))
    values = record.values
    values["title"] = cells.get("titre", "")
    readers: dict[str, Callable[[str], Any]] = {
        "financeurs": lambda c: _split(c, _LIST),
        "description": lambda c: plain_text(c) if looks_like_html(c) else c,
        "exigences": lambda c: _split(c, _LINES),
        "formes_juridiques": lambda c: _split(c, _LIST_OR_COMMA),
        "ouverture": _read_date,
        "date_limite": _read_date,
        "url": lambda c: c,
        "thematiques": lambda c: _split(c, _LIST_OR_COMMA),
        "types_aide": lambda c: _split(c, _LIST),
        "identifiant": lambda c: c,
    }
    by_column = {column: name for name, column in _CSV_FIELDS.items()}
    for column, read in readers.items():
        cell = cells.get(column, "")
        if cell:
            values[by_column[column]] = read(cell)
    values["source"] = cells.get("source") or source
    kinds_cell = cells.get("types_eligibles", "")
    if kinds_cell:
        kinds = []
        for label in _split(kinds_cell, _LIST_OR_COMMA):
            kind = _KINDS.get(name_key(label))
            if kind is None:
                problems.append(
                    record.problem(
                        f"Type d'organisation inconnu « {label[:80]} » : bailleur, association, "
                        "organisme public, entreprise, recherche ou autre.",
                        "eligible_kinds",
                    )
                )
            else:
                kinds.append(kind.value)
        values["eligible_kinds"] = kinds
    perimeter = cells.get("perimetre", "")
    if perimeter:
        record.perimeter = expand_perimeter(_split(perimeter, _LIST_OR_COMMA))
    _check(record, problems)
    return record


def read_rows(
    data: bytes, source: str | None
) -> tuple[list[CallRecord], list[Problem], FileFormat]:
    """The calls of a CSV or XLSX file, one per row. Returns the records, every problem
    found in them and the file's format. Raises FileProblems (the file itself cannot be
    read: encoding, unknown column…)."""
    table = read_table(data, CALLS_LAYOUT)
    problems: list[Problem] = []
    default = source or DEFAULT_SOURCES[table.format]
    records = [_row_record(row.number, row.cells, default, problems) for row in table.rows]
    return records, problems, table.format


# --- Aides-territoires' JSON -------------------------------------------------------------


class _Fields:
    """Typed reads of one JSON record, each wrong type a problem at its field."""

    def __init__(self, raw: Mapping[str, Any], record: CallRecord, problems: list[Problem]) -> None:
        self.raw, self.record, self.problems = raw, record, problems

    def _wrong(self, key: str, expected: str) -> None:
        self.problems.append(
            Problem(f"{expected} attendu(e).", self.record.position, key, "record")
        )

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            self._wrong(key, "Un texte")
            return None
        return value.strip()

    def texts(self, key: str) -> list[str]:
        """A list of texts; a single text is a list of one (some feeds write so)."""
        value = self.raw.get(key)
        if value is None:
            return []
        if isinstance(value, str):
            return [value.strip()] if value.strip() else []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self._wrong(key, "Une liste de textes")
            return []
        return [v.strip() for v in value if v.strip()]

    def identifier(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is None or isinstance(value, bool):
            if isinstance(value, bool):
                self._wrong(key, "Un identifiant (nombre ou texte)")
            return None
        if isinstance(value, int | str):
            return str(value).strip() or None
        self._wrong(key, "Un identifiant (nombre ou texte)")
        return None


def _theme(category: str) -> str:
    """ "Thème|Catégorie" -> "Catégorie"; a plain name as it is."""
    return category.rsplit("|", 1)[-1].strip()


def _json_record(
    position: int, raw: Mapping[str, Any], source: str, problems: list[Problem]
) -> CallRecord:
    record = CallRecord(position, "record", origin=dict(_JSON_FIELDS), complete=True)
    read = _Fields(raw, record, problems)
    values = record.values
    values["title"] = read.text("name") or ""
    values["funders"] = read.texts("financers")
    parts = []
    description = read.text("description")
    if description:
        parts.append(plain_text(description))
    eligibility = read.text("eligibility")
    if eligibility:
        parts.append("Conditions d'éligibilité :\n" + plain_text(eligibility))
    values["description"] = "\n\n".join(p for p in parts if p) or None
    perimeter = read.texts("perimeter")
    if not perimeter:
        problems.append(record.problem("Le périmètre de l'aide est absent.", "perimeter"))
    record.perimeter = expand_perimeter(perimeter)
    kinds: list[str] = []
    forms: list[str] = []
    audiences = read.texts("targeted_audiences")
    for label in audiences:
        mapped = AUDIENCES.get(name_key(label))
        if mapped is None:
            problems.append(
                record.problem(
                    f"Public visé inconnu « {label[:120]} » : il n'a pas de correspondance "
                    "parmi les types d'organisation du réseau.",
                    "eligible_kinds",
                )
            )
            continue
        kinds += [k.value for k in mapped[0]]
        forms += list(mapped[1])
    if audiences and not kinds and not forms:
        record.skipped = (
            f"Réservée à des publics qui ne sont pas des organisations du réseau "
            f"({', '.join(audiences)})."
        )
    values["eligible_kinds"] = list(dict.fromkeys(kinds))
    values["eligible_legal_forms"] = unique(forms)
    for name, key in (("opens_on", "start_date"), ("deadline", "submission_deadline")):
        record.origin[name] = key
        text = read.text(key)
        values[name] = _read_date(text) if text else None
    urls = [read.text(k) for k in ("origin_url", "application_url", "url")]
    absolute = [u for u in urls if u and u.startswith(("http://", "https://"))]
    values["url"] = absolute[0] if absolute else None
    values["themes"] = unique(t for t in (_theme(c) for c in read.texts("categories")) if t)
    values["aid_types"] = unique(read.texts("aid_types"))
    values["source"] = source
    values["external_id"] = read.identifier("id")
    _check(record, problems)
    return record


def read_json(data: bytes, source: str | None) -> tuple[list[CallRecord], list[Problem]]:
    """The calls of a JSON file in Aides-territoires' record shape: the `results` of a page
    of its API, or a list of records. Returns the records and every problem found in them.
    Raises FileProblems (not JSON, or not that shape)."""
    text = data.decode("utf-8-sig", errors="strict") if _utf8(data) else None
    if text is None:
        raise FileProblems([Problem("Fichier JSON illisible : il doit être encodé en UTF-8.")])
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FileProblems(
            [Problem(f"JSON invalide, ligne {exc.lineno}, colonne {exc.colno} : {exc.msg}.")]
        ) from exc
    if isinstance(document, dict) and isinstance(document.get("results"), list):
        raws = document["results"]
    elif isinstance(document, list):
        raws = document
    else:
        raise FileProblems(
            [
                Problem(
                    'Forme inattendue : une page d\'Aides-territoires ({"results": [...]}) ou '
                    "une liste d'aides est attendue."
                )
            ]
        )
    if not raws:
        raise FileProblems([Problem("Le fichier ne contient aucune aide.")])
    if len(raws) > MAX_RECORDS:
        raise FileProblems([Problem(f"Trop d'aides : {MAX_RECORDS} au plus par fichier.")])
    problems: list[Problem] = []
    records = []
    for position, raw in enumerate(raws, start=1):
        if not isinstance(raw, dict):
            problems.append(Problem("Une aide doit être un objet JSON.", position, unit="record"))
            continue
        records.append(_json_record(position, raw, source or AIDES_TERRITOIRES, problems))
    return records, problems


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def is_json(data: bytes) -> bool:
    """A JSON document (an object or a list) rather than a spreadsheet."""
    head = data[:64].lstrip(b"\xef\xbb\xbf \t\r\n")
    return head[:1] in (b"{", b"[")


def read_records(
    data: bytes, source: str | None = None
) -> tuple[list[CallRecord], list[Problem], str]:
    """The calls of a file (JSON, CSV or XLSX, told apart by their first bytes), every
    problem found in them, and the format's name. `source`: the source of calls that name
    none (default: "aides-territoires" for JSON, "import" for spreadsheets). Raises
    FileProblems (the file itself cannot be read)."""
    if is_json(data):
        records, problems = read_json(data, source)
        return records, problems, "json"
    if not data.strip():
        raise FileProblems([Problem("Le fichier est vide.")])
    rows, problems, fmt = read_rows(data, source)
    return rows, problems, fmt.value
