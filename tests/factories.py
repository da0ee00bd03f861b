"""Small builders for test data, through the real services."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from typing import Any

from sqlalchemy import update

from signoff import schemas
from signoff.domain.deliveries import AttemptResult, Backoff, Purpose, TargetKind
from signoff.domain.policies import NamedPolicy
from signoff.domain.principals import Context, Principal, Role, User, UserKind, system_context
from signoff.domain.subscriptions import Subscription
from signoff.services import approvals, deliveries, journal, policies, principals, subscriptions
from signoff.store import outbox
from signoff.store import principals as principals_store
from signoff.store.engine import Database
from signoff.store.tables import DeliveryRow

ADMIN_KEY = "sok_test-admin-key-0123456789abcdef0123456789"
SECRET_KEY = "test-secret-key"
CLI = system_context("cli")
LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))  # where test receivers listen


def user(
    db: Database, email: str, *, role: Role = Role.MEMBER, teams: tuple[str, ...] = ()
) -> User:
    created = principals.create_user(db, CLI, email=email, role=role, kind=UserKind.PERSON)
    for team in teams:
        principals.add_member(db, CLI, team=team, user=email)
    return created


def team(db: Database, name: str, *members: str) -> None:
    principals.create_team(db, CLI, name=name)
    for member in members:
        principals.add_member(db, CLI, team=name, user=member)


def key(db: Database, email: str) -> str:
    return principals.create_api_key(db, CLI, user=email).secret


def context(db: Database, found: User) -> Context:
    """What a request by ``found`` would run as."""
    with db.read() as session:
        team_ids = principals_store.team_ids_of(session, found.id)
    return Context(
        principal=Principal(user=found, team_ids=team_ids),
        request_id="req-test",
        client_addr="127.0.0.1",
    )


def approval_spec(**overrides: Any) -> schemas.ApprovalCreate:
    fields: dict[str, Any] = {
        "title": "Apply 6.4% anomalous rows for customer 42?",
        "body": "The nightly load flagged **6.4%** of rows.",
        "context": {"customer": 42, "flagged_ratio": 0.064},
        "approvers": ["alice@example.com"],
    }
    return schemas.ApprovalCreate.model_validate(fields | overrides)


def create(db: Database, requester: User, **overrides: Any) -> approvals.Created:
    return approvals.create(
        db,
        context(db, requester),
        approval_spec(**overrides),
        secret_key=SECRET_KEY,
        allowed_networks=LOOPBACK,
    )


def policy(db: Database, name: str, **fields: Any) -> NamedPolicy:
    """A named policy, written by an admin; ``fields`` as ``schemas.PolicyCreate`` takes them."""
    spec = schemas.PolicyCreate.model_validate(
        {"name": name, "approvers": ["team:owners"]} | fields
    )
    return policies.create(db, CLI, spec)


RETRY_LATER = Backoff(base_seconds=60, max_age=timedelta(days=3))
DIE_AT_ONCE = Backoff(max_age=timedelta(0))  # the first failure dead-letters


def delivery(
    db: Database, subject: str = "ap_1", target: str = "https://hooks.example.com/x"
) -> str:
    """A pending delivery of a new approval.settled event about ``subject``; its id."""
    with db.write() as session:
        event = journal.record(
            session,
            CLI,
            at=datetime.now(UTC),
            action="test.event",
            object_type="approval",
            object_id=subject,
            event_type="approval.settled",
        )
        assert event is not None
        journal.deliver(db, session, event, TargetKind.CALLBACK, Purpose.CALLBACK, target)
    with db.read() as session:
        return outbox.deliveries_of_subject(session, subject)[-1].id


def attempt_due(db: Database, *, ok: bool, backoff: Backoff = RETRY_LATER) -> list[str]:
    """What a dispatcher does, without the network: claim every due delivery and record one
    attempt at each (``ok``, or HTTP 503); those still pending are due again at once."""
    claimed = deliveries.claim_due(db, lease=timedelta(seconds=30), limit=1000)
    results = [
        AttemptResult(d.id, ok, 204 if ok else 503, None if ok else "HTTP 503", 12, None)
        for d in claimed
    ]
    deliveries.record(db, claimed, results, backoff)
    with db.write() as session:
        session.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id.in_([d.id for d in claimed]))
            .values(next_attempt_at=datetime.now(UTC))
        )
    return [d.id for d in claimed]


def subscription(db: Database, name: str, **fields: Any) -> Subscription:
    """A subscription, written by an admin; ``fields`` as ``schemas.SubscriptionCreate`` takes
    them (default: a webhook on loopback that receives every event)."""
    spec = schemas.SubscriptionCreate.model_validate(
        {"name": name, "kind": "webhook", "target": "http://127.0.0.1:9/hook"} | fields
    )
    return subscriptions.create(db, CLI, spec, allowed_networks=LOOPBACK)
