"""Sign-in state: credentials, recovery codes, sessions, invitations and password resets."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import accounts
from signoff.domain.principals import User
from signoff.store import principals as people
from signoff.store.tables import (
    CredentialRow,
    InvitationRow,
    PasswordResetRow,
    RecoveryCodeRow,
    SessionRow,
    UserRow,
    table,
)

# Every portal request reads its session and user: built once, read as Core rows.
_sessions, _users = table(SessionRow), table(UserRow)
_SESSION_AND_USER_BY_HASH = (
    select(_sessions, _users)
    .join(_users, _users.c.id == _sessions.c.user_id)
    .where(_sessions.c.token_hash == bindparam("token_hash"))
)
_SESSION_COLUMNS = len(_sessions.c)


def _session(row: Any) -> accounts.Session:
    return accounts.Session(
        id=row.id,
        user_id=row.user_id,
        stage=accounts.Stage(row.stage),
        method=accounts.Method(row.method),
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
    )


def _credentials(row: CredentialRow) -> accounts.Credentials:
    return accounts.Credentials(
        user_id=row.user_id,
        password_hash=row.password_hash,
        totp_secret=row.totp_secret,
        totp_confirmed_at=row.totp_confirmed_at,
        totp_last_step=row.totp_last_step,
        failed_logins=row.failed_logins,
        locked_until=row.locked_until,
    )


def credentials_of(
    session: Session, user_id: str, *, for_update: bool = False
) -> accounts.Credentials:
    """The user's credentials, an empty set when they have none yet (nothing is written)."""
    query = select(CredentialRow).where(CredentialRow.user_id == user_id)
    row = session.scalars(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        return accounts.Credentials(user_id, None, None, None, None, 0, None)
    return _credentials(row)


def _credential_row(session: Session, user_id: str, *, for_update: bool = False) -> CredentialRow:
    """The row to change, made empty first when the user has none."""
    query = select(CredentialRow).where(CredentialRow.user_id == user_id)
    row = session.scalars(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        row = CredentialRow(user_id=user_id, failed_logins=0)
        session.add(row)
        session.flush()
    return row


def sign_in_facts(session: Session) -> dict[str, accounts.SignInFacts]:
    """By user id, for users with credentials or a kept session."""
    enrolled = session.execute(
        select(CredentialRow.user_id).where(
            CredentialRow.totp_secret.is_not(None), CredentialRow.totp_confirmed_at.is_not(None)
        )
    ).scalars()
    facts = {user_id: accounts.SignInFacts(has_totp=True) for user_id in enrolled}
    seen = session.execute(
        select(SessionRow.user_id, func.max(SessionRow.last_seen_at)).group_by(SessionRow.user_id)
    )
    for user_id, last_seen_at in seen:
        has_totp = user_id in facts
        facts[user_id] = accounts.SignInFacts(has_totp=has_totp, last_seen_at=last_seen_at)
    return facts


def set_password(session: Session, user_id: str, password_hash: str, at: datetime) -> None:
    row = _credential_row(session, user_id)
    row.password_hash, row.password_changed_at = password_hash, at
    row.failed_logins, row.locked_until = 0, None
    session.flush()


def set_totp(
    session: Session, user_id: str, sealed: str | None, confirmed_at: datetime | None
) -> None:
    row = _credential_row(session, user_id)
    row.totp_secret, row.totp_confirmed_at, row.totp_last_step = sealed, confirmed_at, None
    session.flush()


def record_sign_in_step(session: Session, user_id: str, *, totp_step: int | None = None) -> None:
    """A right password or code: the failure count starts again; a TOTP step is used up."""
    row = _credential_row(session, user_id)
    row.failed_logins, row.locked_until = 0, None
    if totp_step is not None:
        row.totp_last_step = totp_step
    session.flush()


def reserve_attempt(
    session: Session, user_id: str, lockout: accounts.Lockout, now: datetime
) -> accounts.Credentials | None:
    """Count a sign-in attempt as failed before its password is checked, under the row's
    lock; None when the account is locked. The attempt that reaches the limit locks the
    account for everyone after it, so parallel guesses get no more tries than serial ones;
    ``release_attempt`` takes the count back when the password was right."""
    row = _credential_row(session, user_id, for_update=True)
    if row.locked_until is not None and now < row.locked_until:
        return None
    before = _credentials(row)
    if row.locked_until is not None:  # a lock that ran out: a fresh start
        row.failed_logins, row.locked_until = 0, None
    row.failed_logins += 1
    row.locked_until = lockout.locked_until(row.failed_logins, now)
    session.flush()
    return before


def release_attempt(
    session: Session, user_id: str, lockout: accounts.Lockout, *, completed: bool
) -> None:
    """A reserved attempt whose password was right: a completed sign-in starts the count
    again; one that still owes its second factor neither counts nor resets it."""
    row = _credential_row(session, user_id, for_update=True)
    if completed:
        row.failed_logins, row.locked_until = 0, None
    else:
        row.failed_logins = max(0, row.failed_logins - 1)
        if row.failed_logins < lockout.max_failures:
            row.locked_until = None
    session.flush()


def record_failure(
    session: Session, user_id: str, lockout: accounts.Lockout, now: datetime
) -> accounts.Credentials:
    row = _credential_row(session, user_id, for_update=True)
    if row.locked_until is not None and now < row.locked_until:
        return _credentials(row)  # failures while locked do not extend the lock
    row.failed_logins += 1
    row.locked_until = lockout.locked_until(row.failed_logins, now)
    if row.locked_until is not None:
        row.failed_logins = 0
    session.flush()
    return _credentials(row)


def replace_recovery_codes(session: Session, user_id: str, digests: list[str]) -> None:
    session.execute(delete(RecoveryCodeRow).where(RecoveryCodeRow.user_id == user_id))
    session.add_all(RecoveryCodeRow(user_id=user_id, code_hash=digest) for digest in digests)
    session.flush()


def use_recovery_code(session: Session, user_id: str, digest: str, at: datetime) -> bool:
    """Spend a recovery code; False when it is unknown or spent."""
    result = session.execute(
        update(RecoveryCodeRow)
        .where(
            RecoveryCodeRow.user_id == user_id,
            RecoveryCodeRow.code_hash == digest,
            RecoveryCodeRow.used_at.is_(None),
        )
        .values(used_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unused_recovery_codes(session: Session, user_id: str) -> int:
    return (
        session.scalar(
            select(func.count())
            .select_from(RecoveryCodeRow)
            .where(RecoveryCodeRow.user_id == user_id, RecoveryCodeRow.used_at.is_(None))
        )
        or 0
    )


def insert_session(
    session: Session,
    signed_in: accounts.Session,
    token_hash: str,
    *,
    client_addr: str | None,
    user_agent: str | None,
) -> None:
    session.add(
        SessionRow(
            id=signed_in.id,
            token_hash=token_hash,
            user_id=signed_in.user_id,
            stage=signed_in.stage.value,
            method=signed_in.method.value,
            created_at=signed_in.created_at,
            last_seen_at=signed_in.last_seen_at,
            expires_at=signed_in.expires_at,
            client_addr=client_addr,
            user_agent=(user_agent or "")[:255] or None,
        )
    )
    session.flush()


def find_session(session: Session, token_hash: str) -> tuple[accounts.Session, User] | None:
    row = session.execute(_SESSION_AND_USER_BY_HASH, {"token_hash": token_hash}).one_or_none()
    if row is None:
        return None
    fields = tuple(row)
    found = _session(
        SimpleNamespace(**dict(zip(_sessions.c.keys(), fields[:_SESSION_COLUMNS], strict=True)))
    )
    user = people.user_of_row(
        SimpleNamespace(**dict(zip(_users.c.keys(), fields[_SESSION_COLUMNS:], strict=True)))
    )
    return found, user


def touch_session(session: Session, session_id: str, at: datetime) -> None:
    session.execute(update(SessionRow).where(SessionRow.id == session_id).values(last_seen_at=at))


def advance_session(
    session: Session, session_id: str, *, token_hash: str, stage: accounts.Stage, at: datetime
) -> None:
    """Move a session to ``stage`` under a new secret (the old one stops working)."""
    session.execute(
        update(SessionRow)
        .where(SessionRow.id == session_id)
        .values(token_hash=token_hash, stage=stage.value, last_seen_at=at)
    )


def delete_session(session: Session, session_id: str) -> None:
    session.execute(delete(SessionRow).where(SessionRow.id == session_id))


def delete_sessions_of(session: Session, user_id: str) -> int:
    result = session.execute(delete(SessionRow).where(SessionRow.user_id == user_id))
    return int(result.rowcount)  # type: ignore[attr-defined]


def delete_ended_sessions_of(
    session: Session, user_id: str, now: datetime, idle: timedelta
) -> None:
    """Forget a user's sessions that expired or went idle (done at their next sign-in)."""
    session.execute(
        delete(SessionRow).where(
            SessionRow.user_id == user_id,
            (SessionRow.expires_at <= now) | (SessionRow.last_seen_at <= now - idle),
        )
    )


def delete_ended_sessions(session: Session, now: datetime, idle: timedelta) -> int:
    """Forget everyone's sessions that expired or went idle (the worker's periodic sweep)."""
    result = session.execute(
        delete(SessionRow).where(
            (SessionRow.expires_at <= now) | (SessionRow.last_seen_at <= now - idle)
        )
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def _invitation(row: InvitationRow) -> accounts.Invitation:
    return accounts.Invitation(
        id=row.id,
        email=row.email,
        role=row.role,
        teams=list(row.teams),
        invited_by=row.invited_by,
        created_at=row.created_at,
        sent_at=row.sent_at,
        expires_at=row.expires_at,
        send_count=row.send_count,
        accepted_at=row.accepted_at,
        user_id=row.user_id,
        revoked_at=row.revoked_at,
    )


def insert_invitation(session: Session, invitation: accounts.Invitation, nonce: str) -> None:
    session.add(
        InvitationRow(
            id=invitation.id,
            email=invitation.email,
            role=invitation.role,
            teams=invitation.teams,
            nonce=nonce,
            invited_by=invitation.invited_by,
            created_at=invitation.created_at,
            sent_at=invitation.sent_at,
            expires_at=invitation.expires_at,
            send_count=invitation.send_count,
        )
    )
    session.flush()


def get_invitation(
    session: Session, invitation_id: str, *, for_update: bool = False
) -> tuple[accounts.Invitation, str]:
    """The invitation and its current link nonce."""
    query = select(InvitationRow).where(InvitationRow.id == invitation_id)
    row = session.scalars(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        raise errors.InvitationNotFound(f"no invitation {invitation_id!r}")
    return _invitation(row), row.nonce


def open_invitations_for(session: Session, email: str, now: datetime) -> list[accounts.Invitation]:
    rows = session.scalars(
        select(InvitationRow).where(
            InvitationRow.email == email,
            InvitationRow.accepted_at.is_(None),
            InvitationRow.revoked_at.is_(None),
            InvitationRow.expires_at > now,
        )
    )
    return [_invitation(row) for row in rows]


def list_invitations(session: Session) -> list[accounts.Invitation]:
    rows = session.scalars(select(InvitationRow).order_by(InvitationRow.created_at.desc()))
    return [_invitation(row) for row in rows]


def update_invitation(session: Session, invitation_id: str, **values: Any) -> accounts.Invitation:
    session.execute(update(InvitationRow).where(InvitationRow.id == invitation_id).values(**values))
    return get_invitation(session, invitation_id)[0]


def insert_password_reset(session: Session, reset: accounts.PasswordReset, nonce: str) -> None:
    session.add(
        PasswordResetRow(
            id=reset.id,
            user_id=reset.user_id,
            nonce=nonce,
            created_at=reset.created_at,
            expires_at=reset.expires_at,
        )
    )
    session.flush()


def find_password_reset(
    session: Session, reset_id: str, *, for_update: bool = False
) -> tuple[accounts.PasswordReset, str] | None:
    query = select(PasswordResetRow).where(PasswordResetRow.id == reset_id)
    row = session.scalars(query.with_for_update() if for_update else query).one_or_none()
    if row is None:
        return None
    reset = accounts.PasswordReset(
        id=row.id,
        user_id=row.user_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        used_at=row.used_at,
    )
    return reset, row.nonce


def use_password_resets(session: Session, user_id: str, at: datetime) -> None:
    """Spend every open reset of the user: one reset, or a sign-in, ends them all."""
    session.execute(
        update(PasswordResetRow)
        .where(PasswordResetRow.user_id == user_id, PasswordResetRow.used_at.is_(None))
        .values(used_at=at)
    )
