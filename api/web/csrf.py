"""CSRF protection of the pages' forms: Simon Willison's `asgi-csrf` (double-submit cookie).

`asgi-csrf` sets a signed `csrftoken` cookie and compares it with the form's hidden
`csrftoken` field (or an `x-csrftoken` header) on every POST to a page. It is given:
- the pages only (`skip_if_scope`): the API authenticates with a bearer token, never a
  cookie, and the public links of the digest have their own signed tokens;
- the sign-in and sign-out forms even without any cookie (`always_protect`), so that
  another site cannot sign someone in or out;
- a French refusal page.
Before it, this module refuses what the library would not survive on a page: a form body
that is not UTF-8 (400) and multipart bodies (415, the pages upload no file).
"""

from __future__ import annotations

from typing import Any

from asgi_csrf import Errors, asgi_csrf_decorator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.kit.settings import Settings
from api.kit.signing import secret_key
from api.web.paths import is_page

FORM_FIELD = "csrftoken"  # the hidden field every form of the pages carries
ALWAYS_PROTECT = {"/connexion", "/connexion/lien", "/connexion/jeton", "/deconnexion"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
FORM = b"application/x-www-form-urlencoded"

_PAGE = """<!doctype html>
<html lang="fr"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} — Maillage</title>
<link rel="stylesheet" href="/static/web/maillage.css"></head>
<body><main id="contenu" class="page"><h1>{title}</h1>
<p class="erreur" role="alert">{detail}</p>
<p><a href="/espace">Retour à l'accueil</a></p></main></body></html>"""

CSRF_REFUSED = (
    "Ce formulaire a expiré ou ne vient pas de Maillage : revenez à la page précédente, "
    "rechargez-la, puis envoyez-le de nouveau. Vérifiez aussi que votre navigateur accepte "
    "les cookies de ce site."
)


async def _send_page(send: Send, status: int, title: str, detail: str) -> None:
    body = _PAGE.format(title=title, detail=detail).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _refused(_scope: Scope, send: Send, _error: Errors) -> None:
    await _send_page(send, 403, "Formulaire refusé", CSRF_REFUSED)


class CsrfProtection:
    """ASGI middleware: `asgi-csrf` on the pages, behind the checks it needs."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.protected = asgi_csrf_decorator(
            form_input=FORM_FIELD,
            signing_secret=secret_key(settings),
            always_protect=ALWAYS_PROTECT,
            skip_if_scope=lambda scope: not is_page(scope.get("path", "")),
            cookie_secure=settings.base_url.startswith("https://"),
            cookie_samesite="Lax",
            send_csrf_failed=_refused,
        )(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] in SAFE_METHODS
            or not is_page(scope.get("path", ""))
        ):
            await self.protected(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        media_type = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
        if media_type.startswith(b"multipart/"):
            await _send_page(
                send,
                415,
                "Envoi non pris en charge",
                "Ces pages n'acceptent pas de fichier : utilisez le formulaire de la page.",
            )
            return
        if media_type != FORM:
            await self.protected(scope, receive, send)
            return
        # Read the form whole (BodyLimit, outside, bounds it) to check it is UTF-8 before
        # the library decodes it, then hand it on.
        messages: list[Message] = []
        body = b""
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left
            messages.append(message)
            body += message.get("body", b"")
            more = message.get("more_body", False)
        try:
            body.decode("utf-8")
        except UnicodeDecodeError:
            await _send_page(
                send,
                400,
                "Formulaire illisible",
                "Ce formulaire n'est pas encodé en UTF-8 : envoyez-le depuis la page de Maillage.",
            )
            return

        async def replay() -> Any:
            if messages:
                return messages.pop(0)
            return await receive()

        await self.protected(scope, replay, send)
