"""People and credentials: users, teams, API keys, and turning a bearer credential into a
principal."""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import ids, policies
from signoff.domain.principals import (
    ApiKey,
    Context,
    Principal,
    Role,
    Scope,
    Team,
    User,
    UserKind,
    scopes_of_role,
    system_context,
)
from signoff.services import journal
from signoff.store import accounts as accounts_store
from signoff.store import approvals as approvals_store
from signoff.store import principals as store
from signoff.store import reminders as reminders_store
from signoff.store.engine import Database

ADMIN_EMAIL = "admin@signoff.localhost"
LAST_USED_RESOLUTION = timedelta(minutes=1)  # coarser than this would cost a write per request
CHANGED = "principals"  # notification topic: a user, team membership or API key changed
MAX_REMEMBERED_KEYS = 10_000  # an Authenticator forgets everything when it knows this many


@dataclass(frozen=True)
class CreatedKey:
    api_key: ApiKey
    secret: str


def authenticate(db: Database, credential: str, *, secret_key: str) -> Principal:
    """The principal a bearer credential stands for: an API key or a task token."""
    if credential.startswith("sot_"):
        return _task_token_principal(credential, secret_key)
    with db.read() as session:
        found = store.find_api_key_by_hash(session, ids.digest(credential))
        if found is None:
            raise errors.Unauthenticated("the API key is not valid")
        key, user = found
        if key.is_revoked:
            raise errors.Unauthenticated("the API key was revoked")
        if key.is_expired(datetime.now(UTC)):
            raise errors.Unauthenticated("the API key expired")
        if not user.is_active:
            raise errors.Unauthenticated("the API key's user is disabled")
        team_ids = store.team_ids_of(session, user.id)
    now = datetime.now(UTC)
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        with db.write() as session:
            store.touch_api_key(session, key.id, now)
    return Principal(
        user=user,
        team_ids=team_ids,
        api_key_id=key.id,
        scopes=key.scopes,
        expires_at=key.expires_at,
    )


class Authenticator:
    """``authenticate`` with a memory: what an API key stands for is kept for ``ttl`` seconds,
    so a pipeline's requests do not each read the key, its user and their teams.

    Every change to what an existing key stands for (its revocation, its user's teams)
    notifies ``CHANGED`` on commit (through PostgreSQL's NOTIFY to every process), which
    empties the memory at once; ``ttl`` only bounds how long a change that could not notify
    this process (an admin command run on an SQLite file by another process) takes to apply.
    Refusals are never kept. Thread-safe.
    """

    def __init__(self, db: Database, *, secret_key: str, ttl: float) -> None:
        self.db = db
        self.secret_key = secret_key
        self.ttl = ttl
        self._known: dict[str, tuple[float, Principal]] = {}  # key digest -> (expiry, principal)
        self._generation = 0
        self._lock = threading.Lock()

    def remembered(self, credential: str) -> Principal | None:
        """The principal without touching the database, when that is possible."""
        if credential.startswith("sot_"):
            return _task_token_principal(credential, self.secret_key)
        found = self._known.get(ids.digest(credential))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def authenticate(self, credential: str) -> Principal:
        principal = self.remembered(credential)
        if principal is not None:
            return principal
        generation = self._generation
        principal = authenticate(self.db, credential, secret_key=self.secret_key)
        keep = self.ttl
        if principal.expires_at is not None:  # never past the key's own expiry
            keep = min(keep, (principal.expires_at - datetime.now(UTC)).total_seconds())
        with self._lock:
            if generation == self._generation and keep > 0:
                if len(self._known) >= MAX_REMEMBERED_KEYS:
                    self._known.clear()
                self._known[ids.digest(credential)] = (time.monotonic() + keep, principal)
        return principal

    def on_notification(self, topic: str, _key: str) -> None:
        if topic in (CHANGED, "*"):
            with self._lock:
                self._generation += 1
                self._known.clear()


def create_user(
    db: Database,
    ctx: Context,
    *,
    email: str,
    name: str = "",
    role: Role = Role.MEMBER,
    kind: UserKind = UserKind.PERSON,
) -> User:
    _require_admin(ctx)
    with db.write() as session:
        return add_user(session, ctx, email=email, name=name, role=role, kind=kind)


def add_user(
    session: Session,
    ctx: Context,
    *,
    email: str,
    name: str = "",
    role: Role = Role.MEMBER,
    kind: UserKind = UserKind.PERSON,
    via: str | None = None,
) -> User:
    """Insert a user, with its audit entry, in the caller's transaction. ``via`` says what
    made them when it was not an admin (an invitation, an identity provider)."""
    email = email.strip().lower()
    user = User(
        id=ids.new_id("usr"),
        email=email,
        name=" ".join(name.split())[:200] or email.split("@")[0],
        role=role,
        kind=kind,
        is_active=True,
        created_at=datetime.now(UTC),
    )
    store.insert_user(session, user)
    after = {"email": user.email, "role": role.value, "kind": kind.value}
    journal.record(
        session,
        ctx,
        at=user.created_at,
        action="user.create",
        object_type="user",
        object_id=user.id,
        after=after | ({"via": via} if via else {}),
    )
    return user


