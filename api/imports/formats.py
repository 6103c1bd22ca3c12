"""The organisations spreadsheet, read from and written to CSV and XLSX bytes.

No database here: reading turns a file into rows of text cells keyed by column (the
columns of `COLUMNS`), with every problem of the file itself (encoding, unknown column,
a date or a formula where text is expected) named by row and column; the service then
checks what the cells mean.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"

# The columns, in the order an export writes them. Names are what users type in the
# header row; a header cell is read case-, accent- and space-insensitively.
COLUMNS: tuple[str, ...] = (
    "nom",
    "type",
    "forme_juridique",
    "siren",
    "territoires",
    "site_web",
    "description",
    "type_enonce",
    "enonce",
    "visibilite",
    "thematiques",
    "contact_nom",
    "contact_fonction",
    "contact_courriel",
    "contact_telephone",
)
ALIASES: dict[str, str] = {
    "nom_de_l_organisation": "nom",
    "organisation": "nom",
    "raison_sociale": "nom",
    "type_d_organisation": "type",
    "forme": "forme_juridique",
    "territoire": "territoires",
    "site": "site_web",
    "site_internet": "site_web",
    "type_d_enonce": "type_enonce",
    "nature": "type_enonce",
    "texte": "enonce",
    "visibilité": "visibilite",
    "thematique": "thematiques",
    "themes": "thematiques",
    "contact": "contact_nom",
    "contact_role": "contact_fonction",
    "contact_email": "contact_courriel",
    "contact_mail": "contact_courriel",
    "contact_tel": "contact_telephone",
}

MAX_ROWS = 20_000
MAX_COLUMNS = 60
# Decompressed size of an XLSX (a ZIP archive): refused beyond, before openpyxl reads it.
MAX_XLSX_UNPACKED = 200 * 1024 * 1024
MAX_CELL = 32_767  # Excel's own limit


@dataclass(frozen=True)
class Layout:
    """What a spreadsheet holds: its columns (in the order an export writes them), the
    other names people give them, the one column every file must have, and the columns
    holding dates (a date cell there is read as AAAA-MM-JJ, anywhere else it is refused)."""

    columns: tuple[str, ...]
    aliases: Mapping[str, str]
    required: str
    date_columns: frozenset[str] = frozenset()


ORGANISATIONS = Layout(COLUMNS, ALIASES, "nom")


class FileFormat(StrEnum):
    csv = "csv"
    xlsx = "xlsx"


@dataclass(frozen=True)
class Problem:
    """A problem of the file, at a row (1 is the header, as the spreadsheet shows it) and a
    column, either of which may be unknown; in a JSON file (`unit` "record"), at a record
    (the first is 1) and a field."""

    msg: str
    row: int | None = None
    column: str | None = None
    unit: str = "row"

    def loc(self) -> list[str | int]:
        loc: list[str | int] = []
        if self.row is not None:
            loc += [self.unit, self.row]
        if self.column is not None:
            loc.append(self.column)
        return loc or ["file"]


class FileProblems(Exception):
    """The file cannot be read: every problem found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(problems[0].msg if problems else "fichier illisible")
        self.problems = list(problems)


@dataclass(frozen=True)
class Row:
    number: int  # as the spreadsheet shows it: the header is row 1
    cells: dict[str, str]  # column -> text, stripped; absent columns are not keys

    def get(self, column: str) -> str:
        return self.cells.get(column, "")


@dataclass
class Table:
    columns: list[str]  # the columns the header holds, in its order
    rows: list[Row] = field(default_factory=list)
    format: FileFormat = FileFormat.csv


def column_key(header: str, aliases: Mapping[str, str] = ALIASES) -> str:
    """'Forme juridique' -> 'forme_juridique', 'Type d’énoncé' -> 'type_enonce' (via
    `aliases`), accents and case ignored."""
    text = unicodedata.normalize("NFKD", header.strip().lstrip("\ufeff"))
    text = "".join(c for c in text if not unicodedata.combining(c)).casefold()
    key = re.sub(r"[^a-z0-9]+", "_", text).strip("_")
    return aliases.get(key, key)


def detect_format(data: bytes) -> FileFormat:
    """XLSX files are ZIP archives; anything else is read as CSV text."""
    return FileFormat.xlsx if data[:4] == b"PK\x03\x04" else FileFormat.csv


