"""Decision links: the signed token an approver's email carries (bound to one approval, one
approver, one verdict and the approval's deadline), and opening and using one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff import errors
from signoff.domain import ids
from signoff.domain.approvals import Approval, Channel, Status, Verdict
from signoff.domain.principals import User, anonymous_context
from signoff.services import approval_settlement, approvals, audit, decision_links
from signoff.store.engine import Database
from tests import factories as f

KEY = "test-secret-key"
DEADLINE = datetime(2026, 11, 23, 6, 9, 17, 247329, tzinfo=UTC)


def token(
    approval_id: str = "ap_xvrhmtfm6gt1",
    user_id: str = "usr_5h790mvnm4dc",
    verdict: str = "approve",
    deadline: datetime = DEADLINE,
    key: str = KEY,
) -> str:
    return ids.decision_link_token(key, approval_id, user_id, verdict, deadline)


def test_a_link_names_its_approval_approver_and_verdict_and_verifies():
    made = token()
    assert made.startswith("ap_xvrhmtfm6gt1.usr_5h790mvnm4dc.approve.")
    assert ids.decision_link_of(made) == ("ap_xvrhmtfm6gt1", "usr_5h790mvnm4dc", "approve")
    assert ids.is_genuine_decision_link(KEY, made, DEADLINE)


def test_a_link_is_bound_to_its_approver_and_verdict():
    alices = token(user_id="usr_alice000000")
    bobs = alices.replace("usr_alice000000", "usr_bob00000000")
    as_reject = alices.replace(".approve.", ".reject.")
    assert not ids.is_genuine_decision_link(KEY, bobs, DEADLINE)
    assert not ids.is_genuine_decision_link(KEY, as_reject, DEADLINE)
    assert token(user_id="usr_bob00000000") != bobs
    assert token(verdict="reject") != token()


def test_a_link_is_bound_to_its_approval():
    other = token().replace("ap_xvrhmtfm6gt1", "ap_xvrhmtfm6gt2")
    assert not ids.is_genuine_decision_link(KEY, other, DEADLINE)


def test_a_link_for_another_deadline_does_not_verify():
    """The MAC covers the second the link expires: an approval whose deadline moved (or a
    link made for another) needs a new link."""
    assert not ids.is_genuine_decision_link(KEY, token(), DEADLINE + timedelta(seconds=1))
    assert ids.is_genuine_decision_link(KEY, token(), DEADLINE.replace(microsecond=0))


def test_a_link_made_under_another_key_does_not_verify():
    assert not ids.is_genuine_decision_link(KEY, token(key="another-key"), DEADLINE)


@pytest.mark.parametrize(
    "tampered",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # one character of the MAC
        lambda t: t[:-2],  # cut short, as a mail client might wrap it
        lambda t: t.upper(),
        lambda t: t + ".x",
        lambda t: t.replace(".", "/", 1),
        lambda t: "",
        lambda t: "../../etc/passwd",
    ],
)
def test_a_tampered_link_does_not_verify(tampered):
    assert not ids.is_genuine_decision_link(KEY, tampered(token()), DEADLINE)


def test_only_the_shape_of_a_link_is_read_before_its_mac_is_checked():
    assert ids.decision_link_of("ap_1.usr_2.approve." + "0" * 64) == ("ap_1", "usr_2", "approve")
    assert ids.decision_link_of("ap_1.usr_2.approve." + "0" * 63) is None
    assert ids.decision_link_of("ap_1.usr_2." + "0" * 64) is None
    assert ids.decision_link_of("ap_1.usr 2.approve." + "0" * 64) is None


# --- opening and using a link, on a real database -------------------------------------------


@pytest.fixture
def people(db: Database) -> dict[str, User]:
    f.team(db, "data-owners")
    return {
        "pipeline": f.user(db, "pipeline@example.com"),
        "alice": f.user(db, "alice@example.com", teams=("data-owners",)),
        "bob": f.user(db, "bob@example.com", teams=("data-owners",)),
    }


ANONYMOUS = anonymous_context("req-test", "127.0.0.1")


def link_of(approval: Approval, user: User, verdict: str = "approve") -> str:
    return ids.decision_link_token(
        f.SECRET_KEY, approval.id, user.id, verdict, approval.deadline_at
    )


def test_a_link_decides_as_its_approver_through_the_link_channel(db, people):
    approval = f.create(db, people["pipeline"], approvers=["team:data-owners"]).approval
    token = link_of(approval, people["alice"])
    opened = decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token)
    assert (opened.approver.id, opened.verdict) == (people["alice"].id, Verdict.APPROVE)
    decided = decision_links.decide(db, ANONYMOUS, f.SECRET_KEY, token, comment="ok", form=None)
    assert decided.status is Status.APPROVED
    [decision] = decided.decisions
    assert (decision.user_email, decision.channel) == ("alice@example.com", Channel.LINK)
    [entry] = [e for e in audit.export(db, f.CLI) if e.action == "approval.decide"]
    assert (entry.actor, entry.client_addr) == (f"user:{people['alice'].id}", "127.0.0.1")
    assert entry.after is not None
    assert entry.after["channel"] == "link"


def test_a_link_opened_after_the_deadline_has_expired_before_the_scheduler_looks(db, people):
    approval = f.create(db, people["pipeline"]).approval
    token = link_of(approval, people["alice"])
    expired = decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token, now=approval.deadline_at)
    assert isinstance(expired.refusal, errors.InvalidLink)
    assert "expired" in expired.refusal.detail
    with pytest.raises(errors.InvalidLink):
        decision_links.decide(
            db, ANONYMOUS, f.SECRET_KEY, token, comment="", form=None, now=approval.deadline_at
        )
    just_before = approval.deadline_at - timedelta(seconds=1)
    assert (
        decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token, now=just_before).refusal
        is None
    )


def test_a_link_under_another_key_or_for_another_approver_is_not_found(db, people):
    approval = f.create(db, people["pipeline"]).approval
    alices = link_of(approval, people["alice"])
    forged = ids.decision_link_token(
        "another-key", approval.id, people["alice"].id, "approve", approval.deadline_at
    )
    swapped = alices.replace(people["alice"].id, people["bob"].id)
    for token in (forged, swapped, alices.replace(approval.id, "ap_000000000000")):
        with pytest.raises(errors.LinkNotFound):
            decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token)


def test_a_link_needing_login_refuses_anyone_not_signed_in_as_its_approver(db, people):
    approval = f.create(db, people["pipeline"], policy={"link_requires_login": True}).approval
    token = link_of(approval, people["alice"])
    with pytest.raises(errors.Unauthenticated):
        decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token)
    with pytest.raises(errors.PermissionDenied, match=r"signed in as bob@example\.com"):
        decision_links.open_link(db, f.context(db, people["bob"]), f.SECRET_KEY, token)
    alice = f.context(db, people["alice"])
    assert (
        decision_links.open_link(db, alice, f.SECRET_KEY, token).approver.id == people["alice"].id
    )


def test_the_requester_gets_no_usable_link_unless_the_policy_lets_them_decide(db, people):
    approval = f.create(db, people["alice"], approvers=["team:data-owners"]).approval
    with pytest.raises(errors.RequesterCannotDecide):
        decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, link_of(approval, people["alice"]))


def test_a_canceled_approvals_link_says_so_and_decides_nothing(db, people):
    approval = f.create(db, people["pipeline"]).approval
    approval_settlement.cancel(db, f.context(db, people["pipeline"]), approval.id)
    token = link_of(approval, people["alice"])
    opened = decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, token)
    assert isinstance(opened.refusal, errors.AlreadyDecided)
    assert opened.approval.status is Status.CANCELED
    with pytest.raises(errors.AlreadyDecided):
        decision_links.decide(db, ANONYMOUS, f.SECRET_KEY, token, comment="", form=None)


def test_a_used_link_and_a_settled_approvals_link_say_why_and_name_the_deciders(db, people):
    approval = f.create(
        db, people["pipeline"], approvers=["team:data-owners"], policy={"quorum": 2}
    ).approval
    alices, bobs = link_of(approval, people["alice"]), link_of(approval, people["bob"], "reject")
    decision_links.decide(db, ANONYMOUS, f.SECRET_KEY, alices, comment="", form=None)
    used = decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, alices)
    assert isinstance(used.refusal, errors.DuplicateDecision)
    assert "you approved it" in used.refusal.detail
    assert used.approval.is_pending
    assert decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, bobs).refusal is None

    carol = f.user(db, "carol@example.com", teams=("data-owners",))
    carols = link_of(approval, carol)
    decision_links.decide(db, ANONYMOUS, f.SECRET_KEY, carols, comment="", form=None)
    late = decision_links.open_link(db, ANONYMOUS, f.SECRET_KEY, bobs)
    assert isinstance(late.refusal, errors.AlreadyDecided)
    assert late.approval.status is Status.APPROVED
    assert set(late.people) == {people["alice"].id, carol.id}
    with pytest.raises(errors.AlreadyDecided):
        decision_links.decide(db, ANONYMOUS, f.SECRET_KEY, bobs, comment="", form=None)
    assert len(approvals.get(db, f.CLI, approval.id).decisions) == 2
