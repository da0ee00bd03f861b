"""Signing in, through the real services on a real database: invitations, passwords, the
second factor, lockout, resets, and what disabling a user does at once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from sqlalchemy import select, update

from signoff import errors
from signoff.domain import accounts as domain
from signoff.domain.accounts import Stage
from signoff.domain.principals import Role, anonymous_context
from signoff.services import accounts, audit, invitations, principals
from signoff.store.tables import InvitationRow, PasswordResetRow, SessionRow
from tests import factories
from tests.factories import CLI, SECRET_KEY

ANON = anonymous_context(request_id="req-1", client_addr="203.0.113.9")
WEEK = timedelta(days=7)
PASSWORD = "correct horse battery"


@pytest.fixture
def rules() -> accounts.Rules:
    return accounts.Rules(
        secret_key=SECRET_KEY,
        mfa_required=True,
        idle=timedelta(hours=1),
        max_age=timedelta(hours=12),
        lockout=domain.Lockout(max_failures=3, duration=timedelta(minutes=15)),
    )


def invite(db, email="Dana@Example.com", teams=("data-owners",), role=Role.MEMBER):
    return invitations.invite(
        db, CLI, email=email, teams=teams, role=role, ttl=WEEK, secret_key=SECRET_KEY
    )


def join(db, rules, email="dana@example.com") -> accounts.SignedIn:
    """Invited, accepted, authenticator enrolled: a fully signed-in person."""
    _, token = invite(db, email=email)
    signed = invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)
    enrolment = accounts.begin_enrolment(db, rules, signed.token)
    signed, _codes = accounts.confirm_enrolment(
        db, ANON, rules, signed.token, pyotp.TOTP(enrolment.secret).now()
    )
    return signed


def actions(db) -> list[str]:
    return [entry.action for entry in audit.export(db, CLI)]


@pytest.fixture
def team(db):
    factories.team(db, "data-owners")


def test_an_invitation_is_for_the_lower_cased_email_and_sends_an_email(db, team):
    invitation, token = invite(db)
    assert invitation.email == "dana@example.com"
    assert invitation.teams == ["data-owners"]
    assert token.startswith(invitation.id + ".")
    with db.read() as session:
        from signoff.store import outbox

        sent = outbox.deliveries_of_subject(session, invitation.id)
    assert [(d.target_kind, d.target) for d in sent] == [("email", "dana@example.com")]
    assert "invitation.create" in actions(db)


def test_a_second_invitation_for_the_same_email_in_any_case_is_refused(db, team):
    invite(db)
    with pytest.raises(errors.DuplicateName, match="pending invitation"):
        invite(db, email="DANA@example.COM")


def test_only_admins_invite(db, team):
    member = factories.user(db, "bob@example.com")
    with pytest.raises(errors.PermissionDenied):
        invitations.invite(
            db, factories.context(db, member), email="x@example.com", ttl=WEEK, secret_key="k"
        )


def test_inviting_into_a_team_that_does_not_exist_is_refused(db):
    with pytest.raises(errors.TeamNotFound):
        invite(db, teams=("nope",))


def test_accepting_creates_the_member_in_the_teams_and_uses_the_link_up(db, rules, team):
    _invitation, token = invite(db)
    signed = invitations.accept(db, ANON, rules, token, name="  Dana  Scully ", password=PASSWORD)
    assert signed.user.email == "dana@example.com"
    assert signed.user.name == "Dana Scully"
    assert signed.session.stage is Stage.ENROL  # MFA required: enrol before anything else
    teams = {t.name: t for t in principals.list_teams(db, CLI)}
    assert signed.user.id in teams["data-owners"].member_ids
    with pytest.raises(errors.InvalidLink, match="already accepted"):
        invitations.accept(db, ANON, rules, token, name="Mallory", password=PASSWORD)
    with pytest.raises(errors.InvalidLink):
        invitations.open_invitation(db, SECRET_KEY, token)
    assert {"invitation.accept", "user.create"} <= set(actions(db))


def test_a_weak_password_is_refused_and_the_link_still_works(db, rules, team):
    _, token = invite(db)
    with pytest.raises(errors.WeakPassword, match="most common"):
        invitations.accept(db, ANON, rules, token, name="Dana", password="password1")
    with pytest.raises(errors.WeakPassword, match="name or email"):
        invitations.accept(db, ANON, rules, token, name="Dana", password="dana-example-x")
    assert invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)


def test_an_expired_invitation_link_is_refused(db, rules, team):
    invitation, token = invite(db)
    with db.write() as session:
        session.execute(
            update(InvitationRow)
            .where(InvitationRow.id == invitation.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(errors.InvalidLink, match="expired"):
        invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)


def test_resending_makes_earlier_links_stop_working(db, rules, team):
    invitation, old = invite(db)
    resent, new = invitations.resend(db, CLI, invitation.id, ttl=WEEK, secret_key=SECRET_KEY)
    assert resent.send_count == 2
    assert new != old
    with pytest.raises(errors.InvalidLink, match="newer one"):
        invitations.open_invitation(db, SECRET_KEY, old)
    assert invitations.open_invitation(db, SECRET_KEY, new).id == invitation.id


def test_a_revoked_invitation_link_is_refused(db, rules, team):
    invitation, token = invite(db)
    invitations.revoke(db, CLI, invitation.id)
    with pytest.raises(errors.InvalidLink, match="withdrawn"):
        invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)


@pytest.mark.parametrize(
    "tampered",
    ["inv_nothing.{mac}", "{id}.{bad}", "{id}", "", "../../etc/passwd"],
)
def test_a_forged_or_tampered_link_is_refused(db, team, tampered):
    invitation, token = invite(db)
    mac = token.split(".", 1)[1]
    forged = tampered.format(id=invitation.id, mac=mac, bad="0" * 64)
    with pytest.raises(errors.InvalidLink):
        invitations.open_invitation(db, SECRET_KEY, forged)


def test_enrolment_confirms_with_a_code_and_gives_ten_recovery_codes_once(db, rules, team):
    _, token = invite(db)
    signed = invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)
    first = accounts.begin_enrolment(db, rules, signed.token)
    assert accounts.begin_enrolment(db, rules, signed.token).secret == first.secret  # reload
    other = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    assert other.session.stage is Stage.ENROL
    assert accounts.begin_enrolment(db, rules, other.token).secret != first.secret
    with pytest.raises(errors.InvalidCredentials):
        accounts.confirm_enrolment(db, ANON, rules, signed.token, "000000")
    active, codes = accounts.confirm_enrolment(
        db, ANON, rules, signed.token, pyotp.TOTP(first.secret).now()
    )
    assert active.session.stage is Stage.ACTIVE
    assert active.token != signed.token  # a new secret at every step
    assert accounts.authenticate_session(db, rules, signed.token) is None
    assert accounts.authenticate_session(db, rules, active.token) is not None
    assert len(codes) == 10
    with pytest.raises(errors.Conflict):
        accounts.begin_enrolment(db, rules, active.token)


def test_sign_in_needs_the_password_and_then_a_fresh_code(db, rules, team):
    joined = join(db, rules)
    secret = totp_secret_of(db, rules, joined)
    signed = accounts.sign_in(db, ANON, rules, email="DANA@example.com", password=PASSWORD)
    assert signed.session.stage is Stage.MFA
    assert accounts.authenticate_session(db, rules, signed.token) is not None  # owes a code
    active = accounts.second_factor(db, ANON, rules, signed.token, fresh_code(secret))
    assert active.session.stage is Stage.ACTIVE
    assert actions(db).count("auth.login") == 2  # the enrolment sign-in and this one


def totp_secret_of(db, rules, joined) -> str:
    from signoff.domain import mfa
    from signoff.store import accounts as store

    with db.read() as session:
        sealed = store.credentials_of(session, joined.user.id).totp_secret
    return mfa.unseal(rules.secret_key, sealed or "") or ""


def fresh_code(secret: str) -> str:
    """A valid code for the next time step: the current one was used by the enrolment."""
    import time

    return pyotp.TOTP(secret).at(time.time() + 30)


def test_a_used_totp_code_cannot_be_replayed(db, rules, team):
    joined = join(db, rules)
    secret = totp_secret_of(db, rules, joined)
    code = fresh_code(secret)
    first = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    accounts.second_factor(db, ANON, rules, first.token, code)
    second = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    with pytest.raises(errors.InvalidCredentials, match="code"):
        accounts.second_factor(db, ANON, rules, second.token, code)


def test_a_recovery_code_signs_in_once(db, rules, team):
    _, token = invite(db)
    signed = invitations.accept(db, ANON, rules, token, name="Dana", password=PASSWORD)
    secret = accounts.begin_enrolment(db, rules, signed.token).secret
    _, codes = accounts.confirm_enrolment(db, ANON, rules, signed.token, pyotp.TOTP(secret).now())
    first = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    assert accounts.second_factor(db, ANON, rules, first.token, codes[3].upper())
    again = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    with pytest.raises(errors.InvalidCredentials):
        accounts.second_factor(db, ANON, rules, again.token, codes[3])


def test_wrong_passwords_lock_the_account_with_a_clear_message(db, rules, team):
    join(db, rules)
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials, match="email or password"):
            accounts.sign_in(db, ANON, rules, email="dana@example.com", password="wrong one!")
    with pytest.raises(errors.TooManyAttempts, match="locked until") as locked:
        accounts.sign_in(db, ANON, rules, email="dana@example.com", password="wrong one!")
    assert 800 < locked.value.extra["retry_after"] <= 900
    with pytest.raises(errors.TooManyAttempts):  # even the right password, while locked
        accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    assert actions(db).count("auth.login_failed") == 3
    assert "auth.lockout" in actions(db)


def test_wrong_codes_count_towards_the_lockout_too(db, rules, team):
    join(db, rules)
    signed = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    for _ in range(2):
        with pytest.raises(errors.InvalidCredentials):
            accounts.second_factor(db, ANON, rules, signed.token, "000000")
    with pytest.raises(errors.TooManyAttempts):
        accounts.second_factor(db, ANON, rules, signed.token, "000000")
    with pytest.raises(errors.Unauthenticated):  # the half-signed-in session is gone
        accounts.second_factor(db, ANON, rules, signed.token, "000000")


def test_an_unknown_email_reads_like_a_wrong_password_and_is_audited(db, rules):
    with pytest.raises(errors.InvalidCredentials, match="email or password"):
        accounts.sign_in(db, ANON, rules, email="nobody@example.com", password=PASSWORD)
    entry = next(e for e in audit.export(db, CLI) if e.action == "auth.login_failed")
    assert entry.object_id == "nobody@example.com"
    assert entry.client_addr == "203.0.113.9"
    assert entry.actor == "anonymous"


def test_disabling_a_user_ends_their_sessions_and_keys_at_once(db, rules, team):
    joined = join(db, rules)
    key = principals.create_api_key(db, CLI, user=joined.user.id).secret
    assert principals.authenticate(db, key, secret_key=SECRET_KEY).user is not None
    principals.update_user(db, CLI, joined.user.id, is_active=False)
    assert accounts.authenticate_session(db, rules, joined.token) is None
    with pytest.raises(errors.Unauthenticated, match="disabled"):
        principals.authenticate(db, key, secret_key=SECRET_KEY)
    with pytest.raises(errors.AccountDisabled):
        accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    assert "user.update" in actions(db)


def test_the_last_active_admin_cannot_be_demoted_or_disabled(db):
    admin = factories.user(db, "root@example.com", role=Role.ADMIN)
    with pytest.raises(errors.Conflict, match="last active admin"):
        principals.update_user(db, CLI, admin.id, role=Role.MEMBER)
    factories.user(db, "second@example.com", role=Role.ADMIN)
    assert principals.update_user(db, CLI, admin.id, role=Role.MEMBER).role is Role.MEMBER


def test_a_role_change_is_audited_with_before_and_after(db):
    user = factories.user(db, "bob@example.com")
    principals.update_user(db, CLI, user.id, role=Role.ADMIN)
    entry = next(e for e in audit.export(db, CLI) if e.action == "user.update")
    assert entry.before == {"role": "member"}
    assert entry.after == {"role": "admin"}


def test_a_password_reset_link_works_once_and_ends_every_session(db, rules, team):
    joined = join(db, rules)
    token = invitations.request_password_reset(
        db, ANON, email="DANA@example.com", ttl=timedelta(hours=1), secret_key=SECRET_KEY
    )
    assert token is not None
    assert invitations.open_password_reset(db, SECRET_KEY, token).id == joined.user.id
    invitations.reset_password(db, ANON, rules, token, password="a brand new passphrase")
    assert accounts.authenticate_session(db, rules, joined.token) is None
    with pytest.raises(errors.InvalidLink):
        invitations.reset_password(db, ANON, rules, token, password="another new passphrase")
    signed = accounts.sign_in(
        db, ANON, rules, email="dana@example.com", password="a brand new passphrase"
    )
    assert signed.session.stage is Stage.MFA  # a reset does not skip the authenticator


def test_a_reset_for_an_unknown_email_sends_nothing(db):
    assert (
        invitations.request_password_reset(
            db, ANON, email="nobody@example.com", ttl=timedelta(hours=1), secret_key=SECRET_KEY
        )
        is None
    )


def test_an_expired_reset_link_and_an_older_one_are_refused(db, rules, team):
    join(db, rules)
    older = invitations.request_password_reset(
        db, ANON, email="dana@example.com", ttl=timedelta(hours=1), secret_key=SECRET_KEY
    )
    newer = invitations.request_password_reset(
        db, ANON, email="dana@example.com", ttl=timedelta(hours=1), secret_key=SECRET_KEY
    )
    assert older
    assert newer
    with pytest.raises(errors.InvalidLink):
        invitations.open_password_reset(db, SECRET_KEY, older)
    with db.write() as session:
        session.execute(
            update(PasswordResetRow).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    with pytest.raises(errors.InvalidLink, match="expired"):
        invitations.open_password_reset(db, SECRET_KEY, newer)


def test_an_idle_session_ends(db, rules, team):
    joined = join(db, rules)
    short = accounts.Rules(
        secret_key=SECRET_KEY,
        mfa_required=True,
        idle=timedelta(seconds=0),
        max_age=rules.max_age,
        lockout=rules.lockout,
    )
    assert accounts.authenticate_session(db, short, joined.token) is None
    assert accounts.authenticate_session(db, rules, joined.token) is not None


def test_the_sweep_forgets_ended_sessions_of_everyone_and_keeps_live_ones(db, rules, team):
    idle = join(db, rules, email="idle@example.com")
    live = join(db, rules, email="live@example.com")
    later = datetime.now(UTC) + rules.idle + timedelta(seconds=1)
    with db.write() as session:
        session.execute(
            update(SessionRow).values(last_seen_at=later - rules.idle + timedelta(seconds=1))
        )
        session.execute(
            update(SessionRow)
            .where(SessionRow.user_id == idle.user.id)
            .values(last_seen_at=later - rules.idle)
        )
    assert accounts.sweep_ended_sessions(db, rules, now=later) == 1
    assert accounts.sweep_ended_sessions(db, rules, now=later) == 0
    with db.read() as session:
        assert set(session.scalars(select(SessionRow.user_id))) == {live.user.id}


def test_sign_out_ends_the_session_and_is_audited(db, rules, team):
    joined = join(db, rules)
    accounts.sign_out(db, ANON, joined.token)
    assert accounts.authenticate_session(db, rules, joined.token) is None
    assert "auth.logout" in actions(db)


def test_without_required_mfa_an_accepted_invitation_signs_in_at_once(db, rules, team):
    optional = accounts.Rules(
        secret_key=SECRET_KEY,
        mfa_required=False,
        idle=rules.idle,
        max_age=rules.max_age,
        lockout=rules.lockout,
    )
    _, token = invite(db)
    with pytest.raises(errors.WeakPassword, match="15"):  # a single factor must be longer
        invitations.accept(db, ANON, optional, token, name="Dana", password="horse battery")
    signed = invitations.accept(db, ANON, optional, token, name="Dana", password=PASSWORD)
    assert signed.session.stage is Stage.ACTIVE


def test_a_provider_sign_in_still_asks_for_the_authenticator_app_one_has(db, rules, team):
    joined = join(db, rules)
    vouched = accounts.start_session(db, ANON, rules, joined.user, domain.Method.OIDC)
    assert vouched.session.stage is Stage.MFA
    newcomer = factories.user(db, "new@example.com")
    assert accounts.start_session(db, ANON, rules, newcomer, domain.Method.OIDC).session.stage is (
        Stage.ENROL
    )


def test_parallel_wrong_passwords_get_no_more_checks_than_the_lockout_allows(
    db, rules, team, monkeypatch
):
    import threading

    from signoff.domain import passwords

    join(db, rules)
    checked = []
    real_verify = passwords.verify_password

    def counting(stored_hash, password):
        if stored_hash is not None:
            checked.append(password)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(passwords, "verify_password", counting)
    start = threading.Barrier(12)
    answers = []

    def guess(number: int) -> None:
        start.wait()
        try:
            accounts.sign_in(db, ANON, rules, email="dana@example.com", password=f"guess {number}")
        except errors.SignoffError as exc:
            answers.append(type(exc).__name__)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(checked) <= rules.lockout.max_failures
    assert answers.count("TooManyAttempts") >= 12 - rules.lockout.max_failures


def test_a_sign_in_holds_no_write_transaction_while_it_hashes(db, rules, team, monkeypatch):
    from signoff.domain import passwords

    join(db, rules)
    real_verify = passwords.verify_password
    writes_during_hash = []

    def verify_then_write(stored_hash, password):
        with db.write() as session:  # would wait forever on SQLite if a write were open here
            writes_during_hash.append(session is not None)
        return real_verify(stored_hash, password)

    monkeypatch.setattr(passwords, "verify_password", verify_then_write)
    signed = accounts.sign_in(db, ANON, rules, email="dana@example.com", password=PASSWORD)
    assert signed.session.stage is Stage.MFA
    assert writes_during_hash == [True]
