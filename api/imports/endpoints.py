"""Bulk onboarding: organisations imported from and exported to CSV or XLSX files (the
coordinator's and admins' job)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from api.imports import service
from api.imports.formats import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from api.imports.schemas import ExportFormat, ImportReport
from api.kit.auth import Access, access
from api.kit.deps import MatchingDep, ReaderDep, SessionDep, ViewerDep
from api.kit.errors import PayloadTooLarge, UnsupportedMediaType, problem_responses
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
    """The request body, refused (413) as soon as it exceeds the import limit: the
    announced length is checked first, then the bytes as they arrive."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type not in ACCEPTED_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Type de contenu « {media_type or 'absent'} » non pris en charge : envoyez le "
            f"fichier lui-même avec Content-Type {CSV_MEDIA_TYPE} ou {XLSX_MEDIA_TYPE}."
        )
    limit: int = request.app.state.settings.import_max_bytes
    too_large = PayloadTooLarge(
        f"Fichier trop volumineux : {limit // 1024} Kio au plus (réglage "
        "MAILLAGE_IMPORT_MAX_BYTES). Découpez-le en plusieurs fichiers."
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    request.state.body = b"".join(chunks)  # what an Idempotency-Key's fingerprint reads
    return bytes(request.state.body)


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
