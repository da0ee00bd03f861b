"""Authentication: API keys (hashed, revocable), task tokens, the admin key from settings."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from sqlalchemy import select

from signoff import errors, schemas
from signoff.domain import ids
from signoff.domain.principals import MEMBER_SCOPES, Context, Role, Scope
from signoff.services import approval_settlement, approvals, principals
from signoff.store.tables import ApiKeyRow, UserRow
from tests import factories as f


def test_an_api_key_authenticates_as_its_user_with_their_teams(db):
    alice = f.user(db, "alice@example.com")
    f.team(db, "owners", "alice@example.com")
    principal = principals.authenticate(db, f.key(db, "alice@example.com"), secret_key=f.SECRET_KEY)
    assert principal.user == alice
    assert len(principal.team_ids) == 1


def test_api_keys_are_stored_only_as_digests(db):
    f.user(db, "alice@example.com")
    secret = f.key(db, "alice@example.com")
    with db.read() as session:
        stored = session.scalars(select(ApiKeyRow.key_hash)).all()
    assert stored == [ids.digest(secret)]
    assert secret not in stored


def test_a_revoked_key_stops_working_at_once(db):
    f.user(db, "alice@example.com")
    created = principals.create_api_key(db, f.CLI, user="alice@example.com")
    principals.revoke_api_key(db, f.CLI, created.api_key.id)
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        principals.authenticate(db, created.secret, secret_key=f.SECRET_KEY)


def test_a_disabled_users_keys_stop_working(db):
    f.user(db, "alice@example.com")
    secret = f.key(db, "alice@example.com")
    with db.write() as session:
        session.execute(UserRow.__table__.update().values(is_active=False))
    with pytest.raises(errors.Unauthenticated, match="disabled"):
        principals.authenticate(db, secret, secret_key=f.SECRET_KEY)


def test_unknown_keys_and_forged_tokens_are_refused(db):
    with pytest.raises(errors.Unauthenticated):
        principals.authenticate(db, "sok_made-up", secret_key=f.SECRET_KEY)
    forged = ids.task_token("not-the-server-key", "ap_123")
    with pytest.raises(errors.Unauthenticated):
        principals.authenticate(db, forged, secret_key=f.SECRET_KEY)


def test_a_task_token_authenticates_as_its_approval(db):
    token = ids.task_token(f.SECRET_KEY, "ap_123")
    assert principals.authenticate(db, token, secret_key=f.SECRET_KEY).approval_id == "ap_123"


def test_the_admin_key_from_settings_is_ensured_once(db):
    principals.ensure_admin_key(db, "sok_from-settings")
    principals.ensure_admin_key(db, "sok_from-settings")
    principal = principals.authenticate(db, "sok_from-settings", secret_key=f.SECRET_KEY)
    assert principal.user.role is Role.ADMIN
    assert len(principals.list_api_keys(db, f.CLI)) == 1


def test_emails_are_unique_ignoring_case(db):
    f.user(db, "Alice@Example.com")
    with pytest.raises(errors.DuplicateName):
        f.user(db, "alice@example.COM")


def test_members_cannot_create_users_or_keys_for_others(db):
    member = f.user(db, "member@example.com")
    f.user(db, "other@example.com")
    ctx = f.context(db, member)
    with pytest.raises(errors.PermissionDenied):
        principals.create_user(db, ctx, email="new@example.com")
    with pytest.raises(errors.PermissionDenied):
        principals.create_api_key(db, ctx, user="other@example.com")
    assert principals.create_api_key(db, ctx).api_key.user_id == member.id


def test_ids_are_typed_base32_and_do_not_repeat():
    made = {ids.new_id("ap") for _ in range(10_000)}
    assert len(made) == 10_000
    assert all(len(i) == 15 and set(i[3:]) <= set("0123456789abcdefghjkmnpqrstvwxyz") for i in made)
    # every character position takes every value: no bit of the random number is wasted
    for position in range(3, 15):
        assert len({i[position] for i in made}) == 32
    sortable = [ids.new_sortable_id("evt") for _ in range(1000)]  # many share a millisecond
    assert sortable == sorted(sortable)
    assert len(set(sortable)) == 1000
    assert all(len(i) == 30 for i in sortable)


def _as(db, secret: str) -> Context:
    return Context(principal=principals.authenticate(db, secret, secret_key=f.SECRET_KEY))


def test_a_key_does_only_what_its_scopes_allow(db):
    f.user(db, "pipeline@example.com")
    f.user(db, "alice@example.com")
    pipeline_key = principals.create_api_key(
        db, f.CLI, user="pipeline@example.com", scopes=["approvals:write", "approvals:read"]
    ).secret
    reader_key = principals.create_api_key(
        db, f.CLI, user="alice@example.com", scopes=["approvals:read"]
    ).secret
    pipeline = _as(db, pipeline_key)
    created = approvals.create(db, pipeline, f.approval_spec(), secret_key=f.SECRET_KEY)
    assert approvals.get(db, pipeline, created.approval.id).is_pending
    reader = _as(db, reader_key)
    assert approvals.get(db, reader, created.approval.id).is_pending  # alice is an approver
    decision = schemas.DecisionCreate(verdict="approve")
    with pytest.raises(errors.InsufficientScope, match="approvals:decide"):
        approval_settlement.decide(db, reader, created.approval.id, decision)
    with pytest.raises(errors.InsufficientScope, match="approvals:write"):
        approvals.create(db, reader, f.approval_spec(), secret_key=f.SECRET_KEY)
    with pytest.raises(errors.InsufficientScope, match="approvals:write"):
        approval_settlement.cancel(db, reader, created.approval.id)


def test_default_scopes_follow_the_role_and_no_key_gets_more(db):
    f.user(db, "alice@example.com")
    f.user(db, "root@example.com", role=Role.ADMIN)
    member = principals.create_api_key(db, f.CLI, user="alice@example.com").api_key
    admin = principals.create_api_key(db, f.CLI, user="root@example.com").api_key
    assert member.scopes == MEMBER_SCOPES
    assert admin.scopes == MEMBER_SCOPES | {Scope.ADMIN}
    with pytest.raises(errors.InvalidInput, match="admin"):
        principals.create_api_key(db, f.CLI, user="alice@example.com", scopes=["admin"])
    with pytest.raises(errors.InvalidInput, match="unknown scope"):
        principals.create_api_key(db, f.CLI, user="alice@example.com", scopes=["everything"])
    # a read-only key cannot mint its owner a stronger one
    reader = _as(
        db,
        principals.create_api_key(
            db, f.CLI, user="alice@example.com", scopes=["approvals:read"]
        ).secret,
    )
    with pytest.raises(errors.InvalidInput, match="approvals:write"):
        principals.create_api_key(db, reader, scopes=["approvals:write"])
    assert principals.create_api_key(db, reader).api_key.scopes == {Scope.APPROVALS_READ}


def test_an_admin_key_without_the_admin_scope_is_no_admin_key(db):
    f.user(db, "root@example.com", role=Role.ADMIN)
    narrow = _as(
        db,
        principals.create_api_key(
            db, f.CLI, user="root@example.com", scopes=["approvals:read"]
        ).secret,
    )
    with pytest.raises(errors.InsufficientScope, match="'admin'"):
        principals.list_users(db, narrow)
    f.user(db, "alice@example.com")
    member = _as(db, f.key(db, "alice@example.com"))
    with pytest.raises(errors.PermissionDenied, match="needs an admin"):
        principals.list_users(db, member)


def test_an_expired_key_stops_working_and_is_not_remembered_past_its_expiry(db):
    f.user(db, "alice@example.com")
    created = principals.create_api_key(db, f.CLI, user="alice@example.com", expires_in="1h")
    assert created.api_key.expires_at is not None
    auth = principals.Authenticator(db, secret_key=f.SECRET_KEY, ttl=60)
    soon = datetime.now(UTC) + timedelta(seconds=0.5)
    with db.write() as session:
        session.execute(ApiKeyRow.__table__.update().values(expires_at=soon))
    assert auth.authenticate(created.secret).user is not None
    time.sleep(0.6)
    assert auth.remembered(created.secret) is None
    with pytest.raises(errors.Unauthenticated, match="expired"):
        auth.authenticate(created.secret)


def test_a_narrow_key_can_neither_outlive_nor_switch_off_stronger_keys(db):
    f.user(db, "alice@example.com")
    full = principals.create_api_key(db, f.CLI, user="alice@example.com")
    short = principals.create_api_key(
        db, f.CLI, user="alice@example.com", scopes=["approvals:read"], expires_in="1h"
    )
    short_ctx = _as(db, short.secret)
    made = principals.create_api_key(db, short_ctx, expires_in="30d").api_key
    never = principals.create_api_key(db, short_ctx).api_key
    assert made.expires_at == never.expires_at == short.api_key.expires_at
    with pytest.raises(errors.InsufficientScope):
        principals.revoke_api_key(db, short_ctx, full.api_key.id)
    assert principals.revoke_api_key(db, short_ctx, made.id).is_revoked  # as narrow as itself
    assert principals.revoke_api_key(db, _as(db, full.secret), short.api_key.id).is_revoked


def test_the_wire_names_every_scope_the_server_knows():
    # schemas.py is the SDK's and cannot import the domain; this keeps the two lists one.
    assert set(get_args(schemas.ScopeName)) == {scope.value for scope in Scope}
