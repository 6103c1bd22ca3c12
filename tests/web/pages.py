"""Helpers of the page tests: CSRF tokens read from forms, signed-in clients."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from api.accounts.service import create_account
from api.accounts.sign_in import issue_link
from api.kit.settings import Settings
from models import Account
from models.enums import AccountKind, AccountRole

CSRF_FIELD = re.compile(r'name="csrftoken" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = CSRF_FIELD.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def post_form(client: TestClient, page: str, action: str, data: dict[str, str]) -> object:
    """Open `page`, then send its form's CSRF token with `data` to `action` (no redirect
    followed)."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrftoken": token, **data}, follow_redirects=False)


def make_person(
    session: Session,
    email: str,
    *,
    role: AccountRole = AccountRole.member,
    organisation_ids: list[int] | None = None,
) -> Account:
    return create_account(
        session,
        name=f"Personne {email}",
        role=role,
        email=email,
        kind=AccountKind.person,
        organisation_ids=organisation_ids,
    )


def sign_in(client: TestClient, session: Session, settings: Settings, account: Account) -> None:
    """Sign the client in with a fresh e-mailed link, as a person would."""
    url = issue_link(session, settings, account).url
    path = url.removeprefix(settings.base_url)
    page = client.get(path)
    assert page.status_code == 200, page.text
    token = re.search(r'name="jeton" value="([^"]+)"', page.text)
    assert token
    answer = client.post(
        "/connexion/lien",
        data={"csrftoken": csrf_of(page.text), "jeton": token.group(1)},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
