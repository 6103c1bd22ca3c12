"""Who is asking: the account behind a request's bearer token, and what it may see."""

from __future__ import annotations

from dataclasses import dataclass

from models.enums import AccountRole


@dataclass(frozen=True)
class Principal:
    """The account a request acts for.

    account_id : the account's id (None for a request without a token, on public routes).
    role : member, coordinator (the regional association's staff: sees and reviews
        everything) or admin (also manages accounts and tokens).
    organisation_ids : the organisations a member belongs to (empty for the others).
    """

    account_id: int | None
    role: AccountRole
    organisation_ids: frozenset[int] = frozenset()
    name: str = ""

    @property
    def sees_everything(self) -> bool:
        """The coordinator and admins see every organisation's contacts, coordinator-only
        statements and dismissals."""
        return self.role in (AccountRole.coordinator, AccountRole.admin)

    @property
    def is_admin(self) -> bool:
        return self.role == AccountRole.admin

    def belongs_to(self, organisation_id: int) -> bool:
        """A member of that organisation (not the coordinator: see `acts_for`)."""
        return organisation_id in self.organisation_ids

    def acts_for(self, organisation_id: int) -> bool:
        """May edit the organisation, ask its partner suggestions, see its dismissals,
        contacts and coordinator-only statements: its members, the coordinator, admins."""
        return self.sees_everything or self.belongs_to(organisation_id)


# A request without a token, on a public route: a member of no organisation.
ANONYMOUS = Principal(account_id=None, role=AccountRole.member, name="anonyme")

# What a service is given when nobody in particular asks (commands, the demo, tools):
# the whole network, as the coordinator sees it.
SYSTEM = Principal(account_id=None, role=AccountRole.admin, name="système")
