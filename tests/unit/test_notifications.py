"""An approval's notification summary: each destination its events are failing to reach,
since when, how many attempts, the last error; gone once they arrive. Targets are shown as
the reader may see them."""

from __future__ import annotations

import pytest

from signoff.domain import destinations
from signoff.domain.principals import Role
from signoff.services import approval_notifications, approval_settlement, approvals
from tests import factories as f
from tests.factories import CLI, DIE_AT_ONCE, LOOPBACK, SECRET_KEY

CALLBACK = "http://127.0.0.1:9/cb?token=s3cr3t"


@pytest.fixture
def people(db):
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com"),
        "admin": f.user(db, "root@example.com", role=Role.ADMIN),
    }


def canceled_with_callback(db, people) -> str:
    approval = f.create(db, people["pipeline"], callback_url=CALLBACK).approval
    approval_settlement.cancel(db, f.context(db, people["pipeline"]), approval.id)
    return approval.id


def summary(db, person, approval_id):
    return approval_notifications.notifications_of(db, f.context(db, person), approval_id)


def test_a_failing_callback_shows_with_its_attempts_counting_up_until_it_arrives(db, people):
    approval_id = canceled_with_callback(db, people)
    assert summary(db, people["pipeline"], approval_id) == []  # not tried yet: not failing
    f.attempt_due(db, ok=False)
    f.attempt_due(db, ok=False)
    (failing,) = summary(db, people["pipeline"], approval_id)
    assert (failing.purpose, failing.target_kind, failing.status) == (
        "callback",
        "callback",
        "failing",
    )
    assert failing.target == destinations.redacted(CALLBACK)
    assert (failing.attempts, failing.last_error) == (2, "HTTP 503")
    first_failure = failing.failing_since
    f.attempt_due(db, ok=False)
    (failing,) = summary(db, people["alice"], approval_id)
    assert (failing.attempts, failing.failing_since) == (3, first_failure)
    f.attempt_due(db, ok=True)
    assert summary(db, people["pipeline"], approval_id) == []


def test_a_dead_callback_shows_as_dead(db, people):
    approval_id = canceled_with_callback(db, people)
    f.attempt_due(db, ok=False, backoff=DIE_AT_ONCE)
    (failing,) = summary(db, people["admin"], approval_id)
    assert (failing.status, failing.attempts) == ("dead", 1)
    approval, same = approval_notifications.get_with_notifications(db, CLI, approval_id)
    assert (approval.id, same) == (approval_id, [failing])


def test_one_destination_failing_several_events_is_one_entry(db, people):
    f.subscription(db, "everything", target="http://127.0.0.1:9/hook?token=s3cr3t")
    approval_id = canceled_with_callback(db, people)
    f.attempt_due(db, ok=False)
    found = summary(db, people["pipeline"], approval_id)
    assert [(s.purpose, s.attempts) for s in found] == [("subscription", 3), ("callback", 1)]
    assert "s3cr3t" not in str(found)


def test_approvers_addresses_are_shown_to_the_requester_and_masked_to_other_approvers(db, people):
    f.user(db, "bob@example.com")
    created = approvals.create(
        db,
        f.context(db, people["pipeline"]),
        f.approval_spec(approvers=["alice@example.com", "bob@example.com"]),
        secret_key=SECRET_KEY,
        allowed_networks=LOOPBACK,
        email_approvers=True,
    )
    f.attempt_due(db, ok=False)
    shown = {
        who: [s.target for s in summary(db, people[who], created.approval.id)]
        for who in ("pipeline", "alice", "admin")
    }
    assert shown["pipeline"] == shown["admin"] == ["alice@example.com", "bob@example.com"]
    assert shown["alice"] == ["a…@example.com", "b…@example.com"]
    listed = approval_notifications.deliveries_of(
        db, f.context(db, people["alice"]), created.approval.id
    )
    assert [(d.purpose, d.target) for d in listed] == [
        ("approver", "a…@example.com"),
        ("approver", "b…@example.com"),
    ]


NTFY = "ntfys://ntfy.sh/ml-approvals-7f3a9c"


def test_readers_see_neither_an_apprise_secret_nor_a_masked_address_in_targets_or_errors(
    db, people
):
    """A non-admin sees an apprise target as scheme, host and digest (never a json:// path or
    an ntfy topic) and a subscription's email recipient masked, in the target and in the
    last error alike (SMTP quotes the address it refused)."""
    from datetime import timedelta

    from signoff.domain.deliveries import AttemptResult, Reader, masked_address, shown_target
    from signoff.services import deliveries

    f.subscription(db, "push", kind="apprise", target=NTFY, filter={"type": ["approval.created"]})
    f.subscription(
        db, "mail", kind="email", target=["Ops@example.com"], filter={"type": ["approval.created"]}
    )
    approval = f.create(db, people["pipeline"]).approval
    claimed = [
        d
        for d in deliveries.claim_due(db, lease=timedelta(seconds=30), limit=100)
        if d.target_kind.value in ("apprise", "email") and d.purpose.value == "subscription"
    ]
    assert len(claimed) == 2
    results = [
        AttemptResult(d.id, False, None, f"refused: {{'{d.target.upper()}': (550, 'no')}}", 5, None)
        for d in claimed
    ]
    deliveries.record(db, claimed, results, f.RETRY_LATER)

    for person in (people["alice"], people["pipeline"]):
        channels = summary(db, person, approval.id)
        records = approval_notifications.deliveries_of(db, f.context(db, person), approval.id)
        shown = [(c.target, c.last_error) for c in channels] + [
            (r.target, r.last_error) for r in records if r.last_error
        ]
        assert len(shown) == 4
        for target, error in shown:
            for secret in ("ml-approvals-7f3a9c", "ops@example.com"):
                assert secret not in target.lower()
                assert secret not in (error or "").lower()
    (mailed,) = [c for c in summary(db, people["alice"], approval.id) if c.target_kind == "email"]
    assert mailed.last_error == f"refused: {{'{masked_address('ops@example.com')}': (550, 'no')}}"
    admin = shown_target("subscription", "apprise", NTFY, Reader.ADMIN)
    assert admin.startswith("ntfys://")
    (pushed,) = [c for c in summary(db, people["admin"], approval.id) if c.target_kind == "apprise"]
    assert pushed.target == shown_target(
        "subscription", "apprise", NTFY, Reader.ADMIN, compact=True
    )


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("jsons://hooks.example.com/T0KEN-abcdef123456", "T0KEN-abcdef123456"),
        (NTFY, "ml-approvals-7f3a9c"),
        ("tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-100123", "AAHdqTcvCH1vGWJ"),
    ],
)
def test_an_approver_never_sees_the_secret_parts_of_an_apprise_target(url, secret):
    from signoff.domain import deliveries as d

    for compact in (False, True):
        shown = d.shown_target("subscription", "apprise", url, d.Reader.APPROVER, compact=compact)
        assert secret not in shown, shown
        assert shown.startswith(url.split("://")[0] + "://")
    assert d.shown_target("subscription", "apprise", url, d.Reader.APPROVER).startswith(
        "jsons://hooks.example.com/…#" if url.startswith("jsons") else url.split("://")[0]
    )
