"""What OpenID Connect sign-in keeps: the link from an identity provider's subject to a user
(``credentials.oidc_subject``), and the team memberships that came from the provider's groups
(``team_members.source = 'oidc'``), which the next sign-in may take away again. Memberships
an admin made (``source = 'local'``) are never touched here.
"""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from signoff.domain import principals
from signoff.store import principals as principals_store
from signoff.store.tables import CredentialRow, TeamMemberRow, TeamRow

SOURCE = "oidc"


def find_user_by_subject(session: Session, subject_key: str) -> principals.User | None:
    user_id = session.scalars(
        select(CredentialRow.user_id).where(CredentialRow.oidc_subject == subject_key)
    ).one_or_none()
    return principals_store.find_user(session, user_id) if user_id else None


def find_subject_of(session: Session, user_id: str) -> str | None:
    return session.scalars(
        select(CredentialRow.oidc_subject).where(CredentialRow.user_id == user_id)
    ).one_or_none()


def link_subject(session: Session, user_id: str, subject_key: str) -> None:
    """Record that ``subject_key`` signs in as this user (one subject per user)."""
    if session.get(CredentialRow, user_id) is None:
        session.add(CredentialRow(user_id=user_id, oidc_subject=subject_key))
    else:
        session.execute(
            update(CredentialRow)
            .where(CredentialRow.user_id == user_id)
            .values(oidc_subject=subject_key)
        )
    session.flush()


def unlink_subject(session: Session, user_id: str) -> None:
    session.execute(
        update(CredentialRow).where(CredentialRow.user_id == user_id).values(oidc_subject=None)
    )


def synced_teams(session: Session, user_id: str) -> dict[str, str]:
    """Teams the user is in because of the provider's groups: name -> team id."""
    rows = session.execute(
        select(TeamRow.name, TeamRow.id)
        .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
        .where(TeamMemberRow.user_id == user_id, TeamMemberRow.source == SOURCE)
    )
    return {row.name: row.id for row in rows}


def add_synced_member(session: Session, team_id: str, user_id: str) -> bool:
    """Add a member from the provider's groups; False when they already were a member, from
    whatever source (a local membership stays local)."""
    if session.get(TeamMemberRow, (team_id, user_id)) is not None:
        return False
    session.add(TeamMemberRow(team_id=team_id, user_id=user_id, source=SOURCE))
    session.flush()
    return True


def remove_synced_member(session: Session, team_id: str, user_id: str) -> bool:
    result = session.execute(
        delete(TeamMemberRow).where(
            TeamMemberRow.team_id == team_id,
            TeamMemberRow.user_id == user_id,
            TeamMemberRow.source == SOURCE,
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
