"""Server-rendered French pages (Jinja2 templates in api/templates/pages)."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates

PAGES = Path(__file__).resolve().parents[1] / "templates" / "pages"

templates = Jinja2Templates(directory=PAGES)
