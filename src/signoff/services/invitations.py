"""Invitations into the workforce, and password resets: the two things signoff sends a
person a link for.

A link is ``/invite/<token>`` or ``/reset/<token>``, where the token is the object's id and an
HMAC under the server key over the object's current nonce (``ids.link_token``). Nothing
secret is stored: the email is rendered by the worker, which holds the same key. A link works
once (accepting or resetting changes the nonce), until its expiry, and not after a re-send
(which changes the nonce too) or a revocation.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import accounts, events, ids, passwords
from signoff.domain.accounts import INVITE_LINK, RESET_LINK, Invitation, Method
from signoff.domain.deliveries import Purpose, TargetKind
from signoff.domain.principals import Context, Role, User, UserKind
from signoff.services import journal, principals
from signoff.services.accounts import Rules, SignedIn, end_sessions_of, start_after_password_set
from signoff.services.principals import CHANGED
from signoff.store import accounts as store
from signoff.store import principals as people
from signoff.store.engine import Database


def invite(
    db: Database,
    ctx: Context,
    *,
    email: str,
    teams: Collection[str] = (),
    role: Role = Role.MEMBER,
    ttl: timedelta,
    secret_key: str,
) -> tuple[Invitation, str]:
    """Invite ``email`` into ``teams``; the invitation and its link token."""
    ctx.principal.require_admin()
    email = _normalized_email(email)
    now = datetime.now(UTC)
    nonce = ids.new_nonce()
    with db.write() as session:
        existing = people.find_user_by_email(session, email)
        if existing is not None and _has_sign_in(session, existing):
            raise errors.DuplicateName(f"{email} already has an account", user_id=existing.id)
        pending = store.open_invitations_for(session, email, now)
        if pending:
            raise errors.DuplicateName(
                f"{email} has a pending invitation; re-send or revoke it",
                invitation_id=pending[0].id,
            )
        team_names = sorted({people.get_team(session, name).name for name in teams})
        invitation = Invitation(
            id=ids.new_id("inv"),
            email=email,
            role=role.value,
            teams=team_names,
            invited_by=ctx.actor,
            created_at=now,
            sent_at=now,
            expires_at=now + ttl,
            send_count=1,
            accepted_at=None,
            user_id=None,
            revoked_at=None,
        )
        store.insert_invitation(session, invitation, nonce)
        _send(db, session, ctx, invitation, nonce, action="invitation.create")
    return invitation, ids.link_token(secret_key, INVITE_LINK, invitation.id, nonce)


def resend(
    db: Database, ctx: Context, invitation_id: str, *, ttl: timedelta, secret_key: str
) -> tuple[Invitation, str]:
    """Send a fresh link with a fresh expiry; earlier links for it stop working."""
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    nonce = ids.new_nonce()
    with db.write() as session:
        invitation, _ = store.get_invitation(session, invitation_id, for_update=True)
        if invitation.status(now) in ("accepted", "revoked"):
            raise errors.Conflict(f"the invitation was {invitation.status(now)}")
        invitation = store.update_invitation(
            session,
            invitation.id,
            nonce=nonce,
            sent_at=now,
            expires_at=now + ttl,
            send_count=invitation.send_count + 1,
        )
        _send(db, session, ctx, invitation, nonce, action="invitation.resend")
    return invitation, ids.link_token(secret_key, INVITE_LINK, invitation.id, nonce)


def revoke(db: Database, ctx: Context, invitation_id: str) -> Invitation:
    ctx.principal.require_admin()
    now = datetime.now(UTC)
    with db.write() as session:
        invitation, _ = store.get_invitation(session, invitation_id, for_update=True)
        if invitation.accepted_at is not None:
            raise errors.Conflict("the invitation was already accepted; disable the user instead")
        if invitation.revoked_at is None:
            invitation = store.update_invitation(
                session, invitation.id, revoked_at=now, nonce=ids.new_nonce()
            )
            _audit(session, ctx, now, "invitation.revoke", invitation)
        return invitation


def list_invitations(db: Database, ctx: Context) -> list[Invitation]:
    ctx.principal.require_admin()
    with db.read() as session:
        return store.list_invitations(session)


def open_invitation(db: Database, secret_key: str, token: str) -> Invitation:
    """The invitation a link stands for, while it can still be accepted."""
    with db.read() as session:
        return _usable_invitation(session, secret_key, token, datetime.now(UTC))


def accept(
    db: Database,
    ctx: Context,
    rules: Rules,
    token: str,
    *,
    name: str,
    password: str,
    user_agent: str = "",
) -> SignedIn:
    """Create the invitee's account with their name and password, add them to the
    invitation's teams, and sign them in. The link is used up."""
    now = datetime.now(UTC)
    invitation = open_invitation(db, rules.secret_key, token)
    name = " ".join(name.split())[:200] or invitation.email.split("@")[0]
    _check_password(rules, password, invitation.email, name)
    password_hash = passwords.hash_password(password)  # slow: outside the transaction
    with db.write() as session:
        invitation = _usable_invitation(session, rules.secret_key, token, now, for_update=True)
        user = _user_for(session, ctx, invitation, name, now)
        store.set_password(session, user.id, password_hash, now)
        for team_name in invitation.teams:
            team = people.find_team_by_name(session, team_name)
            if team is not None and people.add_member(session, team.id, user.id):
                db.notify(session, CHANGED)
        store.update_invitation(
            session, invitation.id, accepted_at=now, user_id=user.id, nonce=ids.new_nonce()
        )
        _audit(session, ctx, now, "invitation.accept", invitation, user_id=user.id)
        return start_after_password_set(session, ctx, rules, user, Method.INVITATION, user_agent)