def list_users(db: Database, ctx: Context) -> list[User]:
    _require_admin(ctx)
    with db.read() as session:
        return store.list_users(session)


def update_user(
    db: Database,
    ctx: Context,
    user: str,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    name: str | None = None,
) -> User:
    """Change a user's role, name, or whether they may sign in. Disabling ends their sessions
    and stops their API keys at once, on every server."""
    _require_admin(ctx)
    now = datetime.now(UTC)
    with db.write() as session:
        found = store.get_user(session, user.lower() if "@" in user else user)
        changes: dict[str, object] = {}
        if role is not None and role is not found.role:
            changes["role"] = role.value
        if is_active is not None and is_active != found.is_active:
            changes["is_active"] = is_active
        if name is not None and name.strip() and name.strip() != found.name:
            changes["name"] = " ".join(name.split())[:200]
        if not changes:
            return found
        if (
            found.is_admin
            and (changes.get("role") == "member" or changes.get("is_active") is False)
            and store.count_active_admins(session) <= 1
        ):
            raise errors.Conflict("this is the last active admin; make another admin first")
        store.update_user(session, found.id, **changes)
        if "is_active" in changes or "role" in changes:
            accounts_store.delete_sessions_of(
                session, found.id
            )  # a new role or a disabling: sign in again
            db.notify(session, CHANGED)
        journal.record(
            session,
            ctx,
            at=now,
            action="user.update",
            object_type="user",
            object_id=found.id,
            before={key: _user_field(found, key) for key in changes},
            after=changes,
        )
        return store.get_user(session, found.id)


def _user_field(user: User, key: str) -> object:
    value = getattr(user, key)
    return value.value if isinstance(value, Role) else value


def create_team(db: Database, ctx: Context, *, name: str) -> Team:
    _require_admin(ctx)
    now = datetime.now(UTC)
    team = Team(id=ids.new_id("team"), name=name, created_at=now)
    with db.write() as session:
        store.insert_team(session, team)
        journal.record(
            session,
            ctx,
            at=now,
            action="team.create",
            object_type="team",
            object_id=team.id,
            after={"name": name},
        )
    return team


def list_teams(db: Database, ctx: Context) -> list[Team]:
    if ctx.principal.user is None and not ctx.principal.is_admin:
        raise errors.PermissionDenied("listing teams needs a user's API key")
    with db.read() as session:
        return store.list_teams(session)


def add_member(db: Database, ctx: Context, *, team: str, user: str) -> Team:
    _require_admin(ctx)
    now = datetime.now(UTC)
    with db.write() as session:
        found_team = store.get_team(session, team)
        found_user = store.get_user(session, user.lower() if "@" in user else user)
        if store.add_member(session, found_team.id, found_user.id):
            db.notify(session, CHANGED)
            journal.record(
                session,
                ctx,
                at=now,
                action="team.add_member",
                object_type="team",
                object_id=found_team.id,
                after={"user_id": found_user.id, "email": found_user.email},
            )
        return store.get_team(session, found_team.id)


def remove_member(db: Database, ctx: Context, *, team: str, user: str) -> Team:
    _require_admin(ctx)
    now = datetime.now(UTC)
    with db.write() as session:
        found_team = store.get_team(session, team)
        found_user = store.get_user(session, user.lower() if "@" in user else user)
        if store.remove_member(session, found_team.id, found_user.id):
            db.notify(session, CHANGED)
            journal.record(
                session,
                ctx,
                at=now,
                action="team.remove_member",
                object_type="team",
                object_id=found_team.id,
                before={"user_id": found_user.id, "email": found_user.email},
            )
        return store.get_team(session, found_team.id)


def delete_team(db: Database, ctx: Context, team: str) -> None:
    """Delete a team no pending approval waits on (they would lose their approvers)."""
    _require_admin(ctx)
    now = datetime.now(UTC)
    with db.write() as session:
        found = store.get_team(session, team)
        waiting = approvals_store.pending_approval_ids_of_team(session, found.id, limit=3)
        waiting = waiting or reminders_store.escalating_to_team(session, found.id, limit=3)
        if waiting:
            raise errors.Conflict(
                f"pending approvals wait on team {found.name} ({', '.join(waiting)}); "
                "let them settle first",
            )
        store.delete_team(session, found.id)
        db.notify(session, CHANGED)
        journal.record(
            session,
            ctx,
            at=now,
            action="team.delete",
            object_type="team",
            object_id=found.id,
            before={"name": found.name, "member_ids": found.member_ids},
        )


