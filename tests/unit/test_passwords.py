"""Passwords and second factors, as rules: NIST 800-63B's checks, Argon2id, TOTP steps that
work once, sealed secrets, recovery codes."""

from __future__ import annotations

import pyotp
import pytest

from signoff.domain import ids, mfa, passwords


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least 8"),
        ("password", "most common"),
        ("Password123!", "most common"),
        ("aaaaaaaaaa", "repeated or sequential"),
        ("12345678901", "repeated or sequential"),
        ("qwertyuiop", "most common"),
        ("zyxwvutsrqp", "repeated or sequential"),
        ("dana-likes-signoff", "your name or email"),
        ("x" * 257, "at most 256"),
        ("tab\there-tab", "printable"),
    ],
)
def test_a_bad_password_is_refused_with_its_reason(password, reason):
    found = passwords.problems(password, min_length=8, context=("dana@example.com", "dana"))
    assert found
    assert reason in found[0]


@pytest.mark.parametrize(
    "password", ["correct horse battery", "Tr0ub4dor&3x", "zürich-im-nebel", "kuusi palaa"]
)
def test_a_good_password_needs_no_composition_rules(password):
    assert passwords.problems(password, min_length=8, context=("dana",)) == []


def test_a_password_alone_must_be_longer_than_one_of_two_factors():
    assert passwords.problems("correct horse", min_length=passwords.MIN_LENGTH_ALONE)
    assert not passwords.problems("correct horse", min_length=passwords.MIN_LENGTH_WITH_MFA)


def test_the_hash_is_argon2id_and_verifies_only_the_same_password():
    stored = passwords.hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "correct horse batterY")
    assert not passwords.verify_password(None, "correct horse battery")
    assert not passwords.verify_password("not a hash", "correct horse battery")


def test_unicode_passwords_match_however_they_were_typed():
    composed, decomposed = "caf\u00e9 au lait", "cafe\u0301 au lait"
    assert passwords.verify_password(passwords.hash_password(composed), decomposed)


def test_a_totp_code_works_once_and_only_near_its_time():
    secret = mfa.new_secret()
    now = 1_800_000_000.0
    code = pyotp.TOTP(secret).at(now)
    step = mfa.accepted_step(secret, code, last_step=None, now=now)
    assert step == int(now // 30)
    assert mfa.accepted_step(secret, code, last_step=step, now=now) is None  # replayed
    assert mfa.accepted_step(secret, code, last_step=None, now=now + 29) is not None  # drift
    assert mfa.accepted_step(secret, code, last_step=None, now=now + 95) is None  # too late
    wrong = "000000" if code != "000000" else "111111"
    assert mfa.accepted_step(secret, wrong, last_step=None, now=now) is None
    assert mfa.accepted_step(secret, "12345", last_step=None, now=now) is None


def test_a_sealed_secret_opens_only_with_the_same_key():
    sealed = mfa.seal("key-one", "JBSWY3DPEHPK3PXP")
    assert "JBSWY3DPEHPK3PXP" not in sealed
    assert mfa.unseal("key-one", sealed) == "JBSWY3DPEHPK3PXP"
    assert mfa.unseal("key-two", sealed) is None


def test_recovery_codes_are_distinct_and_their_digest_ignores_how_they_are_typed():
    codes = mfa.new_recovery_codes()
    assert len(set(codes)) == mfa.RECOVERY_CODES
    code = codes[0]
    typed = " " + code.upper().replace("-", " ")
    assert mfa.recovery_digest("k", "usr_1", code) == mfa.recovery_digest("k", "usr_1", typed)
    assert mfa.recovery_digest("k", "usr_1", code) != mfa.recovery_digest("k", "usr_2", code)
    assert mfa.recovery_digest("k", "usr_1", code) != mfa.recovery_digest("j", "usr_1", code)
    assert mfa.looks_like_recovery_code(code)
    assert not mfa.looks_like_recovery_code("123456")


def test_the_qr_code_is_inline_svg_without_script():
    svg = mfa.qr_svg(mfa.provisioning_uri(mfa.new_secret(), "dana@example.com"))
    assert svg.startswith("<svg")
    assert "<script" not in svg


def test_a_link_token_is_bound_to_its_purpose_object_and_nonce():
    token = ids.link_token("k", "invitation", "inv_1", "nonce-1")
    assert ids.link_object_id(token) == "inv_1"
    assert ids.is_genuine_link("k", "invitation", token, "nonce-1")
    assert not ids.is_genuine_link("k", "password-reset", token, "nonce-1")
    assert not ids.is_genuine_link("k", "invitation", token, "nonce-2")
    assert not ids.is_genuine_link("other", "invitation", token, "nonce-1")
    forged = "inv_2" + token[len("inv_1") :]
    assert not ids.is_genuine_link("k", "invitation", forged, "nonce-1")
    assert ids.link_object_id("garbage") is None
