"""The OpenAPI document says what the app-wide machinery can answer on every route.

Routes declare their own statuses (404, 409, 422…); the answers of what runs before or
around every route are added here from the route's access rule and whether it reads a
body, so that no route can forget them:

- 401 anywhere (a token sent to a public route must authenticate too), 429 anywhere (too
  many failed tokens from an address, or too many costly requests);
- 403 where the rule is not `public`;
- 400 (a body that cannot be read: not UTF-8, JSON nested too deep), 413 (`BodyLimit`),
  415 (not the declared media type) and 422 where the route reads a body;
- public routes take a token but do not need one: their security requirement is optional.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from api.kit.auth import ACCESS_KEY, Access
from api.kit.errors import PROBLEM_JSON, TITLES_FR

_METHODS = ("get", "put", "post", "patch", "delete")
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def _problem_response(status: int) -> dict[str, Any]:
    return {
        "description": TITLES_FR.get(status, ""),
        "content": {PROBLEM_JSON: {"schema": _PROBLEM_REF}},
    }


def complete_operation(operation: dict[str, Any]) -> None:
    """Add the app-wide statuses and the security requirement to one operation."""
    rule = operation.get(ACCESS_KEY)
    statuses = {401, 429}
    if rule != Access.public:
        statuses.add(403)
    if "requestBody" in operation:
        statuses |= {400, 413, 415, 422}
    if operation.get("parameters"):
        statuses.add(422)
    responses: dict[str, Any] = operation.setdefault("responses", {})
    for code in sorted(statuses):
        responses.setdefault(str(code), _problem_response(code))
    for status, response in responses.items():
        # `problem_responses` names the Problem model, which FastAPI also lists under the
        # route's own media type: an error is only ever problem+json.
        content = response.get("content", {})
        if status.startswith(("4", "5")) and PROBLEM_JSON in content:
            schema = content.get("application/json", {}).get("schema", _PROBLEM_REF)
            response["content"] = {PROBLEM_JSON: {"schema": schema}}
    if rule == Access.public and operation.get("security"):
        # {} first: no token at all is fine.
        operation["security"] = [{}, *operation["security"]]


def install_openapi(app: FastAPI) -> None:
    """Replace `app.openapi` by FastAPI's document completed by `complete_operation`."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = generate()
            for path_item in document.get("paths", {}).values():
                for method in _METHODS:
                    if method in path_item:
                        complete_operation(path_item[method])
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
