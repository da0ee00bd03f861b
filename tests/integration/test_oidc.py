"""OpenID Connect sign-in against a real provider over HTTP (``tests/oidc_provider.py``): the
authorization code flow with PKCE, and every way its answer can be refused."""

from __future__ import annotations

import base64
import hashlib
import time

import pytest

from signoff import errors
from signoff.domain import oidc as domain
from signoff.domain.principals import Context, Principal
from signoff.services import audit, oidc
from signoff.settings import Settings
from signoff.store import oidc as oidc_store
from tests import factories
from tests.factories import CLI
from tests.oidc_provider import OMIT, OidcProvider, new_key
from tests.receivers import free_port

PUBLIC_URL = "https://signoff.example.com"


@pytest.fixture
def oidc_settings(oidc_provider: OidcProvider) -> Settings:
    settings = Settings(
        public_url=PUBLIC_URL,
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=oidc_provider.client_id,
        oidc_client_secret=oidc_provider.client_secret,
    )
    oidc_provider.redirect_uris.add(settings.oidc_redirect_uri)
    return settings


@pytest.fixture
def client(oidc_settings: Settings) -> oidc.OidcClient:
    return oidc.OidcClient(oidc_settings)


async def sign_in(client: oidc.OidcClient, provider: OidcProvider) -> domain.OidcIdentity:
    url, flow = await client.begin("/inbox")
    return await client.complete(flow, await provider.visit(url))


async def test_a_full_sign_in_says_who_the_provider_signed_in(client, oidc_provider):
    oidc_provider.user.groups = ["owners", "reviewers"]
    identity = await sign_in(client, oidc_provider)
    assert identity == domain.OidcIdentity(
        issuer=oidc_provider.issuer,
        subject="0b8f6a9e-alice",
        email="alice@example.com",
        name="Alice Example",
        groups=("owners", "reviewers"),
        email_verified=True,
    )
    assert oidc_provider.userinfo_requests == 0  # the ID token said everything


async def test_the_authorization_request_carries_pkce_s256_state_and_nonce(
    client, oidc_provider, oidc_settings
):
    url, flow = await client.begin("/approvals/ap_1")
    await client.complete(flow, await oidc_provider.visit(url))
    sent = oidc_provider.authorize_requests[0]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(flow.code_verifier.encode()).digest())
    assert sent == {
        "response_type": "code",
        "client_id": oidc_provider.client_id,
        "redirect_uri": f"{PUBLIC_URL}/auth/oidc/callback",
        "scope": "openid email profile",
        "state": flow.state,
        "nonce": flow.nonce,
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    assert flow.next_url == "/approvals/ap_1"
    exchange = oidc_provider.token_requests[0]
    assert exchange.auth_method == "client_secret_basic"
    assert exchange.form["code_verifier"] == flow.code_verifier
    assert exchange.form["redirect_uri"] == oidc_settings.oidc_redirect_uri


async def test_the_secret_goes_in_the_form_to_a_provider_that_accepts_only_that(
    client, oidc_provider
):
    oidc_provider.auth_methods = ["client_secret_post"]
    await sign_in(client, oidc_provider)
    assert oidc_provider.token_requests[0].auth_method == "client_secret_post"


async def test_an_answer_to_another_sign_in_is_refused(client, oidc_provider):
    url, _ = await client.begin()
    _, other_flow = await client.begin()
    answer = await oidc_provider.visit(url)
    with pytest.raises(errors.OidcFailed, match=r"does not belong to this sign-in \(state\)"):
        await client.complete(other_flow, answer)
    assert oidc_provider.token_requests == []  # the code was never sent anywhere


async def test_the_providers_refusal_is_passed_on(client, oidc_provider):
    oidc_provider.deny = "access_denied"
    with pytest.raises(errors.OidcFailed, match="did not sign you in: access_denied"):
        await sign_in(client, oidc_provider)


async def test_a_code_is_exchanged_only_once(client, oidc_provider):
    url, flow = await client.begin()
    answer = await oidc_provider.visit(url)
    await client.complete(flow, answer)
    with pytest.raises(errors.OidcFailed, match="refused this sign-in \\(invalid_grant") as caught:
        await client.complete(flow, answer)
    assert caught.value.__cause__ is not None


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nonce": "replayed-from-another-sign-in"}, r"does not belong to this sign-in \(nonce\)"),
        ({"nonce": OMIT}, r"\(nonce\)"),
        ({"aud": "another-application"}, "issued to another application"),
        ({"aud": ["signoff-test", "another-application"]}, r"another application \(azp\)"),
        (
            {"aud": ["signoff-test", "other"], "azp": "other"},
            r"another application \(azp\)",
        ),
        ({"iss": "https://id.example.com"}, "another issuer"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "has expired"),
        ({"iat": int(time.time()) + 3600}, "in the future"),
        ({"sub": OMIT}, "does not say who you are"),
        ({"email": "not-an-address"}, "email address"),
    ],
)
async def test_an_id_token_that_does_not_check_out_is_refused(
    client, oidc_provider, overrides, message
):
    oidc_provider.claim_overrides = overrides
    with pytest.raises(errors.OidcFailed, match=message):
        await sign_in(client, oidc_provider)


async def test_several_audiences_are_accepted_when_signoff_is_the_authorized_party(
    client, oidc_provider
):
    oidc_provider.claim_overrides = {"aud": ["signoff-test", "other"], "azp": "signoff-test"}
    assert (await sign_in(client, oidc_provider)).email == "alice@example.com"


