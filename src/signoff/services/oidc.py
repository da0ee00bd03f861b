"""OpenID Connect sign-in: the conversation with the identity provider (``OidcClient``), and
what a successful sign-in changes here (``sign_in_with_oidc``).

The web layer drives it. ``/auth/oidc/login`` calls ``begin`` and keeps the sealed
``domain.oidc.OidcFlow`` in a short-lived cookie; ``/auth/oidc/callback`` unseals it, calls
``complete`` with the query string, then ``sign_in_with_oidc``, and opens a session. The
rules without I/O (the flow, the discovery document, the ID token's claims) are
``domain/oidc.py``; every refusal is ``errors.OidcFailed`` (or, from ``sign_in_with_oidc``,
``errors.GroupNotAllowed`` or ``errors.AccountDisabled``) with a detail for the person.
"""

from __future__ import annotations

import contextlib
import logging
import time
import warnings
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from joserfc import errors as jose_errors
from joserfc import jwk, jwt
from sqlalchemy.orm import Session

from signoff import errors
from signoff.domain import ids
from signoff.domain import oidc as domain
from signoff.domain.principals import Context, Team, User, UserKind, is_valid_team_name
from signoff.services import journal, principals
from signoff.settings import Settings
from signoff.store import accounts as accounts_store
from signoff.store import oidc as store
from signoff.store import principals as principals_store
from signoff.store.engine import Database

with warnings.catch_warnings():
    # authlib 1.9 warns on import that it prefers the httpx2 fork; signoff and its SDK are
    # built on httpx, which authlib still supports in full, and operators could do nothing
    # about it. authlib's own import puts an "always show" filter first, so ours goes after.
    import authlib.deprecate

    warnings.filterwarnings(
        "ignore", "The httpx module is deprecated", authlib.deprecate.AuthlibDeprecationWarning
    )
    from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

log = logging.getLogger(__name__)

HTTP_TIMEOUT_SECONDS = 10.0
DISCOVERY_TTL_SECONDS = 3600.0  # a provider's endpoints rarely move; its keys are refetched


