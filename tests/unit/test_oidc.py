"""OpenID Connect sign-in without the network: the sealed flow, the rules on claims, and what
``sign_in_with_oidc`` does to users, teams and the audit log."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from signoff import errors, schemas
from signoff.domain import oidc as domain
from signoff.domain.principals import (
    TEAM_NAME_MAX_LENGTH,
    TEAM_NAME_PATTERN,
    Context,
    Principal,
    Role,
)
from signoff.services import audit, oidc, principals
from signoff.settings import Settings
from signoff.store.audit import Filters
from signoff.store.tables import TeamMemberRow, TeamRow, UserRow
from tests import factories as f

OIDC = Context(principal=Principal(system="oidc"), request_id="req-oidc", client_addr="::1")
ISSUER = "https://id.example.com/realms/acme"


def settings(**overrides: Any) -> Settings:
    return Settings(**({"oidc_issuer": ISSUER, "oidc_client_id": "signoff"} | overrides))


def identity(*groups: str, **overrides: Any) -> domain.OidcIdentity:
    fields: dict[str, Any] = {
        "issuer": ISSUER,
        "subject": "sub-alice",
        "email": "alice@example.com",
        "name": "Alice Example",
        "groups": groups,
        "email_verified": True,
    }
    return domain.OidcIdentity(**(fields | overrides))


def memberships(db, email: str) -> dict[str, str]:
    """team name -> source of each membership of the user."""
    with db.read() as session:
        rows = session.execute(
            select(TeamRow.name, TeamMemberRow.source)
            .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
            .join(UserRow, UserRow.id == TeamMemberRow.user_id)
            .where(UserRow.email == email)
        )
        return {row.name: row.source for row in rows}


def audited(db, action: str) -> list[dict[str, Any]]:
    """What sign-ins recorded under ``action``, oldest first."""
    entries, _ = audit.list_entries(db, f.CLI, Filters(action=action, actor="system:oidc"))
    return [entry.after or {} for entry in reversed(entries)]


# Settings


def test_oidc_is_off_until_an_issuer_is_set(monkeypatch):
    monkeypatch.setenv("SIGNOFF_OIDC_ISSUER", "")
    assert not Settings().oidc_enabled
    monkeypatch.setenv("SIGNOFF_OIDC_ISSUER", ISSUER)
    monkeypatch.setenv("SIGNOFF_OIDC_CLIENT_ID", "signoff")
    monkeypatch.setenv("SIGNOFF_OIDC_ALLOWED_GROUPS", "owners, reviewers,")
    monkeypatch.setenv("SIGNOFF_PUBLIC_URL", "https://signoff.example.com/")
    enabled = Settings()
    assert enabled.oidc_enabled
    assert enabled.oidc_allowed_groups == ["owners", "reviewers"]
    assert enabled.oidc_redirect_uri == "https://signoff.example.com/auth/oidc/callback"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"oidc_issuer": "http://id.example.com"}, "must be an https:// URL"),
        ({"oidc_client_id": ""}, "SIGNOFF_OIDC_CLIENT_ID is required"),
        ({"oidc_scopes": "email profile"}, "must include 'openid'"),
        ({"oidc_allowed_groups": "owners", "oidc_groups_claim": ""}, "needs SIGNOFF_OIDC_GROUPS"),
    ],
)
def test_an_incomplete_oidc_setup_stops_the_start(fields, message):
    with pytest.raises(ValueError, match=message):
        settings(**fields)


def test_plain_http_is_allowed_for_a_provider_on_this_machine():
    assert settings(oidc_issuer="http://127.0.0.1:8080/realms/dev").oidc_enabled


# The sealed flow


def test_a_sealed_flow_unseals_to_the_same_flow():
    flow = domain.OidcFlow.start("/approvals/ap_1?tab=context")
    back = domain.OidcFlow.unseal(f.SECRET_KEY, flow.seal(f.SECRET_KEY))
    assert back == dataclasses.replace(flow, created_at=flow.created_at.replace(microsecond=0))
    assert back.next_url == "/approvals/ap_1?tab=context"


def test_each_flow_has_its_own_state_nonce_and_verifier():
    first, second = domain.OidcFlow.start("/"), domain.OidcFlow.start("/")
    assert len({first.state, first.nonce, second.state, second.nonce}) == 4
    assert first.code_verifier != second.code_verifier
    assert 43 <= len(first.code_verifier) <= 128


@pytest.mark.parametrize(
    "tamper",
    [
        lambda sealed: sealed.replace(sealed[3], "A" if sealed[3] != "A" else "B", 1),
        lambda sealed: sealed[:-2],
        lambda sealed: sealed.split(".")[0],
        lambda sealed: domain.OidcFlow.start("/elsewhere").seal("another-server-key"),
        lambda _: "",
        lambda _: "not.a-flow",
        lambda _: "é.ü",
    ],
)
def test_a_tampered_or_foreign_flow_is_refused(tamper):
    sealed = domain.OidcFlow.start("/").seal(f.SECRET_KEY)
    with pytest.raises(errors.OidcFailed, match="could not be verified; please start again"):
        domain.OidcFlow.unseal(f.SECRET_KEY, tamper(sealed))


def test_a_flow_older_than_ten_minutes_is_refused():
    started = datetime.now(UTC) - timedelta(minutes=10, seconds=5)
    flow = dataclasses.replace(domain.OidcFlow.start("/"), created_at=started)
    with pytest.raises(errors.OidcFailed, match="took too long"):
        domain.OidcFlow.unseal(f.SECRET_KEY, flow.seal(f.SECRET_KEY))
    assert domain.OidcFlow.unseal(f.SECRET_KEY, flow.seal(f.SECRET_KEY), max_age=3600)


@pytest.mark.parametrize(
    "elsewhere",
    [
        "https://evil.example.com/",
        "//evil.example.com/",
        "/\\evil.example.com",
        "javascript:alert(1)",
        "inbox",
        "/inbox\r\nSet-Cookie: x=1",
        "http://[",
        "",
    ],
)
def test_a_sign_in_returns_only_to_a_page_of_this_server(elsewhere):
    assert domain.OidcFlow.start(elsewhere).next_url == "/"


# The provider's answer


def test_an_answer_naming_another_issuer_is_refused():
    flow = domain.OidcFlow.start("/")
    answer = {"state": flow.state, "code": "c0de", "iss": "https://id.example.com/realms/evil"}
    with pytest.raises(errors.OidcFailed, match=r"another identity provider \(iss\)"):
        domain.code_of_answer(flow, answer, issuer=ISSUER)
    assert domain.code_of_answer(flow, answer | {"iss": ISSUER}, issuer=ISSUER) == "c0de"


def test_an_answer_without_a_code_is_refused():
    flow = domain.OidcFlow.start("/")
    with pytest.raises(errors.OidcFailed, match="has no code"):
        domain.code_of_answer(flow, {"state": flow.state}, issuer=ISSUER)


# Claims


@pytest.mark.parametrize(
    ("claim", "groups"),
    [
        (["owners", "reviewers", "owners"], ("owners", "reviewers")),
        ("owners reviewers", ("owners", "reviewers")),
        ("owners, reviewers,,data.team", ("owners", "reviewers", "data.team")),
        ([], ()),
        (None, ()),
    ],
)
def test_a_groups_claim_may_be_a_list_or_a_separated_string(claim, groups):
    claims = {"iss": ISSUER, "sub": "s", "email": "a@example.com", "groups": claim}
    assert domain.identity_from_claims(claims, groups_claim="groups").groups == groups


def test_groups_are_read_from_the_configured_claim_only():
    claims = {"iss": ISSUER, "sub": "s", "email": "a@example.com", "groups": ["x"], "roles": "y"}
    assert domain.identity_from_claims(claims, groups_claim="roles").groups == ("y",)
    assert domain.identity_from_claims(claims, groups_claim="").groups == ()


def test_a_groups_claim_of_another_shape_is_refused():
    claims = {"iss": ISSUER, "sub": "s", "email": "a@example.com", "groups": {"a": 1}}
    with pytest.raises(errors.OidcFailed, match="neither a list nor a string"):
        domain.identity_from_claims(claims, groups_claim="groups")


def test_the_team_name_rule_is_the_one_the_api_checks():
    # schemas.py is the SDK's and cannot import the domain; this keeps the two rules one.
    field = schemas.TeamCreate.model_fields["name"]
    constraints = {type(item).__name__: item for item in field.metadata}
    assert constraints["_PydanticGeneralMetadata"].pattern == TEAM_NAME_PATTERN
    assert constraints["MaxLen"].max_length == TEAM_NAME_MAX_LENGTH


# sign_in_with_oidc


def test_a_first_sign_in_creates_a_member_and_links_the_subject(db):
    user = oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    assert (user.email, user.name, user.role.value, user.kind.value, user.is_active) == (
        "alice@example.com",
        "Alice Example",
        "member",
        "person",
        True,
    )
    assert audited(db, "user.create") == [
        {"email": "alice@example.com", "role": "member", "kind": "person", "via": "oidc"}
    ]
    assert audited(db, "user.oidc_link") == [{"issuer": ISSUER, "subject": "sub-alice"}]


def test_the_next_sign_in_finds_the_user_by_subject_even_under_a_new_email(db):
    first = oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    again = oidc.sign_in_with_oidc(db, OIDC, identity(email="alice@new.example"), settings())
    assert again == first
    assert len(audited(db, "user.oidc_link")) == 1


def test_an_existing_user_is_linked_by_email(db):
    existing = f.user(db, "alice@example.com")
    assert oidc.sign_in_with_oidc(db, OIDC, identity(), settings()) == existing
    assert audited(db, "user.create") == []
    assert audited(db, "user.oidc_link") == [{"issuer": ISSUER, "subject": "sub-alice"}]


def test_an_unverified_email_never_takes_over_an_existing_account(db):
    f.user(db, "alice@example.com", role=Role.ADMIN)
    with pytest.raises(errors.OidcFailed, match="did not say the address is verified"):
        oidc.sign_in_with_oidc(db, OIDC, identity(email_verified=False), settings())
    assert audited(db, "user.oidc_link") == []


def test_a_provider_trusted_with_addresses_links_unverified_emails(db):
    existing = f.user(db, "alice@example.com")
    trusting = settings(oidc_trust_email=True)
    assert oidc.sign_in_with_oidc(db, OIDC, identity(email_verified=False), trusting) == existing


def test_an_email_linked_to_another_subject_is_not_taken_over(db):
    oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    with pytest.raises(
        errors.OidcFailed, match="belongs to another account at the identity provider"
    ):
        oidc.sign_in_with_oidc(db, OIDC, identity(subject="sub-newcomer"), settings())


def test_a_service_account_cannot_be_signed_in_to_by_email(db):
    principals.ensure_admin_key(db, f.ADMIN_KEY)
    admin = identity(email=principals.ADMIN_EMAIL)
    with pytest.raises(errors.OidcFailed, match="service account"):
        oidc.sign_in_with_oidc(db, OIDC, admin, settings())


@pytest.mark.parametrize("linked", [True, False])
def test_a_disabled_user_is_refused(db, linked):
    if linked:
        oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    else:
        f.user(db, "alice@example.com")
    with db.write() as session:
        session.execute(UserRow.__table__.update().values(is_active=False))
    with pytest.raises(errors.AccountDisabled, match="this account is disabled"):
        oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    assert len(audited(db, "user.oidc_link")) == (1 if linked else 0)


def test_groups_become_teams_the_user_is_a_member_of(db):
    f.team(db, "owners")
    oidc.sign_in_with_oidc(db, OIDC, identity("owners", "reviewers"), settings())
    assert memberships(db, "alice@example.com") == {"owners": "oidc", "reviewers": "oidc"}
    assert audited(db, "team.create") == [{"name": "reviewers", "via": "oidc"}]
    added = audited(db, "team.add_member")
    assert [entry["source"] for entry in added] == ["oidc", "oidc"]


def test_a_group_that_is_gone_takes_its_membership_away_and_leaves_the_team(db):
    oidc.sign_in_with_oidc(db, OIDC, identity("owners", "reviewers"), settings())
    user = oidc.sign_in_with_oidc(db, OIDC, identity("reviewers"), settings())
    assert memberships(db, "alice@example.com") == {"reviewers": "oidc"}
    assert [team.name for team in principals.list_teams(db, f.CLI)] == ["owners", "reviewers"]
    removed = audited(db, "team.remove_member")
    assert removed == [{"user_id": user.id, "email": "alice@example.com", "source": "oidc"}]


def test_memberships_an_admin_made_are_never_touched(db):
    f.user(db, "alice@example.com")
    f.team(db, "approvers", "alice@example.com")
    f.team(db, "owners", "alice@example.com")
    oidc.sign_in_with_oidc(db, OIDC, identity("owners", "reviewers"), settings())
    oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    assert memberships(db, "alice@example.com") == {"approvers": "local", "owners": "local"}


def test_groups_that_cannot_be_team_names_are_skipped(db, caplog):
    groups = ("/engineering/ml", "Data Owners", "x" * 101, "data.owners")
    oidc.sign_in_with_oidc(db, OIDC, identity(*groups), settings())
    assert memberships(db, "alice@example.com") == {"data.owners": "oidc"}
    assert "'Data Owners' is not a valid team name" in caplog.text


def test_without_a_groups_claim_teams_are_left_alone(db):
    oidc.sign_in_with_oidc(db, OIDC, identity("owners"), settings())
    oidc.sign_in_with_oidc(db, OIDC, identity(), settings(oidc_groups_claim=""))
    assert memberships(db, "alice@example.com") == {"owners": "oidc"}


def test_only_people_in_an_allowed_group_may_sign_in(db):
    allowed = settings(oidc_allowed_groups="owners,reviewers", oidc_display_name="Acme SSO")
    with pytest.raises(errors.GroupNotAllowed, match="your account at Acme SSO is in none"):
        oidc.sign_in_with_oidc(db, OIDC, identity("interns"), allowed)
    assert audited(db, "user.create") == []
    assert oidc.sign_in_with_oidc(db, OIDC, identity("interns", "reviewers"), allowed)


async def test_a_membership_change_reaches_remembered_api_keys_at_once(db):
    oidc.sign_in_with_oidc(db, OIDC, identity(), settings())
    secret = f.key(db, "alice@example.com")
    auth = principals.Authenticator(db, secret_key=f.SECRET_KEY, ttl=60)
    listening = asyncio.create_task(db.listen(auth.on_notification))
    await asyncio.sleep(0)
    try:
        assert auth.authenticate(secret).team_ids == frozenset()
        oidc.sign_in_with_oidc(db, OIDC, identity("owners"), settings())
        assert len(auth.authenticate(secret).team_ids) == 1
    finally:
        listening.cancel()


def test_the_audit_chain_holds_after_sign_ins(db):
    oidc.sign_in_with_oidc(db, OIDC, identity("owners"), settings())
    oidc.sign_in_with_oidc(db, OIDC, identity("reviewers"), settings())
    count, broken = audit.verify(db, f.CLI)
    assert broken is None
    assert count == 7  # create, link, team, member; team, member, removal
