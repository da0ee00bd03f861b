"""Subscriptions on a real database: what may be written (names, targets, address rules,
filters), who may, what the audit log keeps, and the fan-out: which events get deliveries, in
the event's transaction, for one read of the subscriptions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event, select

from signoff import errors, schemas
from signoff.domain import destinations, events
from signoff.domain.deliveries import Purpose
from signoff.domain.principals import Role
from signoff.domain.subscriptions import Kind
from signoff.services import (
    approval_notifications,
    approval_settlement,
    audit,
    invitations,
    subscriptions,
)
from signoff.store import audit as audit_store
from signoff.store import outbox
from signoff.store.tables import DeliveryRow, EventRow
from tests import factories as f
from tests.factories import CLI, LOOPBACK, SECRET_KEY


@pytest.fixture
def people(db):
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com"),
        "admin": f.user(db, "root@example.com", role=Role.ADMIN),
    }


def spec(**fields: object) -> schemas.SubscriptionCreate:
    base = {"name": "ops", "kind": "webhook", "target": "https://hooks.example.com/x"}
    return schemas.SubscriptionCreate.model_validate(base | fields)


def deliveries_of(db, event_type: str) -> list[DeliveryRow]:
    with db.read() as session:
        return list(
            session.scalars(
                select(DeliveryRow)
                .join(EventRow, EventRow.id == DeliveryRow.event_id)
                .where(EventRow.type == event_type)
                .order_by(DeliveryRow.target)
            )
        )


def test_a_subscription_is_created_read_listed_changed_and_deleted(db):
    made = subscriptions.create(db, CLI, spec(filter={"type": ["approval.settled"]}))
    assert subscriptions.get(db, CLI, "ops") == made
    found, cursor = subscriptions.list_subscriptions(db, CLI)
    assert (found, cursor) == ([made], None)
    off = subscriptions.update(db, CLI, "ops", schemas.SubscriptionUpdate(enabled=False))
    assert (off.enabled, off.filter, off.target) == (False, made.filter, made.target)
    body = schemas.SubscriptionReplace(kind="email", target=["Dana@Example.com"])
    replaced = subscriptions.replace(db, CLI, "ops", body)
    assert (replaced.kind, replaced.target, replaced.filter) == (
        Kind.EMAIL,
        ("dana@example.com",),
        {},
    )
    assert replaced.enabled  # PUT: what the body leaves out takes its default
    subscriptions.delete(db, CLI, "ops")
    with pytest.raises(errors.SubscriptionNotFound):
        subscriptions.get(db, CLI, "ops")


def test_listing_pages_in_name_order(db):
    for name in ("c", "a", "b"):
        subscriptions.create(db, CLI, spec(name=name))
    page, cursor = subscriptions.list_subscriptions(db, CLI, limit=2)
    assert ([s.name for s in page], cursor) == (["a", "b"], "b")
    page, cursor = subscriptions.list_subscriptions(db, CLI, cursor=cursor, limit=2)
    assert ([s.name for s in page], cursor) == (["c"], None)


def test_a_name_is_unique_and_a_slug(db):
    subscriptions.create(db, CLI, spec())
    with pytest.raises(errors.DuplicateName):
        subscriptions.create(db, CLI, spec())
    with pytest.raises(errors.InvalidInput, match="not a lower-case slug"):
        subscriptions.create(db, CLI, schemas.SubscriptionCreate.model_construct(**_raw("Ops")))


def _raw(name: str) -> dict[str, object]:
    return {
        "name": name,
        "kind": "webhook",
        "target": "https://hooks.example.com/x",
        "filter": {},
        "enabled": True,
    }


def test_only_admins_see_or_write_subscriptions(db, people):
    subscriptions.create(db, CLI, spec())
    member = f.context(db, people["alice"])
    for attempt in (
        lambda: subscriptions.create(db, member, spec(name="mine")),
        lambda: subscriptions.get(db, member, "ops"),
        lambda: subscriptions.list_subscriptions(db, member),
        lambda: subscriptions.update(db, member, "ops", schemas.SubscriptionUpdate(enabled=False)),
        lambda: subscriptions.delete(db, member, "ops"),
    ):
        with pytest.raises(errors.PermissionDenied):
            attempt()
    assert subscriptions.get(db, f.context(db, people["admin"]), "ops").name == "ops"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://10.1.2.3/hook",
    ],
)
def test_a_webhook_at_a_private_address_is_refused_unless_its_network_is_allowed(db, url):
    with pytest.raises(errors.InvalidInput, match="signoff sends only to public addresses") as no:
        subscriptions.create(db, CLI, spec(target=url))
    assert no.value.extra["field"] == "target"
    if "127.0.0.1" in url or "::1" in url:
        assert subscriptions.create(db, CLI, spec(target=url), allowed_networks=LOOPBACK)


def test_changing_a_target_is_checked_as_creating_one_is(db):
    subscriptions.create(db, CLI, spec())
    with pytest.raises(errors.InvalidInput, match="public addresses"):
        subscriptions.update(
            db, CLI, "ops", schemas.SubscriptionUpdate(target="http://192.168.0.10/")
        )
    with pytest.raises(errors.InvalidInput, match="is not a Slack channel"):
        subscriptions.update(db, CLI, "ops", schemas.SubscriptionUpdate(kind="slack"))


def test_switching_off_works_whatever_the_address_rules_are_now(db):
    f.subscription(db, "local")  # on loopback, allowed when it was made
    off = subscriptions.update(db, CLI, "local", schemas.SubscriptionUpdate(enabled=False))
    assert not off.enabled


@pytest.mark.parametrize(
    ("kind", "target", "says"),
    [
        ("webhook", "ftp://example.com/x", "is not an http(s) URL"),
        ("webhook", ["https://example.com/x"], "is one string, not a list"),
        ("email", ["not-an-address"], "is not an email address"),
        ("email", [], "lists 1 to 50 addresses"),
        ("slack", "general", "is not a Slack channel"),
        ("apprise", "no-scheme", "apprise does not recognise this URL (scheme '(none)')"),
        ("apprise", "bogus://host/x", "apprise does not recognise this URL (scheme 'bogus')"),
        ("apprise", "twilio://only-a-sid", "apprise does not recognise this URL"),
    ],
)
def test_a_target_must_suit_its_kind(db, kind, target, says):
    with pytest.raises(errors.InvalidInput, match=re.escape(says)):
        subscriptions.create(db, CLI, spec(kind=kind, target=target))


def test_targets_of_every_kind_are_kept(db):
    email = subscriptions.create(db, CLI, spec(name="e", kind="email", target="A@example.com"))
    slack = subscriptions.create(db, CLI, spec(name="s", kind="slack", target="#ml-approvals"))
    apprise = subscriptions.create(db, CLI, spec(name="a", kind="apprise", target="json://x.io/"))
    assert email.target == ("a@example.com",)
    assert (slack.target, apprise.target) == ("#ml-approvals", "json://x.io/")


@pytest.mark.parametrize(
    ("pattern", "says"),
    [
        ({"type": ["approval.setled"]}, "filter.type[0]: 'approval.setled' is not an event type"),
        ({"type": ["invitation.sent"]}, "invitation.sent is internal to signoff"),
        ({"data": {"status": "rejected"}}, "filter.data.status: write a list"),
    ],
)
def test_a_filter_must_be_valid_and_name_public_types(db, pattern, says):
    with pytest.raises(errors.InvalidInput) as refused:
        subscriptions.create(db, CLI, spec(filter=pattern))
    assert says in refused.value.detail


def test_the_audit_log_keeps_what_changed_without_the_urls_secrets(db):
    secret_url = "https://hooks.example.com/services/T0/B0/s3cr3t?token=also-secret"
    made = subscriptions.create(db, CLI, spec(target=secret_url))
    subscriptions.update(db, CLI, "ops", schemas.SubscriptionUpdate(enabled=False))
    subscriptions.delete(db, CLI, "ops")
    entries, _ = audit.list_entries(db, CLI, audit_store.Filters(object_id=made.id))
    assert [e.action for e in entries] == [
        "subscription.delete",
        "subscription.update",
        "subscription.create",
    ]
    created = entries[-1].after
    assert created is not None
    assert created["target"].startswith("https://hooks.example.com/…#")
    assert "s3cr3t" not in repr([(e.before, e.after) for e in entries])
    assert (entries[1].before["enabled"], entries[1].after["enabled"]) == (True, False)


# --- fan-out ---------------------------------------------------------------------------------


def test_each_matching_enabled_subscription_gets_a_delivery_of_each_event(db, people):
    f.subscription(db, "everything")
    f.subscription(db, "settled", filter={"type": ["approval.settled"]}, target="http://[::1]/")
    f.subscription(db, "off", enabled=False)
    f.subscription(db, "mail", kind="email", target=["a@example.com", "b@example.com"])
    f.create(db, people["pipeline"], title="Ship it?")
    created = deliveries_of(db, events.APPROVAL_CREATED)
    assert sorted((d.target_kind, d.target) for d in created) == [
        ("email", "a@example.com"),
        ("email", "b@example.com"),
        ("webhook", "http://127.0.0.1:9/hook"),
    ]
    assert all(d.subscription_id is not None and d.status == "pending" for d in created)
    assert deliveries_of(db, events.APPROVAL_SETTLED) == []


def test_a_filter_on_the_data_picks_the_events(db, people):
    f.subscription(db, "rejections", filter={"data": {"status": ["rejected"]}})
    for verdict in ("approve", "reject"):
        approval = f.create(db, people["pipeline"]).approval
        decision = schemas.DecisionCreate(verdict=verdict)
        approval_settlement.decide(db, f.context(db, people["alice"]), approval.id, decision)
    settled = deliveries_of(db, events.APPROVAL_SETTLED)
    decided = deliveries_of(db, events.APPROVAL_DECIDED)
    assert (len(settled), len(decided)) == (1, 1)  # the rejection's, not the approval's
    with db.read() as session:
        claimed = outbox.claim_due(
            session, now=settled[0].next_attempt_at, lease=_lease(), limit=10
        )
    assert {d.event.data["status"] for d in claimed} == {"rejected"}


def _lease() -> timedelta:
    return timedelta(seconds=30)


def test_internal_events_never_reach_a_subscription_whatever_its_filter(db):
    f.subscription(db, "everything")
    f.subscription(db, "invites", filter={"type": [{"prefix": "invitation"}]})
    f.team(db, "owners")
    invitations.invite(
        db, CLI, email="eve@example.com", teams=["owners"], ttl=_lease(), secret_key=SECRET_KEY
    )
    sent = deliveries_of(db, events.INVITATION_SENT)
    assert [(d.target_kind, d.subscription_id) for d in sent] == [("email", None)]


def test_subscribers_never_see_an_approvals_callback_url(db, people):
    f.subscription(db, "everything")
    f.create(db, people["pipeline"], callback_url="http://127.0.0.1:9/cb?token=s3cr3t")
    with db.read() as session:
        claimed = outbox.claim_due(session, now=_far_future(), lease=_lease(), limit=10)
    by_kind = {d.target_kind.value: d.payload()["data"] for d in claimed}
    assert set(by_kind) == {"webhook"}  # the callback waits for the settlement
    assert "callback_url" not in by_kind["webhook"]
    assert by_kind["webhook"]["title"]


def _far_future() -> datetime:
    return datetime.now(UTC) + timedelta(days=1)


def test_an_approvals_deliveries_show_the_subscriptions_redacted_even_once_deleted(db, people):
    f.subscription(db, "everything", target="http://127.0.0.1:9/hook?token=s3cr3t")
    approval = f.create(db, people["pipeline"], callback_url="http://127.0.0.1:9/cb").approval
    approval_settlement.cancel(db, f.context(db, people["pipeline"]), approval.id)
    requester = f.context(db, people["pipeline"])
    shown = approval_notifications.deliveries_of(db, requester, approval.id)
    hook = destinations.redacted("http://127.0.0.1:9/hook?token=s3cr3t")
    assert [(d.event_type, d.purpose, d.target) for d in shown] == [
        ("approval.created", "subscription", hook),
        ("approval.canceled", "subscription", hook),
        ("approval.settled", "subscription", hook),
        ("approval.settled", "callback", "http://127.0.0.1:9/cb"),
    ]
    subscriptions.delete(db, CLI, "everything")  # its deliveries stay, no longer linked to it
    shown = approval_notifications.deliveries_of(db, requester, approval.id)
    assert [d.purpose for d in shown] == ["subscription"] * 3 + ["callback"]
    assert "s3cr3t" not in str(shown)
    only = approval_notifications.deliveries_of(
        db, requester, approval.id, purpose=Purpose.CALLBACK
    )
    assert [d.target for d in only] == ["http://127.0.0.1:9/cb"]
    admins = approval_notifications.deliveries_of(db, CLI, approval.id)
    assert "http://127.0.0.1:9/hook?token=s3cr3t" in [d.target for d in admins]


def test_subscriptions_are_read_once_per_transaction_that_writes_events(db, people):
    f.subscription(db, "everything")
    approval = f.create(db, people["pipeline"]).approval
    reads: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        if "FROM subscriptions" in statement:
            reads.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        decision = schemas.DecisionCreate(verdict="approve")
        approval_settlement.decide(db, f.context(db, people["alice"]), approval.id, decision)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert len(deliveries_of(db, events.APPROVAL_DECIDED)) == 1
    assert len(deliveries_of(db, events.APPROVAL_SETTLED)) == 1
    assert len(reads) == 1  # two events, one read


def test_a_change_to_subscriptions_applies_to_the_next_event(db, people):
    f.subscription(db, "everything")
    f.create(db, people["pipeline"])
    subscriptions.update(db, CLI, "everything", schemas.SubscriptionUpdate(enabled=False))
    f.create(db, people["pipeline"])
    subscriptions.update(db, CLI, "everything", schemas.SubscriptionUpdate(enabled=True))
    subscriptions.delete(db, CLI, "everything")
    f.create(db, people["pipeline"])
    assert len(deliveries_of(db, events.APPROVAL_CREATED)) == 1


def test_deleting_a_subscription_leaves_its_deliveries_to_be_sent(db, people):
    f.subscription(db, "everything")
    f.create(db, people["pipeline"])
    subscriptions.delete(db, CLI, "everything")
    (left,) = deliveries_of(db, events.APPROVAL_CREATED)
    assert (left.status, left.subscription_id, left.target_kind) == ("pending", None, "webhook")
