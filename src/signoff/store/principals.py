"""Users, teams and API keys."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, delete, func, or_, select, update
from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import principals
from signoff.store.tables import ApiKeyRow, TeamMemberRow, TeamRow, UserRow, table

# Built once: every authentication and every create runs these (see store/approvals.py).
_users, _keys, _members = table(UserRow), table(ApiKeyRow), table(TeamMemberRow)
_USER_BY_EMAIL = select(_users).where(_users.c.email == bindparam("email"))
_USER_BY_ID = select(_users).where(_users.c.id == bindparam("id"))
_TEAM_IDS_OF = select(_members.c.team_id).where(_members.c.user_id == bindparam("user_id"))
_KEY_AND_USER_BY_HASH = (
    select(_keys, _users)
    .join(_users, _users.c.id == _keys.c.user_id)
    .where(_keys.c.key_hash == bindparam("key_hash"))
)
_KEY_COLUMNS = len(_keys.c)
_IS_ACTIVE_PERSON = (
    _users.c.is_active.is_(True),
    _users.c.kind == principals.UserKind.PERSON.value,
)
_PEOPLE_BY_ID = select(_users.c.id, _users.c.email).where(
    _users.c.id.in_(bindparam("user_ids", expanding=True)), *_IS_ACTIVE_PERSON
)
_PEOPLE_AMONG = select(_users.c.id, _users.c.email).where(
    or_(
        _users.c.id.in_(bindparam("user_ids", expanding=True)),
        _users.c.id.in_(
            select(_members.c.user_id).where(
                _members.c.team_id.in_(bindparam("team_ids", expanding=True))
            )
        ),
    ),
    *_IS_ACTIVE_PERSON,
)


def user_of_row(row: Any) -> principals.User:
    """A user from a row of the users table (also when joined by another store module)."""
    return principals.User(
        id=row.id,
        email=row.email,
        name=row.name,
        role=principals.Role(row.role),
        kind=principals.UserKind(row.kind),
        is_active=row.is_active,
        created_at=row.created_at,
    )


def _key(row: Any) -> principals.ApiKey:
    return principals.ApiKey(
        id=row.id,
        user_id=row.user_id,
        name=row.name,
        prefix=row.prefix,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        scopes=frozenset(principals.Scope(scope) for scope in row.scopes),
        expires_at=row.expires_at,
    )


def insert_user(session: Session, user: principals.User) -> None:
    if find_user_by_email(session, user.email) is not None:
        raise errors.DuplicateName(f"a user with email {user.email} exists")
    session.add(
        UserRow(
            id=user.id,
            email=user.email,
            name=user.name,
            role=user.role.value,
            kind=user.kind.value,
            is_active=user.is_active,
            created_at=user.created_at,
        )
    )
    session.flush()


def find_user_by_email(session: Session, email: str) -> principals.User | None:
    row = session.execute(_USER_BY_EMAIL, {"email": email.lower()}).one_or_none()
    return user_of_row(row) if row else None


def find_user(session: Session, user_id: str) -> principals.User | None:
    row = session.execute(_USER_BY_ID, {"id": user_id}).one_or_none()
    return user_of_row(row) if row else None


def get_user(session: Session, id_or_email: str) -> principals.User:
    if "@" in id_or_email:
        user = find_user_by_email(session, id_or_email)
    else:
        user = find_user(session, id_or_email)
    if user is None:
        raise errors.UserNotFound(f"no user {id_or_email!r}")
    return user


def list_users(session: Session) -> list[principals.User]:
    return [user_of_row(row) for row in session.scalars(select(UserRow).order_by(UserRow.email))]


def update_user(session: Session, user_id: str, **values: Any) -> None:
    session.execute(update(UserRow).where(UserRow.id == user_id).values(**values))


def count_active_admins(session: Session) -> int:
    query = select(func.count()).where(UserRow.role == "admin", UserRow.is_active.is_(True))
    return session.scalar(query) or 0


def insert_team(session: Session, team: principals.Team) -> None:
    if find_team_by_name(session, team.name) is not None:
        raise errors.DuplicateName(f"a team named {team.name} exists")
    session.add(TeamRow(id=team.id, name=team.name, created_at=team.created_at))
    session.flush()


def find_team_by_name(session: Session, name: str) -> principals.Team | None:
    row = session.scalars(select(TeamRow).where(TeamRow.name == name)).one_or_none()
    return _team(session, row) if row else None


def get_team(session: Session, id_or_name: str) -> principals.Team:
    return _team(session, _team_row(session, id_or_name))


def get_team_id_and_name(session: Session, id_or_name: str) -> tuple[str, str]:
    """The id and name of a team, without reading its members (``get_team`` does)."""
    row = _team_row(session, id_or_name)
    return row.id, row.name


def _team_row(session: Session, id_or_name: str) -> TeamRow:
    row = (
        session.get(TeamRow, id_or_name)
        or session.scalars(select(TeamRow).where(TeamRow.name == id_or_name)).one_or_none()
    )
    if row is None:
        raise errors.TeamNotFound(f"no team {id_or_name!r}")
    return row


def list_teams(session: Session) -> list[principals.Team]:
    return [_team(session, row) for row in session.scalars(select(TeamRow).order_by(TeamRow.name))]


def _team(session: Session, row: TeamRow) -> principals.Team:
    members = session.scalars(select(TeamMemberRow.user_id).where(TeamMemberRow.team_id == row.id))
    return principals.Team(
        id=row.id, name=row.name, created_at=row.created_at, member_ids=list(members)
    )


def add_member(session: Session, team_id: str, user_id: str) -> bool:
    """Add a member; False when they already were one."""
    if session.get(TeamMemberRow, (team_id, user_id)) is not None:
        return False
    session.add(TeamMemberRow(team_id=team_id, user_id=user_id))
    session.flush()
    return True


def delete_team(session: Session, team_id: str) -> None:
    session.execute(delete(TeamRow).where(TeamRow.id == team_id))


def remove_member(session: Session, team_id: str, user_id: str) -> bool:
    result = session.execute(
        delete(TeamMemberRow).where(
            TeamMemberRow.team_id == team_id, TeamMemberRow.user_id == user_id
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def team_ids_of(session: Session, user_id: str) -> frozenset[str]:
    return frozenset(session.scalars(_TEAM_IDS_OF, {"user_id": user_id}))


def active_people_among(
    session: Session, user_ids: Collection[str], team_ids: Collection[str]
) -> dict[str, str]:
    """The id and email of each active person (never a service account) among ``user_ids``
    and the members of ``team_ids`` now, each once, in email order: one query whatever the
    number of teams."""
    if team_ids:
        query, params = _PEOPLE_AMONG, {"user_ids": list(user_ids), "team_ids": list(team_ids)}
    else:  # no team: a plainer statement than one with an empty IN (...)
        query, params = _PEOPLE_BY_ID, {"user_ids": list(user_ids)}
    found = sorted(session.execute(query, params), key=lambda row: row.email)
    return {row.id: row.email for row in found}


def insert_api_key(session: Session, key: principals.ApiKey, key_hash: str) -> None:
    session.add(
        ApiKeyRow(
            id=key.id,
            user_id=key.user_id,
            name=key.name,
            prefix=key.prefix,
            key_hash=key_hash,
            created_at=key.created_at,
            last_used_at=None,
            revoked_at=None,
            scopes=sorted(key.scopes),
            expires_at=key.expires_at,
        )
    )
    session.flush()


def find_api_key_by_hash(
    session: Session, key_hash: str
) -> tuple[principals.ApiKey, principals.User] | None:
    row = session.execute(_KEY_AND_USER_BY_HASH, {"key_hash": key_hash}).one_or_none()
    if row is None:
        return None
    fields = tuple(row)
    key_fields, user_fields = fields[:_KEY_COLUMNS], fields[_KEY_COLUMNS:]
    key = _key(SimpleNamespace(**dict(zip(_keys.c.keys(), key_fields, strict=True))))
    user = user_of_row(SimpleNamespace(**dict(zip(_users.c.keys(), user_fields, strict=True))))
    return key, user


def get_api_key(session: Session, key_id: str) -> principals.ApiKey:
    row = session.get(ApiKeyRow, key_id)
    if row is None:
        raise errors.ApiKeyNotFound(f"no API key {key_id!r}")
    return _key(row)


def list_api_keys(session: Session, user_id: str | None = None) -> list[principals.ApiKey]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if user_id is not None:
        query = query.where(ApiKeyRow.user_id == user_id)
    return [_key(row) for row in session.scalars(query)]


def revoke_api_key(session: Session, key_id: str, at: datetime) -> None:
    session.execute(
        update(ApiKeyRow)
        .where(ApiKeyRow.id == key_id, ApiKeyRow.revoked_at.is_(None))
        .values(revoked_at=at)
    )


def touch_api_key(session: Session, key_id: str, at: datetime) -> None:
    session.execute(update(ApiKeyRow).where(ApiKeyRow.id == key_id).values(last_used_at=at))