def read_table(data: bytes, layout: Layout = ORGANISATIONS) -> Table:
    """The rows of a CSV or XLSX file (told apart by their first bytes) with the columns of
    `layout`. Raises FileProblems listing everything wrong with the file itself."""
    if not data.strip():
        raise FileProblems([Problem("Le fichier est vide.")])
    if data[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        raise FileProblems(
            [
                Problem(
                    "Format Excel 97-2003 (.xls) non pris en charge : enregistrez le classeur "
                    "au format .xlsx ou .csv."
                )
            ]
        )
    if detect_format(data) == FileFormat.xlsx:
        grid = _xlsx_grid(data)
        fmt = FileFormat.xlsx
    else:
        grid = _csv_grid(data)
        fmt = FileFormat.csv
    return _table(grid, fmt, layout)


# --- CSV ---------------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """UTF-8 (with or without the BOM Excel writes), else Windows-1252 (what Excel writes
    in France as "CSV (séparateur : point-virgule)"), else Latin-1, which decodes anything."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def sniff_delimiter(first_line: str) -> str:
    """The separator of the header line: ';' (Excel in France), ',' or a tab, whichever
    appears most outside quotes; ';' when none does (a one-column file)."""
    outside = re.sub(r'"[^"]*"', "", first_line)
    counts = {d: outside.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _csv_grid(data: bytes) -> list[tuple[int, list[Any]]]:
    text = decode_text(data)
    if "\x00" in text:
        raise FileProblems(
            [Problem("Fichier illisible : ce n'est ni un classeur .xlsx ni un fichier CSV.")]
        )
    first_line = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sniff_delimiter(first_line))
    grid: list[tuple[int, list[Any]]] = []
    try:
        for values in reader:
            # The spreadsheet's row: a quoted cell may span several lines of the file.
            grid.append((len(grid) + 1, values))
            if len(grid) > MAX_ROWS + 1:
                raise FileProblems([Problem(f"Trop de lignes : {MAX_ROWS} au plus par fichier.")])
    except csv.Error as exc:
        raise FileProblems([Problem(f"CSV illisible ({exc}).", row=len(grid) + 1)]) from exc
    return grid


# --- XLSX --------------------------------------------------------------------------------


def _xlsx_grid(data: bytes) -> list[tuple[int, list[Any]]]:
    """The first sheet's cells; formulas read as the value Excel last computed."""
    import openpyxl  # imported here: only XLSX work pays for it

    unreadable = FileProblems(
        [Problem("Classeur .xlsx illisible : enregistrez-le à nouveau depuis le tableur.")]
    )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise unreadable from exc
    if unpacked > MAX_XLSX_UNPACKED:
        raise FileProblems([Problem("Classeur trop volumineux une fois décompressé.")])

    def rows(data_only: bool) -> list[tuple[int, list[Any]]]:
        book = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
        try:
            sheet = book.worksheets[0]
            out = []
            for number, cells in enumerate(
                sheet.iter_rows(max_col=MAX_COLUMNS + 1, max_row=MAX_ROWS + 2), start=1
            ):
                out.append((number, [_xlsx_value(c) for c in cells]))
            return out
        finally:
            book.close()

    try:
        grid = rows(data_only=False)
        if any(isinstance(v, _Formula) for _, values in grid for v in values):
            # The values Excel computed when it last saved; a file written by a program
            # that computes nothing (openpyxl) has none: _Formula(None) stays an error.
            cached = dict(rows(data_only=True))
            grid = [
                (n, [_computed(cached, n, i, v) for i, v in enumerate(values)])
                for n, values in grid
            ]
    except FileProblems:
        raise
    except Exception as exc:  # openpyxl raises many kinds on a damaged archive
        raise unreadable from exc
    if len(grid) > MAX_ROWS + 1:
        raise FileProblems([Problem(f"Trop de lignes : {MAX_ROWS} au plus par fichier.")])
    return grid


@dataclass(frozen=True)
class _Formula:
    text: str | None


@dataclass(frozen=True)
class _ErrorValue:
    text: str


def _computed(cached: dict[int, list[Any]], row: int, index: int, value: Any) -> Any:
    if not isinstance(value, _Formula):
        return value
    values = cached.get(row, [])
    found = values[index] if index < len(values) else None
    return _Formula(None) if found is None else found


def _xlsx_value(cell: Any) -> Any:
    data_type = getattr(cell, "data_type", None)
    value = getattr(cell, "value", None)
    if data_type == "f":
        return _Formula(str(value))
    if data_type == "e":
        return _ErrorValue(str(value))
    return value


# --- cells to text -----------------------------------------------------------------------