def request_password_reset(
    db: Database, ctx: Context, *, email: str, ttl: timedelta, secret_key: str
) -> str | None:
    """Email a reset link when ``email`` belongs to an active person; the link token (for
    tests and the audit of who asked), or None. The caller answers the same either way."""
    now = datetime.now(UTC)
    nonce = ids.new_nonce()
    with db.write() as session:
        user = people.find_user_by_email(session, _normalized_email(email, strict=False))
        if user is None or not user.is_active or user.kind is not UserKind.PERSON:
            return None
        store.use_password_resets(session, user.id, now)  # the newest link is the only one
        reset = accounts.PasswordReset(
            id=ids.new_id("pwr"),
            user_id=user.id,
            created_at=now,
            expires_at=now + ttl,
            used_at=None,
        )
        store.insert_password_reset(session, reset, nonce)
        event = journal.record(
            session,
            ctx,
            at=now,
            action="auth.password_reset_request",
            object_type="user",
            object_id=user.id,
            event_type=events.PASSWORD_RESET_REQUESTED,
            event_data={
                "reset_id": reset.id,
                "link_nonce": nonce,
                "email": user.email,
                "name": user.name,
                "expires_at": reset.expires_at.isoformat(),
            },
        )
        assert event is not None
        journal.deliver(db, session, event, TargetKind.EMAIL, Purpose.ACCOUNT, user.email)
    return ids.link_token(secret_key, RESET_LINK, reset.id, nonce)


def open_password_reset(db: Database, secret_key: str, token: str) -> User:
    """The user a reset link is for, while it can still be used."""
    with db.read() as session:
        reset = _usable_reset(session, secret_key, token, datetime.now(UTC))
        return people.get_user(session, reset.user_id)


def reset_password(db: Database, ctx: Context, rules: Rules, token: str, *, password: str) -> User:
    """Set a new password from a reset link; every session of the user ends, a lockout is
    lifted, and the authenticator app stays required."""
    now = datetime.now(UTC)
    user = open_password_reset(db, rules.secret_key, token)
    _check_password(rules, password, user.email, user.name)
    password_hash = passwords.hash_password(password)  # slow: outside the transaction
    with db.write() as session:
        reset = _usable_reset(session, rules.secret_key, token, now, for_update=True)
        store.set_password(session, reset.user_id, password_hash, now)
        store.use_password_resets(session, reset.user_id, now)
        end_sessions_of(db, session, reset.user_id)
        journal.record(
            session,
            ctx,
            at=now,
            action="auth.password_reset",
            object_type="user",
            object_id=reset.user_id,
        )
        return user


