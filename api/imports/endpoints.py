"""Bulk onboarding: organisations imported from and exported to CSV or XLSX files, calls
for projects imported from JSON, CSV or XLSX files (the coordinator's and admins' job)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.imports import call_import, service
from api.imports.formats import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from api.imports.schemas import CallImportReport, ExportFormat, ImportReport
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep, ViewerDep
from api.kit.errors import UnsupportedMediaType, problem_responses
from api.kit.idempotency import IdempotencyDep
from api.kit.routing import Route

router = APIRouter(
    route_class=Route,
    prefix="/api/v1",
    tags=["import et export"],
    responses=problem_responses(401, 403),
)

# The body is the file itself. Browsers and tools name CSV files in several ways; the
# content decides (an XLSX file is a ZIP archive), the media type only keeps JSON and
# forms out.
ACCEPTED_MEDIA_TYPES = frozenset(
    {
        CSV_MEDIA_TYPE,
        "application/csv",
        "text/plain",
        "application/vnd.ms-excel",
        XLSX_MEDIA_TYPE,
        "application/octet-stream",
    }
)
_FILE_SCHEMA: dict[str, Any] = {"type": "string", "format": "binary"}
_IMPORT_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself (not a form): CSV (UTF-8 or Windows-1252, ';' or ',' "
        "separators) or XLSX (first sheet), header in row 1.",
        "content": {
            CSV_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
            XLSX_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
        },
    }
}


async def read_upload(request: Request) -> bytes:
    """The request body, once its media type is one a file can have (`BodyLimit` has
    already refused one over MAILLAGE_IMPORT_MAX_BYTES, 413, as its bytes arrived)."""
    _check_media_type(request, ACCEPTED_MEDIA_TYPES, f"{CSV_MEDIA_TYPE} ou {XLSX_MEDIA_TYPE}")
    return await request.body()


def _check_media_type(request: Request, accepted: frozenset[str], hint: str) -> None:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in accepted:
        raise UnsupportedMediaType(
            f"Type de contenu « {media_type or 'absent'} » non pris en charge : envoyez le "
            f"fichier lui-même avec Content-Type {hint}."
        )


UploadDep = Annotated[bytes, Depends(read_upload)]


@router.post(
    "/imports/organisations",
    response_model=ImportReport,
    responses=problem_responses(413, 415, 422),
    openapi_extra={**access(Access.coordinator, costly=True), **_IMPORT_BODY},
)
def import_organisations(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    data: UploadDep,
    # After the file: its fingerprint reads the bytes read above.
    _idempotency: IdempotencyDep,
    dry_run: Annotated[
        bool, Query(description="Check the file and tell what would change; write nothing.")
    ] = False,
) -> ImportReport:
    """Import organisations, their statements and contacts from a CSV or XLSX file: all or
    nothing (422 listing every problem by row and column), again without change."""
    return service.import_file(session, reader, matching, viewer, data, dry_run=dry_run)


@router.get(
    "/exports/organisations",
    response_class=Response,
    responses={
        200: {
            "description": "The file, in the format the import reads.",
            "content": {
                CSV_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
                XLSX_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
            },
        },
        **problem_responses(422),
    },
    openapi_extra=access(Access.coordinator, costly=True),
)
def export_organisations(
    session: SessionDep,
    viewer: ViewerDep,
    file_format: Annotated[ExportFormat, Query(alias="format")] = ExportFormat.csv,
) -> Response:
    """Every organisation not archived, in the import's format, contacts and coordinator-only
    statements included."""
    content, media_type = service.export_file(session, viewer, file_format)
    return Response(
        content,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="organisations.{file_format.value}"'
        },
    )


JSON_MEDIA_TYPE = "application/json"
CALLS_MEDIA_TYPES = ACCEPTED_MEDIA_TYPES | {JSON_MEDIA_TYPE}


async def read_calls_upload(request: Request) -> bytes:
    """The body of a calls import: a spreadsheet as for organisations, or JSON (413 beyond
    the import limit)."""
    _check_media_type(
        request, CALLS_MEDIA_TYPES, f"{JSON_MEDIA_TYPE}, {CSV_MEDIA_TYPE} ou {XLSX_MEDIA_TYPE}"
    )
    return await request.body()


CallsUploadDep = Annotated[bytes, Depends(read_calls_upload)]
_CALLS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file itself (not a form): JSON in the record shape of "
        'Aides-territoires (a page of its API, {"results": [...]}, or a list of records), '
        "or a spreadsheet, CSV (UTF-8 or Windows-1252, ';' or ',' separators) or XLSX (first "
        "sheet), one call per row, header in row 1 (columns: see the README).",
        "content": {
            JSON_MEDIA_TYPE: {"schema": {"oneOf": [{"type": "object"}, {"type": "array"}]}},
            CSV_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
            XLSX_MEDIA_TYPE: {"schema": _FILE_SCHEMA},
        },
    }
}


@router.post(
    "/imports/calls",
    response_model=CallImportReport,
    responses=problem_responses(409, 413, 415, 422),
    openapi_extra={**access(Access.coordinator, costly=True), **_CALLS_BODY},
)
def import_calls(
    session: SessionDep,
    reader: ReaderDep,
    matching: MatchingDep,
    viewer: ViewerDep,
    data: CallsUploadDep,
    # After the file: its fingerprint reads the bytes read above.
    _idempotency: IdempotencyDep,
    dry_run: Annotated[
        bool, Query(description="Check the file and tell what would change; write nothing.")
    ] = False,
    source: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=60,
            pattern=r"^[a-z0-9][a-z0-9._-]*$",
            description="Source of the calls whose record names none (default: "
            "aides-territoires for JSON, import for spreadsheets); with their ids, what "
            "tells a call again on the next import.",
        ),
    ] = None,
) -> CallImportReport:
    """Import calls for projects from Aides-territoires' JSON or a CSV/XLSX file: all or
    nothing (422 listing every problem by record and field), again without duplicate; each
    change to a call is logged."""
    return call_import.import_calls(
        session, reader, matching, viewer, data, source=source, dry_run=dry_run
    )
