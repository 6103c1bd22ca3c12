"""The OpenAPI document states the server's rules: bounded texts, closed bodies, every
status the app-wide machinery can answer, optional tokens on public routes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI

from api.app import create_app
from api.kit.settings import Settings

METHODS = ("get", "post", "patch", "put", "delete")


@pytest.fixture(scope="module")
def document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("openapi")
    app: FastAPI = create_app(
        Settings(database_url=f"sqlite:///{folder / 'x.sqlite3'}", data_dir=folder)
    )
    return app.openapi()


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method in METHODS:
            if method in item:
                yield f"{method.upper()} {path}", item[method]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        schema = document["components"]["schemas"][name]
    return schema


def strings_and_objects(
    document: dict[str, Any], schema: dict[str, Any], where: str, seen: set[str]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every string and object schema reachable from `schema` (request side)."""
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen = seen | {schema["$ref"]}
        schema = resolve(document, schema)
    if schema.get("type") in ("string", "object"):
        yield where, schema
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in schema.get(key, []):
            yield from strings_and_objects(document, branch, where, seen)
    for name, prop in schema.get("properties", {}).items():
        yield from strings_and_objects(document, prop, f"{where}.{name}", seen)
    if isinstance(schema.get("items"), dict):
        yield from strings_and_objects(document, schema["items"], f"{where}[]", seen)


def inputs(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for label, operation in operations(document):
        for parameter in operation.get("parameters", []):
            yield from strings_and_objects(
                document, parameter["schema"], f"{label} {parameter['name']}", set()
            )
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body:
            yield from strings_and_objects(document, body["schema"], f"{label} body", set())


def test_every_text_input_has_a_maximum_length(document: dict[str, Any]) -> None:
    unbounded = [
        where
        for where, schema in inputs(document)
        if schema.get("type") == "string"
        and "maxLength" not in schema
        and "enum" not in schema
        and schema.get("format") != "date-time"
    ]
    assert unbounded == []


def test_every_body_object_refuses_unknown_fields(document: dict[str, Any]) -> None:
    open_objects = [
        where
        for where, schema in inputs(document)
        if schema.get("type") == "object"
        and schema.get("additionalProperties") is not False
        and "/imports/" not in where  # a file (a catalogue's records), not a request body
    ]
    assert open_objects == []


def test_every_operation_declares_what_the_app_answers_around_it(
    document: dict[str, Any],
) -> None:
    for label, operation in operations(document):
        statuses = set(operation["responses"])
        assert {"401", "429"} <= statuses, label
        if operation.get("x-access") != "public":
            assert "403" in statuses, label
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= statuses, label
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (label, status)


def test_public_operations_take_a_token_without_needing_one(document: dict[str, Any]) -> None:
    for label, operation in operations(document):
        security = operation.get("security", [])
        if operation.get("x-access") == "public":
            assert security[0] == {}, label
        else:
            assert {} not in security, label


def test_server_rules_are_in_the_parameters(document: dict[str, Any]) -> None:
    def parameter(path: str, name: str) -> dict[str, Any]:
        found = [p for p in document["paths"][path]["get"]["parameters"] if p["name"] == name]
        schema: dict[str, Any] = found[0]["schema"]
        return next((b for b in schema.get("anyOf", []) if b.get("type") == "string"), schema)

    assert parameter("/api/v1/territories/{ref}", "ref")["pattern"].startswith("^(?:commune:")
    assert "pattern" in parameter("/api/v1/territories", "postal_code")
    assert "pattern" in parameter("/api/v1/search/organisations", "q")
    assert "pattern" in parameter("/api/v1/organisations", "territory")
    limit = parameter("/api/v1/organisations", "limit")
    assert (limit["minimum"], limit["maximum"]) == (1, 200)
