"""Decision links: the signed token an approver's email carries (bound to one approval, one
approver, one verdict and the approval's deadline)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from signoff.domain import ids

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