def create_api_key(
    db: Database,
    ctx: Context,
    *,
    user: str | None = None,
    name: str = "",
    scopes: Collection[str] | None = None,
    expires_in: int | str | None = None,
) -> CreatedKey:
    """A new key for ``user`` (admins) or for the caller; the secret is returned only here.

    ``scopes`` default to everything the owner's role allows. A key can never get more than
    its owner's role allows, nor more than the key that creates it carries, nor a later expiry
    than that key's."""
    secret = ids.new_api_key()
    with db.write() as session:
        owner = _key_owner(session, ctx, user)
        granted = _grantable_scopes(ctx, owner, scopes)
        expires_at = ctx.principal.expires_at  # a key never outlives the key that made it
        if expires_in is not None:
            seconds = policies.parse_duration(expires_in, name="expires_in")
            wanted = datetime.now(UTC) + timedelta(seconds=seconds)
            expires_at = wanted if expires_at is None else min(wanted, expires_at)
        key = _insert_key(session, ctx, owner, name, secret, granted, expires_at)
        return CreatedKey(key, secret)


def list_api_keys(db: Database, ctx: Context) -> list[ApiKey]:
    caller = ctx.principal.user
    if not ctx.principal.is_admin and caller is None:
        raise errors.PermissionDenied("listing keys needs a user's API key")
    with db.read() as session:
        return store.list_api_keys(
            session, None if ctx.principal.is_admin or caller is None else caller.id
        )


def revoke_api_key(db: Database, ctx: Context, key_id: str) -> ApiKey:
    now = datetime.now(UTC)
    with db.write() as session:
        key = store.get_api_key(session, key_id)
        caller = ctx.principal.user
        if not ctx.principal.is_admin and (caller is None or caller.id != key.user_id):
            raise errors.ApiKeyNotFound(f"no API key {key_id!r}")
        mine = ctx.principal.scopes
        if mine is not None and key.id != ctx.principal.api_key_id and not key.scopes <= mine:
            # a leaked narrow key must not be able to switch off its user's stronger keys
            raise errors.InsufficientScope(
                "only a key with all of this key's scopes may revoke it",
                scope=",".join(sorted(key.scopes - mine)),
            )
        store.revoke_api_key(session, key.id, now)
        db.notify(session, CHANGED)
        journal.record(
            session,
            ctx,
            at=now,
            action="api_key.revoke",
            object_type="api_key",
            object_id=key.id,
            after={"user_id": key.user_id},
        )
        return store.get_api_key(session, key.id)


def ensure_admin_key(db: Database, secret: str) -> None:
    """Make sure an admin API key with this exact value exists (``SIGNOFF_ADMIN_API_KEY``)."""
    ctx = system_context("settings")
    with db.write() as session:
        if store.find_api_key_by_hash(session, ids.digest(secret)) is not None:
            return
        admin = store.find_user_by_email(session, ADMIN_EMAIL) or add_user(
            session, ctx, email=ADMIN_EMAIL, name="admin", role=Role.ADMIN, kind=UserKind.SERVICE
        )
        _insert_key(
            session, ctx, admin, "SIGNOFF_ADMIN_API_KEY", secret, scopes_of_role(Role.ADMIN), None
        )


def _key_owner(session: Session, ctx: Context, user: str | None) -> User:
    caller = ctx.principal.user
    if user is None:
        if caller is None:
            raise errors.InvalidInput("say which user the key is for", field="user")
        return caller
    owner = store.get_user(session, user.lower() if "@" in user else user)
    if not ctx.principal.is_admin and (caller is None or caller.id != owner.id):
        raise errors.PermissionDenied("only admins create keys for other users")
    return owner


def _grantable_scopes(
    ctx: Context, owner: User, wanted: Collection[str] | None
) -> frozenset[Scope]:
    allowed = scopes_of_role(owner.role)
    if ctx.principal.scopes is not None:
        allowed &= ctx.principal.scopes
    try:
        granted = allowed if wanted is None else frozenset(Scope(name) for name in wanted)
    except ValueError as exc:
        raise errors.InvalidInput(f"unknown scope: {exc}", field="scopes") from exc
    beyond = granted - allowed
    if beyond:
        names = ", ".join(sorted(scope.value for scope in beyond))
        raise errors.InvalidInput(
            f"this key may not be given {names}: more than its user's role or the "
            "creating key allows",
            field="scopes",
        )
    if not granted:
        raise errors.InvalidInput("a key needs at least one scope", field="scopes")
    return granted


def _insert_key(
    session: Session,
    ctx: Context,
    owner: User,
    name: str,
    secret: str,
    scopes: frozenset[Scope],
    expires_at: datetime | None,
) -> ApiKey:
    now = datetime.now(UTC)
    key = ApiKey(
        id=ids.new_id("key"),
        user_id=owner.id,
        name=name,
        prefix=secret[:8],
        created_at=now,
        last_used_at=None,
        revoked_at=None,
        scopes=scopes,
        expires_at=expires_at,
    )
    store.insert_api_key(session, key, ids.digest(secret))
    journal.record(
        session,
        ctx,
        at=now,
        action="api_key.create",
        object_type="api_key",
        object_id=key.id,
        after={
            "user_id": owner.id,
            "name": name,
            "scopes": sorted(scopes),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return key


def _task_token_principal(token: str, secret_key: str) -> Principal:
    approval_id = ids.approval_id_of_token(secret_key, token)
    if approval_id is None:
        raise errors.Unauthenticated("the task token is not valid")
    return Principal(approval_id=approval_id)


def _require_admin(ctx: Context) -> None:
    ctx.principal.require_admin()
