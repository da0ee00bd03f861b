"""Signing people in to the portal: passwords, the second factor, and sessions.

Every attempt, right or wrong, is counted and recorded with its audit entry in transactions
that commit before the caller is refused. A wrong email and a wrong password read the same
and take the same time (``passwords.verify_password``); only the lockout message, after
several failures, says that an account exists. Slow password hashing never runs inside a
transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session as DbSession

from signoff import errors
from signoff.domain import accounts, ids, mfa, passwords
from signoff.domain.accounts import Method, Stage
from signoff.domain.principals import Context, Principal, User, UserKind
from signoff.services import journal
from signoff.services.principals import CHANGED
from signoff.settings import Settings
from signoff.store import accounts as store
from signoff.store import principals as people
from signoff.store.engine import Database


@dataclass(frozen=True)
class Rules:
    """The sign-in settings services need, read once from ``Settings``."""

    secret_key: str
    mfa_required: bool
    idle: timedelta
    max_age: timedelta
    lockout: accounts.Lockout

    @classmethod
    def from_settings(cls, settings: Settings, secret_key: str) -> Rules:
        return cls(
            secret_key=secret_key,
            mfa_required=settings.mfa_required,
            idle=timedelta(seconds=settings.session_idle_seconds),
            max_age=timedelta(seconds=settings.session_max_seconds),
            lockout=accounts.Lockout(
                max_failures=settings.login_max_failures,
                duration=timedelta(seconds=settings.login_lockout_seconds),
            ),
        )

    @property
    def min_password_length(self) -> int:
        if self.mfa_required:
            return passwords.MIN_LENGTH_WITH_MFA
        return passwords.MIN_LENGTH_ALONE


def sweep_ended_sessions(db: Database, rules: Rules, *, now: datetime | None = None) -> int:
    """Forget the sessions that expired or went idle, whoever they belong to; a user's own are
    also forgotten at their next sign-in. Returns how many."""
    with db.write() as session:
        return store.delete_ended_sessions(session, now or datetime.now(UTC), rules.idle)


@dataclass(frozen=True)
class SignedIn:
    """A session and the secret for its cookie (returned only here)."""

    session: accounts.Session
    token: str
    user: User


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    qr_svg: str


def sign_in(
    db: Database, ctx: Context, rules: Rules, *, email: str, password: str, user_agent: str = ""
) -> SignedIn:
    """Check email and password; the session starts in the stage the account needs next.

    Three steps, so the slow hash holds no transaction (on SQLite that would stop every write
    of the server) and parallel guesses cannot outrun the lockout: a short write reserves the
    attempt (counting it as a failure, refused when locked), the hash is checked outside any
    transaction, and a second short write records the result."""
    now = datetime.now(UTC)
    email = email.strip().lower()
    with db.write() as session:
        user = people.find_user_by_email(session, email)
        reserved = store.reserve_attempt(session, user.id, rules.lockout, now) if user else None
    if user is None or reserved is None:
        passwords.verify_password(None, password)  # the same time as a real check
        with db.write() as session:
            if user is None:
                refusal = _fail(session, ctx, rules, None, now, "password", email=email)
            else:
                refusal = _locked(store.credentials_of(session, user.id), now)
        raise refusal
    is_right = passwords.verify_password(reserved.password_hash, password)
    new_hash = (
        passwords.hash_password(password)
        if is_right and passwords.needs_rehash(reserved.password_hash or "")
        else None
    )
    with db.write() as session:
        if not is_right or user.kind is not UserKind.PERSON:
            refusal = _fail(session, ctx, rules, user, now, "password", email=email)
        elif not user.is_active:
            store.release_attempt(session, user.id, rules.lockout, completed=False)
            _record(session, ctx, now, "auth.login_failed", user.id, reason="disabled")
            refusal = errors.AccountDisabled()
        else:
            if new_hash is not None:
                store.set_password(session, user.id, new_hash, now)
            stage = _stage_after_first_factor(rules, reserved)
            store.release_attempt(session, user.id, rules.lockout, completed=stage is not Stage.MFA)
            if stage is not Stage.MFA:
                store.use_password_resets(session, user.id, now)
                _record(session, ctx, now, "auth.login", user.id, method="password")
            return _start(session, ctx, rules, user, stage, Method.PASSWORD, user_agent, now)
    raise refusal


def second_factor(db: Database, ctx: Context, rules: Rules, token: str, code: str) -> SignedIn:
    """Finish a sign-in with a TOTP code or a recovery code."""
    now = datetime.now(UTC)
    refusal: errors.SignoffError
    with db.write() as session:
        signed_in, user = _session_in_stage(session, rules, token, Stage.MFA, now)
        creds = store.credentials_of(session, user.id, for_update=True)
        if creds.is_locked(now):
            store.delete_session(session, signed_in.id)
            refusal = _locked(creds, now)
        else:
            factor = _check_second_factor(session, rules, creds, code, now)
            if factor is not None:
                method = signed_in.method.value
                _record(session, ctx, now, "auth.login", user.id, method=method, factor=factor)
                store.use_password_resets(session, user.id, now)
                return _advance(session, signed_in, user, Stage.ACTIVE, now)
            refusal = _fail(session, ctx, rules, user, now, "code")
            if isinstance(refusal, errors.TooManyAttempts):
                store.delete_session(session, signed_in.id)
    raise refusal


def begin_enrolment(db: Database, rules: Rules, token: str) -> Enrolment:
    """The authenticator secret offered to this session: derived from the session (a reload
    shows the same one, another session of the same person gets another), and stored only
    once confirmed, so nobody else signed in as the person can learn it."""
    now = datetime.now(UTC)
    with db.read() as session:
        signed_in, user = _enrolling(session, rules, token, now)
    secret = mfa.enrolment_secret(rules.secret_key, signed_in.id)
    uri = mfa.provisioning_uri(secret, user.email)
    return Enrolment(secret=secret, uri=uri, qr_svg=mfa.qr_svg(uri))


def confirm_enrolment(
    db: Database, ctx: Context, rules: Rules, token: str, code: str
) -> tuple[SignedIn, list[str]]:
    """Confirm the authenticator with a code from it; returns the new session and the
    recovery codes, which are never shown again."""
    now = datetime.now(UTC)
    with db.write() as session:
        signed_in, user = _enrolling(session, rules, token, now)
        secret = mfa.enrolment_secret(rules.secret_key, signed_in.id)
        step = mfa.accepted_step(secret, code, last_step=None)
        if step is None:
            raise errors.InvalidCredentials("the code is not right; check the app's clock")
        store.set_totp(session, user.id, mfa.seal(rules.secret_key, secret), now)
        store.record_sign_in_step(session, user.id, totp_step=step)
        codes = mfa.new_recovery_codes()
        digests = [mfa.recovery_digest(rules.secret_key, user.id, c) for c in codes]
        store.replace_recovery_codes(session, user.id, digests)
        _record(session, ctx, now, "auth.mfa_enrol", user.id, factor="totp")
        if signed_in.stage is Stage.ENROL:
            _record(session, ctx, now, "auth.login", user.id, method=signed_in.method.value)
        return _advance(session, signed_in, user, Stage.ACTIVE, now), codes


def _enrolling(
    session: DbSession, rules: Rules, token: str, now: datetime
) -> tuple[accounts.Session, User]:
    signed_in, user = _session_in_stage(session, rules, token, None, now)
    if signed_in.stage is Stage.MFA:
        raise errors.Unauthenticated("finish signing in first")
    if store.credentials_of(session, user.id).has_totp:
        raise errors.Conflict("an authenticator app is already set up for this account")
    return signed_in, user


def authenticate_session(
    db: Database, rules: Rules, token: str
) -> tuple[accounts.Session, Principal] | None:
    """The live session a cookie's secret stands for, and who it acts as; None when the
    session ended, expired, went idle, or its user was disabled. The session may still owe a
    second factor or an enrolment: callers check its ``stage`` before showing anything.
    A page seen is activity: the session is marked seen, which keeps it from going idle."""
    found = find_session(db, rules, token)
    now = datetime.now(UTC)
    if found is not None and now - found[0].last_seen_at > accounts.LAST_SEEN_RESOLUTION:
        with db.write() as session:
            store.touch_session(session, found[0].id, now)
    return found


def find_session(
    db: Database, rules: Rules, token: str
) -> tuple[accounts.Session, Principal] | None:
    """``authenticate_session`` without marking the session seen, for what is no activity of
    its own: an error page, which shows who is signed in but must not keep them signed in."""
    now = datetime.now(UTC)
    with db.read() as session:
        found = store.find_session(session, ids.digest(token))
        if found is None:
            return None
        signed_in, user = found
        if not signed_in.is_live(now, rules.idle) or not user.is_active:
            return None
        return signed_in, Principal(user=user, team_ids=people.team_ids_of(session, user.id))


def sign_in_facts(db: Database, ctx: Context) -> dict[str, accounts.SignInFacts]:
    """Admins: who has an authenticator app set up, and when each person was last seen."""
    ctx.principal.require_admin()
    with db.read() as session:
        return store.sign_in_facts(session)


def sign_out(db: Database, ctx: Context, token: str) -> None:
    now = datetime.now(UTC)
    with db.write() as session:
        found = store.find_session(session, ids.digest(token))
        if found is None:
            return
        signed_in, user = found
        store.delete_session(session, signed_in.id)
        _record(session, ctx, now, "auth.logout", user.id)


def start_session(
    db: Database, ctx: Context, rules: Rules, user: User, method: Method, user_agent: str = ""
) -> SignedIn:
    """A session for someone another way has vouched for (an identity provider): the
    authenticator app is still asked for when they have one, or enrolled when required."""
    now = datetime.now(UTC)
    with db.write() as session:
        stage = _stage_after_first_factor(rules, store.credentials_of(session, user.id))
        if stage is not Stage.MFA:
            _record(session, ctx, now, "auth.login", user.id, method=method.value)
        return _start(session, ctx, rules, user, stage, method, user_agent, now)


def start_after_password_set(
    session: DbSession, ctx: Context, rules: Rules, user: User, method: Method, user_agent: str
) -> SignedIn:
    """The session that follows accepting an invitation, inside that transaction."""
    now = datetime.now(UTC)
    stage = Stage.ENROL if rules.mfa_required else Stage.ACTIVE
    if stage is Stage.ACTIVE:
        _record(session, ctx, now, "auth.login", user.id, method=method.value)
    return _start(session, ctx, rules, user, stage, method, user_agent, now)


def _stage_after_first_factor(rules: Rules, creds: accounts.Credentials) -> Stage:
    if creds.has_totp:
        return Stage.MFA
    return Stage.ENROL if rules.mfa_required else Stage.ACTIVE


def _start(
    session: DbSession,
    ctx: Context,
    rules: Rules,
    user: User,
    stage: Stage,
    method: Method,
    user_agent: str,
    now: datetime,
) -> SignedIn:
    store.delete_ended_sessions_of(session, user.id, now, rules.idle)
    token = "sos_" + ids.new_nonce()
    signed_in = accounts.Session(
        id=ids.new_id("ses"),
        user_id=user.id,
        stage=stage,
        method=method,
        created_at=now,
        last_seen_at=now,
        expires_at=now + rules.max_age,
    )
    store.insert_session(
        session, signed_in, ids.digest(token), client_addr=ctx.client_addr, user_agent=user_agent
    )
    return SignedIn(session=signed_in, token=token, user=user)


def _advance(
    session: DbSession, signed_in: accounts.Session, user: User, stage: Stage, now: datetime
) -> SignedIn:
    token = "sos_" + ids.new_nonce()
    store.advance_session(session, signed_in.id, token_hash=ids.digest(token), stage=stage, at=now)
    moved = accounts.Session(
        id=signed_in.id,
        user_id=user.id,
        stage=stage,
        method=signed_in.method,
        created_at=signed_in.created_at,
        last_seen_at=now,
        expires_at=signed_in.expires_at,
    )
    return SignedIn(session=moved, token=token, user=user)


def _session_in_stage(
    session: DbSession, rules: Rules, token: str, stage: Stage | None, now: datetime
) -> tuple[accounts.Session, User]:
    found = store.find_session(session, ids.digest(token))
    if found is None or not found[0].is_live(now, rules.idle) or not found[1].is_active:
        raise errors.Unauthenticated("the sign-in expired; start again")
    if stage is not None and found[0].stage is not stage:
        raise errors.Unauthenticated("start signing in again")
    return found


def _check_second_factor(
    session: DbSession, rules: Rules, creds: accounts.Credentials, code: str, now: datetime
) -> str | None:
    """``totp`` or ``recovery`` when ``code`` is a valid, unused one; None otherwise."""
    secret = mfa.unseal(rules.secret_key, creds.totp_secret) if creds.totp_secret else None
    if secret is not None:
        step = mfa.accepted_step(secret, code, last_step=creds.totp_last_step)
        if step is not None:
            store.record_sign_in_step(session, creds.user_id, totp_step=step)
            return "totp"
    if mfa.looks_like_recovery_code(code) and store.use_recovery_code(
        session, creds.user_id, mfa.recovery_digest(rules.secret_key, creds.user_id, code), now
    ):
        store.record_sign_in_step(session, creds.user_id)
        return "recovery"
    return None


def _fail(
    session: DbSession,
    ctx: Context,
    rules: Rules,
    user: User | None,
    now: datetime,
    what: str,
    email: str = "",
) -> errors.SignoffError:
    """Count and record a wrong password or code; the error to answer with."""
    if user is None:
        journal.record(
            session,
            ctx,
            at=now,
            action="auth.login_failed",
            object_type="email",
            object_id=email.strip().lower()[:64],
            after={"reason": "unknown_email"},
        )
        return errors.InvalidCredentials("the email or password is not right")
    if what == "password":  # reserve_attempt counted it already
        creds = store.credentials_of(session, user.id)
    else:
        creds = store.record_failure(session, user.id, rules.lockout, now)
    _record(session, ctx, now, "auth.login_failed", user.id, reason=f"wrong_{what}")
    if creds.is_locked(now):
        _record(session, ctx, now, "auth.lockout", user.id, until=creds.locked_until)
        return _locked(creds, now)
    if what == "code":
        return errors.InvalidCredentials("the code is not right")
    return errors.InvalidCredentials("the email or password is not right")


def _locked(creds: accounts.Credentials, now: datetime) -> errors.TooManyAttempts:
    until = creds.locked_until or now
    return errors.TooManyAttempts(
        "too many failed sign-ins: this account is locked until "
        f"{until.strftime('%H:%M UTC')}; try again then, or reset your password",
        retry_after=max(1, int((until - now).total_seconds())),
    )


def _record(
    session: DbSession, ctx: Context, now: datetime, action: str, user_id: str, **after: object
) -> None:
    detail = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in after.items()}
    journal.record(
        session,
        ctx,
        at=now,
        action=action,
        object_type="user",
        object_id=user_id,
        after=detail or None,
    )


def end_sessions_of(db: Database, session: DbSession, user_id: str) -> None:
    """End every session of a user at once, and tell every process's key memory."""
    store.delete_sessions_of(session, user_id)
    db.notify(session, CHANGED)
