"""Server-rendered French pages (Jinja2 templates in api/templates/pages)."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

PAGES = Path(__file__).resolve().parents[1] / "templates" / "pages"

templates = Jinja2Templates(directory=PAGES)


def page(
    request: Request,
    title: str,
    *lines: str,
    error: str | None = None,
    action: str | None = None,
    fields: dict[str, str] | None = None,
    button: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    """A short page: a title, paragraphs, an error, or a one-button form (POST to `action`
    with hidden `fields`). Texts are escaped by the template."""
    context = {
        "title": title,
        "lines": lines,
        "error": error,
        "action": action,
        "fields": fields,
        "button": button,
    }
    return templates.TemplateResponse(request, "action.html", context, status_code=status_code)