def _usable_invitation(
    session: Session, secret_key: str, token: str, now: datetime, *, for_update: bool = False
) -> Invitation:
    invitation_id = ids.link_object_id(token)
    if invitation_id is None:
        raise errors.InvalidLink("this invitation link is not valid")
    try:
        invitation, nonce = store.get_invitation(session, invitation_id, for_update=for_update)
    except errors.InvitationNotFound as exc:
        raise errors.InvalidLink("this invitation link is not valid") from exc
    status = invitation.status(now)
    if status == "accepted":
        raise errors.InvalidLink("this invitation was already accepted; sign in instead")
    if status == "revoked":
        raise errors.InvalidLink("this invitation was withdrawn")
    if not ids.is_genuine_link(secret_key, INVITE_LINK, token, nonce):
        raise errors.InvalidLink(
            "this invitation link is not valid; a newer one may have been sent"
        )
    if status == "expired":
        raise errors.InvalidLink("this invitation expired; ask an admin to send it again")
    return invitation


def _usable_reset(
    session: Session, secret_key: str, token: str, now: datetime, *, for_update: bool = False
) -> accounts.PasswordReset:
    reset_id = ids.link_object_id(token)
    found = (
        store.find_password_reset(session, reset_id, for_update=for_update) if reset_id else None
    )
    if found is None or not ids.is_genuine_link(secret_key, RESET_LINK, token, found[1]):
        raise errors.InvalidLink("this password-reset link is not valid")
    if not found[0].is_usable(now):
        raise errors.InvalidLink("this password-reset link expired or was used; ask for a new one")
    return found[0]


def _user_for(
    session: Session, ctx: Context, invitation: Invitation, name: str, now: datetime
) -> User:
    existing = people.find_user_by_email(session, invitation.email)
    if existing is not None:
        if _has_sign_in(session, existing):
            raise errors.InvalidLink("this email already has an account; sign in instead")
        return existing
    return principals.add_user(
        session,
        ctx,
        email=invitation.email,
        name=name,
        role=Role(invitation.role),
        via="invitation",
    )


def _has_sign_in(session: Session, user: User) -> bool:
    return store.credentials_of(session, user.id).password_hash is not None


def _check_password(rules: Rules, password: str, email: str, name: str) -> None:
    context = (email, email.split("@")[0], *name.split())
    found = passwords.problems(password, min_length=rules.min_password_length, context=context)
    if found:
        raise errors.WeakPassword(found[0], field="password")


def _normalized_email(email: str, *, strict: bool = True) -> str:
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if strict and not (local and at and "." in domain and len(email) <= 320 and " " not in email):
        raise errors.InvalidInput(f"{email!r} is not an email address", field="email")
    return email


def _send(
    db: Database, session: Session, ctx: Context, invitation: Invitation, nonce: str, *, action: str
) -> None:
    event = _audit(
        session,
        ctx,
        invitation.sent_at,
        action,
        invitation,
        event_type=events.INVITATION_SENT,
        event_data={
            "invitation_id": invitation.id,
            "link_nonce": nonce,
            "email": invitation.email,
            "teams": invitation.teams,
            "role": invitation.role,
            "invited_by": ctx.principal.user.name if ctx.principal.user else "an administrator",
            "expires_at": invitation.expires_at.isoformat(),
        },
    )
    assert event is not None
    journal.deliver(db, session, event, TargetKind.EMAIL, Purpose.ACCOUNT, invitation.email)


def _audit(
    session: Session,
    ctx: Context,
    now: datetime,
    action: str,
    invitation: Invitation,
    event_type: str | None = None,
    event_data: dict[str, object] | None = None,
    **extra: object,
) -> events.Event | None:
    after = {k: v for k, v in asdict(invitation).items() if k in ("email", "role", "teams")}
    return journal.record(
        session,
        ctx,
        at=now,
        action=action,
        object_type="invitation",
        object_id=invitation.id,
        after=after | {"expires_at": invitation.expires_at.isoformat(), **extra},
        event_type=event_type,
        event_data=event_data,
    )
