"""Application errors and their RFC 9457 problem+json rendering (French messages)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.kit.methods import allowed_methods

PROBLEM_JSON = "application/problem+json"

TITLES_FR: dict[int, str] = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Introuvable",
    405: "Méthode non autorisée",
    409: "Conflit",
    413: "Requête trop volumineuse",
    415: "Type de contenu non pris en charge",
    422: "Données invalides",
    429: "Trop de requêtes",
    500: "Erreur interne",
    503: "Service momentanément indisponible",
}


class AppError(Exception):
    status_code = 400
    type_slug = "bad-request"
    headers: dict[str, str] = {}

    def __init__(
        self,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = errors
        if headers:
            self.headers = {**self.headers, **headers}


class InvalidInput(AppError):
    status_code = 422
    type_slug = "invalid-input"


class NotFound(AppError):
    status_code = 404
    type_slug = "not-found"


class Conflict(AppError):
    status_code = 409
    type_slug = "conflict"


class Forbidden(AppError):
    status_code = 403
    type_slug = "forbidden"


class PayloadTooLarge(AppError):
    status_code = 413
    type_slug = "payload-too-large"


class UnsupportedMediaType(AppError):
    status_code = 415
    type_slug = "unsupported-media-type"


class TooManyRequests(AppError):
    """Rate limit reached; `Retry-After` (seconds) says when to try again."""

    status_code = 429
    type_slug = "too-many-requests"


class ServiceUnavailable(AppError):
    """Overload: `Retry-After` (seconds) says when to send the same request again."""

    status_code = 503
    type_slug = "service-unavailable"


class Unauthorized(AppError):
    """No token, or one that does not authenticate (RFC 6750: `WWW-Authenticate: Bearer`)."""

    status_code = 401
    type_slug = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="maillage"'}


class FieldError(BaseModel):
    loc: list[str | int] = Field(
        description="Where the problem is, e.g. ['body', 'territories', 2]."
    )
    msg: str = Field(description="What is wrong, in French.")
    type: str = Field(default="value_error")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(description="URI naming the kind of problem.")
    title: str = Field(description="Short French summary of the kind of problem.")
    status: int
    detail: str = Field(description="French explanation of this occurrence.")
    instance: str | None = None
    errors: list[FieldError] | None = None


def problem_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """Declare error responses on a route so the OpenAPI document lists them."""
    return {
        code: {
            "model": Problem,
            "content": {PROBLEM_JSON: {}},
            "description": TITLES_FR.get(code, ""),
        }
        for code in codes
    }


def problem(
    status: int,
    detail: str,
    *,
    type_slug: str | None = None,
    instance: str | None = None,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{type_slug}" if type_slug else "about:blank",
        "title": TITLES_FR.get(status, HTTPStatus(status).phrase),
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if errors:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


_PYDANTIC_FR: dict[str, str] = {
    "missing": "Champ obligatoire manquant.",
    "extra_forbidden": "Champ inconnu.",
    "string_type": "Une chaîne de caractères est attendue.",
    "int_type": "Un nombre entier est attendu.",
    "int_parsing": "Un nombre entier est attendu.",
    "bool_type": "Un booléen est attendu.",
    "list_type": "Une liste est attendue.",
    "dict_type": "Un objet est attendu.",
    "model_type": "Un objet est attendu.",
    "model_attributes_type": "Un objet est attendu.",
    "enum": "Valeur non autorisée.",
    "literal_error": "Valeur non autorisée.",
    "string_too_short": "Texte trop court.",
    "string_too_long": "Texte trop long.",
    "too_short": "Liste trop courte.",
    "too_long": "Liste trop longue.",
    "greater_than_equal": "Valeur trop petite.",
    "less_than_equal": "Valeur trop grande.",
    "json_invalid": "JSON invalide.",
    "url_parsing": "Adresse web invalide.",
    "url_scheme": "L'adresse web doit commencer par http:// ou https://.",
    "value_error": "Valeur invalide.",
}


def _field_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    return french_errors(exc.errors())


def french_errors(raw: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as `{"loc", "msg", "type"}` entries with French messages."""
    out = []
    for err in raw:
        kind = str(err.get("type", "value_error"))
        message = _PYDANTIC_FR.get(kind, "Valeur invalide.")
        ctx = err.get("ctx") or {}
        if kind == "value_error" and "error" in ctx:
            message = str(ctx["error"])
        elif kind in {"enum", "literal_error"} and "expected" in ctx:
            message = f"Valeur non autorisée ; valeurs possibles : {ctx['expected']}."
        elif kind in {"string_too_short", "string_too_long"} and ctx:
            bound = ctx.get("min_length", ctx.get("max_length"))
            unit = "caractère" if bound == 1 else "caractères"
            message = f"{message[:-1]} (limite : {bound} {unit})."
        elif kind in {"too_short", "too_long"} and ctx:
            bound = ctx.get("min_length", ctx.get("max_length"))
            unit = "élément" if bound == 1 else "éléments"
            message = f"{message[:-1]} (limite : {bound} {unit})."
        elif kind in {"greater_than_equal", "less_than_equal"} and ctx:
            bound = ctx.get("ge", ctx.get("le"))
            message = f"{message[:-1]} (limite : {bound})."
        loc = [p if isinstance(p, int) else str(p) for p in err.get("loc", ())]
        out.append({"loc": loc, "msg": message, "type": kind})
    return out