class OidcClient:
    """signoff as an OpenID Connect relying party: the authorization code flow with PKCE
    (S256), state and nonce, and a client secret when one is configured.

    Made once per server process. It keeps the provider's discovery document for an hour and
    its signing keys until a token names a key it has not seen (key rotation). Safe to share
    between concurrent sign-ins: each uses its own HTTP client, so no one's tokens stay here.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.oidc_issuer is None:
            raise ValueError("OIDC sign-in is not configured (SIGNOFF_OIDC_ISSUER)")
        secret = settings.oidc_client_secret
        self.issuer = settings.oidc_issuer
        self.client_id = settings.oidc_client_id
        self.scopes = settings.oidc_scopes
        self.groups_claim = settings.oidc_groups_claim
        self.redirect_uri = settings.oidc_redirect_uri
        self._client_secret = secret.get_secret_value() if secret else None
        self._ssl = httpx.create_ssl_context()  # once: it costs more than a sign-in's requests
        self._metadata: tuple[float, domain.ProviderMetadata] | None = None
        self._keys: jwk.KeySet | None = None

    async def discover(self) -> domain.ProviderMetadata:
        """The provider's ``/.well-known/openid-configuration``, which must name the
        configured issuer."""
        cached = self._metadata
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        url = f"{self.issuer.rstrip('/')}/.well-known/openid-configuration"
        document = await self._get_json(url, "discovery document")
        metadata = domain.ProviderMetadata.parse(document, issuer=self.issuer)
        self._metadata = (time.monotonic() + DISCOVERY_TTL_SECONDS, metadata)
        return metadata

    async def begin(self, next_url: str = "/") -> tuple[str, domain.OidcFlow]:
        """Where to send the browser, and the flow to keep until it comes back.

        ``next_url`` is where to go after signing in; anything but a path on this server
        becomes ``/``."""
        with _logged():
            metadata = await self.discover()
        flow = domain.OidcFlow.start(next_url)
        async with self._oauth(metadata) as oauth:
            url, _ = oauth.create_authorization_url(
                metadata.authorization_endpoint,
                state=flow.state,
                code_verifier=flow.code_verifier,
                nonce=flow.nonce,
            )
        return str(url), flow

    async def complete(
        self, flow: domain.OidcFlow, query: Mapping[str, str]
    ) -> domain.OidcIdentity:
        """Who signed in, from the provider's redirect back (its query parameters)."""
        with _logged():
            code = domain.code_of_answer(flow, query, issuer=self.issuer)
            metadata = await self.discover()
            token = await self._exchange(metadata, flow, code)
            claims = await self._id_token_claims(metadata, token, flow)
            claims = await self._with_userinfo(metadata, token, claims)
            return domain.identity_from_claims(claims, groups_claim=self.groups_claim)

    async def _exchange(
        self, metadata: domain.ProviderMetadata, flow: domain.OidcFlow, code: str
    ) -> dict[str, Any]:
        try:
            async with self._oauth(metadata) as oauth:
                token = await oauth.fetch_token(
                    metadata.token_endpoint,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=flow.code_verifier,
                    redirect_uri=self.redirect_uri,
                )
        except OAuthError as exc:
            reason = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise errors.OidcFailed(
                f"the identity provider refused this sign-in ({reason}); please start again"
            ) from exc
        except (httpx.HTTPError, ValueError) as exc:
            raise errors.OidcFailed(
                f"could not finish signing in at the identity provider ({exc})"
            ) from exc
        return dict(token)

    async def _id_token_claims(
        self, metadata: domain.ProviderMetadata, token: Mapping[str, Any], flow: domain.OidcFlow
    ) -> dict[str, Any]:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise errors.OidcFailed(
                "the identity provider sent no ID token (is 'openid' among the scopes?)"
            )
        claims = await self._verified(metadata, id_token)
        domain.check_id_token_claims(
            claims, issuer=metadata.issuer, client_id=self.client_id, nonce=flow.nonce
        )
        return claims

    async def _verified(self, metadata: domain.ProviderMetadata, id_token: str) -> dict[str, Any]:
        """The token's claims once its signature verifies with one of the provider's keys. A
        token naming a key not seen yet makes the keys be fetched again, once (rotation)."""
        keys, fresh = self._keys, False
        if keys is None:
            keys, fresh = await self._fetch_keys(metadata), True
        while True:
            try:
                decoded = jwt.decode(id_token, keys, algorithms=metadata.signing_algorithms)
            except (jose_errors.InvalidKeyIdError, jose_errors.MissingKeyError) as exc:
                if fresh:
                    raise errors.OidcFailed(
                        "the ID token is signed with a key the identity provider does not publish"
                    ) from exc
                keys, fresh = await self._fetch_keys(metadata), True
                continue
            except jose_errors.BadSignatureError as exc:
                raise errors.OidcFailed("the ID token's signature does not verify") from exc
            except (jose_errors.JoseError, ValueError) as exc:
                raise errors.OidcFailed(f"the ID token could not be read ({exc})") from exc
            return decoded.claims

    async def _fetch_keys(self, metadata: domain.ProviderMetadata) -> jwk.KeySet:
        document = await self._get_json(metadata.jwks_uri, "signing keys")
        keys: list[jwk.Key] = []
        for entry in document.get("keys") or []:
            if not isinstance(entry, dict) or entry.get("use") == "enc":
                continue
            try:
                keys.append(jwk.import_key(entry))
            except (jose_errors.JoseError, ValueError, TypeError, KeyError):
                log.info("skipping a signing key of the identity provider signoff cannot read")
        if not keys:
            raise errors.OidcFailed(
                "the identity provider publishes no signing key signoff can use"
            )
        self._keys = jwk.KeySet(keys)
        return self._keys

    async def _with_userinfo(
        self, metadata: domain.ProviderMetadata, token: Mapping[str, Any], claims: dict[str, Any]
    ) -> dict[str, Any]:
        """The ID token's claims, completed from the userinfo endpoint when the token lacks the
        email or the groups (providers set up to keep ID tokens small put them only there)."""
        linked = claims.get("_claim_names")
        wanted = [name for name in ("email", self.groups_claim) if name and name not in claims]
        wanted = [name for name in wanted if not (isinstance(linked, dict) and name in linked)]
        access_token = token.get("access_token")
        if not wanted or metadata.userinfo_endpoint is None or not isinstance(access_token, str):
            return claims
        info = await self._get_json(
            metadata.userinfo_endpoint,
            "user info",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if info.get("sub") != claims["sub"]:
            raise errors.OidcFailed("the identity provider's user info is about someone else")
        taken = {"email", "email_verified", "name", self.groups_claim}
        return {**{key: value for key, value in info.items() if key in taken}, **claims}

    async def _get_json(
        self, url: str, what: str, headers: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS, verify=self._ssl) as http:
                response = await http.get(url, headers=headers)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise errors.OidcFailed(
                f"could not get the identity provider's {what} ({exc})"
            ) from exc
        if not isinstance(document, dict):
            raise errors.OidcFailed(f"the identity provider's {what} is not a JSON object")
        return document

    def _oauth(self, metadata: domain.ProviderMetadata) -> Any:
        """authlib's client for one sign-in (its ``token`` attribute holds that sign-in's)."""
        return AsyncOAuth2Client(
            client_id=self.client_id,
            client_secret=self._client_secret,
            token_endpoint_auth_method=metadata.token_auth_method(
                has_secret=self._client_secret is not None
            ),
            scope=self.scopes,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=HTTP_TIMEOUT_SECONDS,
            verify=self._ssl,
        )


@contextlib.contextmanager
def _logged() -> Iterator[None]:
    """Log refusals for the operator, who sees the cause the person is not shown."""
    try:
        yield
    except errors.OidcFailed as exc:
        log.warning("OIDC sign-in refused: %s (%r)", exc.detail, exc.__cause__)
        raise


def sign_in_with_oidc(
    db: Database, ctx: Context, identity: domain.OidcIdentity, settings: Settings
) -> User:
    """The user ``identity`` signs in as, in one transaction.

    The user is found by the linked subject, else by email (and then linked), else created
    as a member. With a groups claim configured, each of the identity's groups that is a valid
    team name becomes a team they are a member of (created when missing); the memberships an
    earlier sign-in made and the groups no longer list are removed. Memberships an admin made
    are never touched. ``ctx`` names the actor in the audit log: signoff itself
    (``Principal(system="oidc")``) with the request's id and address.
    """
    allowed = settings.oidc_allowed_groups
    if allowed and not set(identity.groups) & set(allowed):
        raise errors.GroupNotAllowed(
            f"your account at {settings.oidc_display_name} is in none of the groups allowed "
            "to sign in here"
        )
    now = datetime.now(UTC)
    with db.write() as session:
        user = _find_or_create_user(session, ctx, identity, now, settings.oidc_trust_email)
        if settings.oidc_groups_claim and _sync_teams(session, ctx, user, identity.groups, now):
            db.notify(session, principals.CHANGED)  # API keys' remembered team lists go
    return user


def unlink(db: Database, ctx: Context, user: str) -> bool:
    """Forget which identity-provider subject signs in as ``user`` (an id or email), so that
    the next provider sign-in with their email links anew: for an address the provider gave
    to someone new, or a link made by mistake. The teams the provider's groups gave them go
    too (they were that subject's groups), and so do their sessions. False when nothing was
    linked. Admins only; audited as ``user.oidc_unlink`` with what was forgotten."""
    ctx.principal.require_admin()
    with db.write() as session:
        found = principals_store.get_user(session, user.lower() if "@" in user else user)
        subject = store.find_subject_of(session, found.id)
        if subject is None:
            return False
        teams = store.synced_teams(session, found.id)
        store.unlink_subject(session, found.id)
        for team_id in teams.values():
            store.remove_synced_member(session, team_id, found.id)
        accounts_store.delete_sessions_of(session, found.id)
        db.notify(session, principals.CHANGED)  # API keys' remembered team lists go
        journal.record(
            session,
            ctx,
            at=datetime.now(UTC),
            action="user.oidc_unlink",
            object_type="user",
            object_id=found.id,
            before={"subject": subject, "teams": sorted(teams)},
        )
    return True


def _find_or_create_user(
    session: Session,
    ctx: Context,
    identity: domain.OidcIdentity,
    now: datetime,
    trust_email: bool,
) -> User:
    user = store.find_user_by_subject(session, identity.subject_key)
    if user is not None:
        _require_active(user)
        return user
    user = principals_store.find_user_by_email(session, identity.email)
    if user is None:
        user = principals.add_user(
            session, ctx, email=identity.email, name=identity.name, via="oidc"
        )
    else:
        _require_active(user)
        _require_linkable(session, user)
        if not (identity.email_verified or trust_email):
            # Whoever can set this address at the provider would get the account.
            raise errors.OidcFailed(
                f"an account for {identity.email} exists, and the identity provider did not "
                "say the address is verified, so signoff will not link them; ask an admin"
            )
    store.link_subject(session, user.id, identity.subject_key)
    journal.record(
        session,
        ctx,
        at=now,
        action="user.oidc_link",
        object_type="user",
        object_id=user.id,
        after={"issuer": identity.issuer, "subject": identity.subject},
    )
    return user


def _require_active(user: User) -> None:
    if not user.is_active:
        raise errors.AccountDisabled("this account is disabled")


def _require_linkable(session: Session, user: User) -> None:
    """Link by email only a person not linked yet: a service account (the admin key's user)
    must not be taken over by whoever the provider calls by its email, and a second subject
    for the same email is another account at the provider (an address given to someone new)."""
    if user.kind is not UserKind.PERSON:
        raise errors.OidcFailed(f"{user.email} is a service account, which cannot sign in")
    if store.find_subject_of(session, user.id) is not None:
        raise errors.OidcFailed(
            f"{user.email} belongs to another account at the identity provider, so signoff "
            "will not sign you in to it; ask an admin"
        )


def _sync_teams(
    session: Session, ctx: Context, user: User, groups: tuple[str, ...], now: datetime
) -> bool:
    """Make the user's synced memberships those of ``groups``; True when any changed."""
    wanted = [group for group in groups if is_valid_team_name(group)]
    for group in sorted(set(groups) - set(wanted)):
        log.warning("OIDC group %r is not a valid team name; it is not synced", group)
    changed = False
    for name in wanted:
        team = principals_store.find_team_by_name(session, name)
        team_id = team.id if team else _create_team(session, ctx, name, now)
        if store.add_synced_member(session, team_id, user.id):
            _record_membership(session, ctx, "team.add_member", team_id, user, now)
            changed = True
    for name, team_id in store.synced_teams(session, user.id).items():
        if name not in wanted and store.remove_synced_member(session, team_id, user.id):
            _record_membership(session, ctx, "team.remove_member", team_id, user, now)
            changed = True
    return changed


def _create_team(session: Session, ctx: Context, name: str, now: datetime) -> str:
    team_id = ids.new_id("team")
    principals_store.insert_team(session, Team(id=team_id, name=name, created_at=now))
    journal.record(
        session,
        ctx,
        at=now,
        action="team.create",
        object_type="team",
        object_id=team_id,
        after={"name": name, "via": "oidc"},
    )
    return team_id


def _record_membership(
    session: Session, ctx: Context, action: str, team_id: str, user: User, now: datetime
) -> None:
    journal.record(
        session,
        ctx,
        at=now,
        action=action,
        object_type="team",
        object_id=team_id,
        after={"user_id": user.id, "email": user.email, "source": "oidc"},
    )
