"""Assertions on RFC 9457 problem answers, shared by the API tests."""

from __future__ import annotations

from typing import Any


def assert_problem(response: Any, status: int, *fragments: str) -> dict[str, Any]:
    """A problem+json answer with this status whose French detail says each fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in body["detail"], (fragment, body["detail"])
    return body


def field_locs(response: Any) -> list[list[Any]]:
    assert response.status_code == 422, response.text
    return [e["loc"] for e in response.json()["errors"]]