# The errors the framework raises itself, said in French: a body FastAPI could not read
# (not UTF-8, or JSON nested deeper than the parser goes) is its 400.
_FRAMEWORK_DETAILS: dict[int, tuple[str, str]] = {
    400: (
        "Corps de requête illisible : envoyez du JSON en UTF-8, sans imbrication excessive.",
        "unreadable-body",
    ),
    404: ("Aucune ressource à cette adresse.", "not-found"),
    405: ("Cette méthode n'est pas acceptée à cette adresse.", "method-not-allowed"),
}
_SLUGS: dict[int, str] = {413: "payload-too-large", 415: "unsupported-media-type"}


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


# Renders an error as an HTML page for the web pages' paths (`api.web`), None elsewhere:
# (request, status, French detail, field errors, headers).
ErrorPage = Callable[
    [Request, int, str, list[dict[str, Any]] | None, dict[str, str] | None], Response | None
]


def _page(
    request: Request,
    status: int,
    detail: str,
    errors: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response | None:
    """The HTML page of an error on a web page's path (`app.state.error_page`), else None:
    the API's problem+json then answers."""
    render: ErrorPage | None = getattr(request.app.state, "error_page", None)
    return render(request, status, detail, errors, headers) if render is not None else None


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(request: Request, exc: AppError) -> Response:
        page = _page(request, exc.status_code, exc.message, exc.errors, exc.headers or None)
        if page is not None:
            return page
        return problem(
            exc.status_code,
            exc.message,
            type_slug=exc.type_slug,
            instance=request.url.path,
            errors=exc.errors,
            headers=exc.headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        page = _page(request, 422, "Adresse ou formulaire invalide.", _field_errors(exc))
        if page is not None:
            return page
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if not _is_json(media_type) and any(
            tuple(err.get("loc", ())) == ("body",) and err.get("type") != "missing"
            for err in exc.errors()
        ):
            # FastAPI reads a body as JSON only when it says it is; the rest reaches the
            # model as bytes. What is wrong is the media type, not the fields.
            return problem(
                415,
                f"Type de contenu « {media_type or 'absent'} » non pris en charge : envoyez du "
                "JSON avec Content-Type application/json.",
                type_slug="unsupported-media-type",
                instance=request.url.path,
            )
        errors = _field_errors(exc)
        first = errors[0] if errors else None
        where = " → ".join(str(p) for p in first["loc"]) if first else ""
        detail = f"{first['msg']} ({where})" if first else "Requête invalide."
        if len(errors) > 1:
            detail += f" et {len(errors) - 1} autre(s) problème(s)."
        return problem(
            422, detail, type_slug="invalid-input", instance=request.url.path, errors=errors
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        # Starlette's and FastAPI's own errors, in French; ours (413) carry a French detail.
        detail, slug = _FRAMEWORK_DETAILS.get(exc.status_code, (str(exc.detail), None))
        # Starlette's own headers (a 405's `Allow`) stay on the problem response.
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        page = _page(request, exc.status_code, detail, None, headers or None)
        if page is not None:
            return page
        return problem(
            exc.status_code,
            detail,
            type_slug=slug or _SLUGS.get(exc.status_code),
            instance=request.url.path,
            headers=headers or None,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        page = _page(
            request, 500, "Une erreur inattendue s'est produite ; rien n'a été enregistré."
        )
        if page is not None:
            return page
        return problem(
            500,
            "Une erreur inattendue s'est produite ; rien n'a été enregistré.",
            instance=request.url.path,
        )