async def test_a_token_signed_by_another_key_under_a_known_kid_is_refused(client, oidc_provider):
    oidc_provider.signing_key = new_key("key-1")  # same kid as the published key
    with pytest.raises(errors.OidcFailed, match="signature does not verify"):
        await sign_in(client, oidc_provider)


async def test_a_token_signed_by_an_unpublished_key_is_refused_after_one_refetch(
    client, oidc_provider
):
    await sign_in(client, oidc_provider)
    oidc_provider.signing_key = new_key("key-9")
    with pytest.raises(errors.OidcFailed, match="key the identity provider does not publish"):
        await sign_in(client, oidc_provider)
    assert oidc_provider.jwks_requests == 2


async def test_rotated_keys_are_fetched_again(client, oidc_provider):
    await sign_in(client, oidc_provider)
    rotated = new_key("key-2")
    oidc_provider.keys, oidc_provider.signing_key = [rotated], rotated
    assert (await sign_in(client, oidc_provider)).subject == "0b8f6a9e-alice"
    await sign_in(client, oidc_provider)
    assert oidc_provider.jwks_requests == 2  # once at first, once for the new key


async def test_a_provider_naming_another_issuer_in_discovery_is_refused(client, oidc_provider):
    oidc_provider.discovery_issuer = "https://id.example.com/realms/test"
    with pytest.raises(errors.OidcFailed, match="SIGNOFF_OIDC_ISSUER must match"):
        await client.begin()


async def test_an_unverified_email_is_refused(client, oidc_provider):
    oidc_provider.user.email_verified = False
    with pytest.raises(errors.OidcFailed, match="not verified"):
        await sign_in(client, oidc_provider)


async def test_an_email_the_provider_does_not_vouch_for_either_way_is_accepted(
    client, oidc_provider
):
    oidc_provider.user.email_verified = None  # Microsoft Entra ID sends no email_verified
    assert (await sign_in(client, oidc_provider)).email == "alice@example.com"


async def test_the_email_and_groups_come_from_userinfo_when_the_id_token_lacks_them(
    client, oidc_provider
):
    oidc_provider.user.groups = "owners reviewers,data.team"
    oidc_provider.claim_overrides = {"email": OMIT, "groups": OMIT}
    identity = await sign_in(client, oidc_provider)
    assert identity.email == "alice@example.com"
    assert identity.groups == ("owners", "reviewers", "data.team")
    assert oidc_provider.userinfo_requests == 1


async def test_a_sign_in_without_any_email_is_refused(client, oidc_provider):
    oidc_provider.user.email = ""
    with pytest.raises(errors.OidcFailed, match="did not give your email address"):
        await sign_in(client, oidc_provider)


async def test_groups_left_out_for_being_too_many_are_not_taken_as_none(client, oidc_provider):
    oidc_provider.claim_overrides = {
        "groups": OMIT,
        "_claim_names": {"groups": "src1"},
        "_claim_sources": {"src1": {"endpoint": "https://graph.example.com/getMemberObjects"}},
    }
    with pytest.raises(errors.OidcFailed, match="too many groups"):
        await sign_in(client, oidc_provider)


async def test_an_unreachable_provider_is_reported():
    settings = Settings(
        oidc_issuer=f"http://127.0.0.1:{free_port()}/realms/gone", oidc_client_id="signoff"
    )
    with pytest.raises(errors.OidcFailed, match="could not get the identity provider's") as caught:
        await oidc.OidcClient(settings).begin()
    assert caught.value.__cause__ is not None


async def test_a_sign_in_through_the_provider_makes_the_user_and_their_teams(
    db, client, oidc_provider, oidc_settings
):
    oidc_provider.user.groups = ["owners"]
    identity = await sign_in(client, oidc_provider)
    ctx = Context(principal=Principal(system="oidc"), request_id="req-1", client_addr="::1")
    user = oidc.sign_in_with_oidc(db, ctx, identity, oidc_settings)
    with db.read() as session:
        assert oidc_store.find_user_by_subject(session, identity.subject_key) == user
        assert oidc_store.synced_teams(session, user.id).keys() == {"owners"}


async def test_an_admin_unlinks_an_address_given_to_someone_new_at_the_provider(
    db, client, oidc_provider, oidc_settings
):
    oidc_provider.user.groups = ["owners"]
    ctx = Context(principal=Principal(system="oidc"), request_id="req-1", client_addr="::1")
    first = await sign_in(client, oidc_provider)
    user = oidc.sign_in_with_oidc(db, ctx, first, oidc_settings)
    oidc_provider.user.subject = "77c1-someone-new"
    second = await sign_in(client, oidc_provider)
    with pytest.raises(errors.OidcFailed, match="another account at the identity provider"):
        oidc.sign_in_with_oidc(db, ctx, second, oidc_settings)

    assert oidc.unlink(db, CLI, user.email) is True
    with db.read() as session:
        assert oidc_store.find_subject_of(session, user.id) is None
        assert oidc_store.synced_teams(session, user.id) == {}  # the old groups went with it
    entry = list(audit.export(db, CLI))[-1]
    assert (entry.action, entry.object_id) == ("user.oidc_unlink", user.id)
    assert entry.before == {"subject": first.subject_key, "teams": ["owners"]}
    assert oidc.unlink(db, CLI, user.email) is False  # nothing left to unlink

    assert oidc.sign_in_with_oidc(db, ctx, second, oidc_settings) == user  # linked anew


def test_only_an_admin_unlinks(db):
    member = factories.context(db, factories.user(db, "bob@example.com"))
    with pytest.raises(errors.PermissionDenied):
        oidc.unlink(db, member, "bob@example.com")
