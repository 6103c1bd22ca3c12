"""Which addresses are web pages (HTML errors, CSRF checks, the session cookie)."""

from __future__ import annotations

from urllib.parse import urlsplit

PAGE_PREFIXES = ("/connexion", "/deconnexion", "/espace")
SIGN_IN = "/connexion"
HOME = "/espace"


def is_page(path: str) -> bool:
    """True for the web pages' paths (not the API, the documentation or static files)."""
    return any(path == p or path.startswith(p + "/") for p in PAGE_PREFIXES)


def local_target(raw: str | None) -> str:
    """Where to go after signing in: a path of this site's pages, else the home page (never
    another site: `//evil.example`, `https://…` and backslashes are refused)."""
    if not raw or len(raw) > 500 or "\\" in raw or not raw.startswith("/") or raw.startswith("//"):
        return HOME
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc or not is_page(parts.path):
        return HOME
    return raw
