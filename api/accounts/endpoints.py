"""Tokens (admins) and who am I (everyone signed in)."""

from __future__ import annotations

from datetime import UTC
from typing import Annotated

from fastapi import APIRouter, Path, status

from api.accounts import service
from api.accounts.schemas import AccountOut, IssuedTokenOut, Me, TokenIn, TokenOut
from api.kit.auth import Access, access
from api.kit.deps import SessionDep, ViewerDep
from api.kit.errors import NotFound, problem_responses
from api.kit.idempotency import SecretIdempotencyDep
from api.kit.routing import Route
from models import Account, ApiToken
from models.enums import AccountRole

router = APIRouter(
    route_class=Route, prefix="/api/v1", tags=["comptes"], responses=problem_responses(401, 403)
)


def token_out(token: ApiToken) -> TokenOut:
    account = token.account
    return TokenOut(
        id=token.id,
        prefix=token.prefix,
        label=token.label,
        account=AccountOut(
            id=account.id,
            name=account.name,
            role=account.role,
            organisation_ids=[o.id for o in account.organisations],
        ),
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


@router.get("/me", response_model=Me, openapi_extra=access(Access.signed_in))
def me(viewer: ViewerDep) -> Me:
    """The account this token acts for: its role and organisations."""
    return Me(
        account_id=viewer.account_id,
        name=viewer.name,
        role=viewer.role,
        organisation_ids=sorted(viewer.organisation_ids),
    )


@router.get("/tokens", response_model=list[TokenOut], openapi_extra=access(Access.admin))
def list_tokens(session: SessionDep) -> list[TokenOut]:
    """Every token (never its secret), newest first."""
    return [token_out(t) for t in service.list_tokens(session)]


@router.post(
    "/tokens",
    response_model=IssuedTokenOut,
    status_code=status.HTTP_201_CREATED,
    responses=problem_responses(404, 409, 422),
    openapi_extra=access(Access.admin),
)
def create_token(
    session: SessionDep, body: TokenIn, _idempotency: SecretIdempotencyDep
) -> IssuedTokenOut:
    """A new token, for a new account or an existing one; the secret is in this answer only
    (sent again with the same Idempotency-Key: 409 naming the token, whose secret is not
    kept)."""
    expires_at = body.expires_at
    if expires_at is not None and expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    if body.account_id is not None:  # TokenIn refused a role or organisations with it
        account = session.get(Account, body.account_id)
        if account is None:
            raise NotFound(f"Aucun compte n° {body.account_id}.")
    else:  # a name, and organisations for a member only (TokenIn)
        account = service.create_account(
            session,
            name=body.name,
            role=body.role or AccountRole.member,
            organisation_ids=body.organisation_ids,
        )
    issued = service.issue_token(session, account, label=body.name, expires_at=expires_at)
    session.refresh(account, ["organisations"])
    return IssuedTokenOut(**token_out(issued.token).model_dump(), token=issued.secret)


@router.delete(
    "/tokens/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404, 422),
    openapi_extra=access(Access.admin),
)
def revoke_token(session: SessionDep, token_id: Annotated[int, Path(ge=1, le=2**31 - 1)]) -> None:
    """Revoke a token at once (revoking it again changes nothing)."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"Aucun jeton n° {token_id}.")
    service.revoke_token(session, token)
