"""SQLAlchemy 2 ORM of Maillage; importing the package registers every table."""

from models.account import Account, ApiToken, AuditEvent, SignInLink, account_organisations
from models.base import Base
from models.call import Call, CallChange, CallRequirement, call_territories
from models.consortium import Consortium, ConsortiumMember, ConsortiumReview
from models.digest import CallDismissal, DigestDelivery, DigestSubscription, FeedKey
from models.idempotency import IdempotencyKey
from models.interest import CallInterest
from models.matching import Dismissal, Embedding, MatchChange, MatchState
from models.organisation import Contact, Organisation, Statement, organisation_territories
from models.territory import FormerCommune, ReferentialVersion, Territory, TerritoryPostalCode

__all__ = [
    "Account",
    "ApiToken",
    "AuditEvent",
    "Base",
    "Call",
    "CallChange",
    "CallDismissal",
    "CallInterest",
    "CallRequirement",
    "Consortium",
    "ConsortiumMember",
    "ConsortiumReview",
    "Contact",
    "DigestDelivery",
    "DigestSubscription",
    "Dismissal",
    "Embedding",
    "FeedKey",
    "FormerCommune",
    "IdempotencyKey",
    "MatchChange",
    "MatchState",
    "Organisation",
    "SignInLink",
    "ReferentialVersion",
    "Statement",
    "Territory",
    "TerritoryPostalCode",
    "account_organisations",
    "call_territories",
    "organisation_territories",
]