def _cell_text(value: Any, column: str, dates: frozenset[str] = frozenset()) -> str:
    """The text of a cell; a date in a column of `dates` as AAAA-MM-JJ. Raises ValueError
    with a French message for what cannot be read as text: a date elsewhere, a logical
    value, an Excel error, a formula without a value."""
    if value is None:
        return ""
    if isinstance(value, _Formula):
        raise ValueError(
            "Formule sans valeur calculée : ouvrez et enregistrez le classeur dans le tableur, "
            "ou collez les valeurs à la place de la formule."
        )
    if isinstance(value, _ErrorValue):
        raise ValueError(f"Erreur du tableur « {value.text} » dans la cellule.")
    if isinstance(value, bool):
        raise ValueError("Valeur logique (VRAI/FAUX) inattendue : un texte est attendu.")
    if column in dates and isinstance(value, datetime | date):
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    if isinstance(value, datetime | date | time | timedelta):
        raise ValueError(
            "Le tableur a transformé cette cellule en date : saisissez-la au format Texte."
        )
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Nombre invalide.")
        if value.is_integer():
            value = int(value)
    if isinstance(value, int):
        text = str(value)
        # A SIREN typed as a number: a number cell holds no leading zero to keep.
        return text.zfill(9) if column == "siren" and len(text) < 9 else text
    text = unprotect(str(value))
    if len(text) > MAX_CELL:
        raise ValueError(f"Cellule trop longue ({len(text)} caractères, {MAX_CELL} au plus).")
    return text.strip()


def _table(grid: list[tuple[int, list[Any]]], fmt: FileFormat, layout: Layout) -> Table:
    problems: list[Problem] = []
    # The header: the first row; trailing empty cells are ignored.
    header_row = next(((n, v) for n, v in grid if any(_blank(x) is False for x in v)), None)
    if header_row is None:
        raise FileProblems([Problem("Le fichier est vide.")])
    header_number, header_values = header_row
    header_values = list(header_values)
    while header_values and _blank(header_values[-1]):
        header_values.pop()
    if header_number != 1:
        raise FileProblems(
            [
                Problem(
                    "La ligne 1 doit porter les noms des colonnes "
                    f"({', '.join(layout.columns[:3])}…).",
                    row=1,
                )
            ]
        )
    columns: list[str | None] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(header_values):
        if _blank(raw):
            columns.append(None)
            continue
        name = raw if isinstance(raw, str) else str(raw)
        key = column_key(name, layout.aliases)
        if key not in layout.columns:
            problems.append(
                Problem(
                    f"Colonne inconnue « {name.strip()[:80]} » (colonne {index + 1}). Colonnes "
                    f"possibles : {', '.join(layout.columns)}.",
                    row=1,
                    column=name.strip()[:80],
                )
            )
            columns.append(None)
            continue
        if key in seen:
            problems.append(
                Problem(
                    f"Colonne « {key} » en double (colonnes {seen[key] + 1} et {index + 1}).",
                    row=1,
                    column=key,
                )
            )
            columns.append(None)
            continue
        seen[key] = index
        columns.append(key)
    if len(columns) > MAX_COLUMNS:
        problems.append(Problem(f"Trop de colonnes : {MAX_COLUMNS} au plus.", row=1))
    if layout.required not in seen:
        problems.append(
            Problem(
                f"La colonne « {layout.required} » est obligatoire.",
                row=1,
                column=layout.required,
            )
        )
    table = Table(columns=[c for c in columns if c is not None], format=fmt)
    for number, values in grid[1:]:
        cells: dict[str, str] = {}
        for index, value in enumerate(values):
            column = columns[index] if index < len(columns) else None
            if column is None:
                if not _blank(value) and index >= len(columns):
                    problems.append(
                        Problem(
                            f"Valeur hors des colonnes nommées (colonne {index + 1}) : ajoutez "
                            "son nom à la ligne 1 ou effacez-la.",
                            row=number,
                        )
                    )
                continue
            try:
                cells[column] = _cell_text(value, column, layout.date_columns)
            except ValueError as exc:
                problems.append(Problem(str(exc), row=number, column=column))
        if any(cells.values()):
            table.rows.append(Row(number, cells))
    if problems:
        raise FileProblems(problems)
    if not table.rows:
        raise FileProblems(
            [Problem("Le fichier ne contient aucune ligne de données après l'en-tête.")]
        )
    return table


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


# --- writing -----------------------------------------------------------------------------


# A cell starting with one of these is a formula to a spreadsheet opening the CSV: written
# behind an apostrophe (as Excel itself does), which reading removes again.
_FORMULA_START = ("=", "+", "-", "@")


def protect(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def unprotect(value: str) -> str:
    return value[1:] if value.startswith("'") and value[1:].startswith(_FORMULA_START) else value


def write_csv(rows: Iterable[Sequence[str]]) -> bytes:
    """UTF-8 with a BOM and ';' separators: what Excel in France opens as is."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([protect(v) for v in row] for row in rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def write_xlsx(rows: Iterable[Sequence[str]]) -> bytes:
    """One sheet, every cell text: a code such as 01053 keeps its zero, and a value starting
    with '=' stays a text, never a formula."""
    import openpyxl
    from openpyxl.cell.cell import TYPE_STRING
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "organisations"
    sheet.append(list(COLUMNS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([v or None for v in row])
        for cell in sheet[sheet.max_row]:
            cell.number_format = "@"
            if cell.value is not None:
                cell.data_type = TYPE_STRING
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
