"""OpenID Connect sign-in, the rules without I/O: the sealed state a browser carries through the
identity provider's pages, what a provider's discovery document must say, which ID token claims
are acceptable, and who a token says the person is.

The network half (discovery, the token exchange, the provider's keys) and the sign-in itself
(users, teams) are ``services/oidc.py``. Every refusal is ``errors.OidcFailed`` with a detail
written for the person signing in, who sees it on the sign-in page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import errors as jose_errors
from joserfc import jwt

from signoff import errors

SUBJECT_KEY_MAX_LENGTH = 512  # credentials.oidc_subject
FLOW_MAX_AGE_SECONDS = 600  # time from the sign-in button to the provider's redirect back
CLOCK_LEEWAY_SECONDS = 60  # clock skew tolerated on an ID token's exp and iat
# Asymmetric signatures only: "none" proves nothing, and HS256 would make the client secret a
# signing key.
SIGNING_ALGORITHMS = (
    *("RS256", "RS384", "RS512"),
    *("PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512"),
)
_BAD_CLAIM = {
    "iss": "the ID token comes from another issuer than the one configured",
    "aud": "the ID token was issued to another application",
    "sub": "the ID token does not say who you are (no 'sub')",
    "exp": "the ID token has no valid expiry",
    "iat": "the ID token's issue time is in the future (is this server's clock right?)",
    "nbf": "the ID token is not valid yet (is this server's clock right?)",
}


@dataclass(frozen=True)
class OidcFlow:
    """One sign-in in progress: what was sent to the provider, which its answer must match.

    It travels sealed (signed, not encrypted) in a short-lived cookie, so nothing is stored
    before a sign-in succeeds and any server process can finish a sign-in another began. The
    browser may read it: nothing in it is secret from the person signing in (PKCE's verifier
    keeps the code from others who see the redirect, not from that browser).
    """

    state: str
    nonce: str
    code_verifier: str
    next_url: str
    created_at: datetime

    @classmethod
    def start(cls, next_url: str) -> OidcFlow:
        return cls(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),  # 64 characters; PKCE allows 43 to 128
            next_url=local_path(next_url),
            created_at=datetime.now(UTC),
        )

    def seal(self, secret_key: str) -> str:
        """``<base64url JSON>.<base64url HMAC-SHA256>`` under the server key."""
        fields = {
            "state": self.state,
            "nonce": self.nonce,
            "code_verifier": self.code_verifier,
            "next_url": self.next_url,
            "created_at": int(self.created_at.timestamp()),
        }
        body = _b64encode(json.dumps(fields, separators=(",", ":")).encode())
        return f"{body}.{_mac(secret_key, body)}"

    @classmethod
    def unseal(cls, secret_key: str, value: str, max_age: float = FLOW_MAX_AGE_SECONDS) -> OidcFlow:
        """The flow ``seal`` wrote; ``OidcFailed`` when it was altered or is too old."""
        body, _, mac = value.partition(".")
        if not hmac.compare_digest(_mac(secret_key, body).encode(), mac.encode()):
            raise errors.OidcFailed("this sign-in could not be verified; please start again")
        try:
            fields = json.loads(_b64decode(body))
            flow = cls(
                state=str(fields["state"]),
                nonce=str(fields["nonce"]),
                code_verifier=str(fields["code_verifier"]),
                next_url=local_path(str(fields["next_url"])),
                created_at=datetime.fromtimestamp(fields["created_at"], UTC),
            )
        except (KeyError, TypeError, ValueError, OverflowError) as exc:
            raise errors.OidcFailed("this sign-in could not be read; please start again") from exc
        if (datetime.now(UTC) - flow.created_at).total_seconds() > max_age:
            raise errors.OidcFailed("this sign-in took too long; please start again")
        return flow


def local_path(url: str) -> str:
    """``url`` when it is a path on this server, else ``/``: where a sign-in returns to must
    not send people to another site (an open redirect)."""
    # A single leading slash rules out a scheme and a host; browsers read "\\" as "/".
    if (
        not url.startswith("/")
        or url.startswith("//")
        or "\\" in url
        or any(ord(char) < 0x20 or ord(char) == 0x7F for char in url)
    ):
        return "/"
    return url


def _mac(secret_key: str, body: str) -> str:
    digest = hmac.new(secret_key.encode(), f"oidc-flow:{body}".encode(), hashlib.sha256)
    return _b64encode(digest.digest())


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64decode(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc


def code_of_answer(flow: OidcFlow, query: Mapping[str, str], *, issuer: str) -> str:
    """The authorization code in the provider's redirect back, once the redirect is known to
    answer this browser's sign-in (``state``) and to come from the configured provider (``iss``,
    RFC 9207, when the provider sends it)."""
    if not hmac.compare_digest(query.get("state", "").encode(), flow.state.encode()):
        raise errors.OidcFailed(
            "the identity provider's answer does not belong to this sign-in (state); please "
            "start again"
        )
    if "iss" in query and query["iss"] != issuer:
        raise errors.OidcFailed("the answer comes from another identity provider (iss)")
    if "error" in query:
        description = query.get("error_description", "")[:200]
        raise errors.OidcFailed(
            f"the identity provider did not sign you in: {query['error'][:100]}"
            + (f" ({description})" if description else "")
        )
    code = query.get("code")
    if not code:
        raise errors.OidcFailed("the identity provider's answer has no code")
    return code


@dataclass(frozen=True)
class ProviderMetadata:
    """What signoff uses of a provider's ``/.well-known/openid-configuration``."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    signing_algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]

    @classmethod
    def parse(cls, document: Mapping[str, Any], *, issuer: str) -> ProviderMetadata:
        """Refuse a document from another issuer than the configured one (OIDC Discovery
        4.3: it must match exactly, trailing slash included)."""
        found = document.get("issuer")
        if found != issuer:
            raise errors.OidcFailed(
                f"the identity provider calls itself {found!r}, but this server expects "
                f"{issuer!r}; SIGNOFF_OIDC_ISSUER must match the provider's issuer exactly"
            )
        offered = document.get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = tuple(name for name in SIGNING_ALGORITHMS if name in offered)
        if not algorithms:
            raise errors.OidcFailed(
                "the identity provider signs ID tokens with none of "
                f"{', '.join(SIGNING_ALGORITHMS)}"
            )
        methods = document.get("token_endpoint_auth_methods_supported")
        return cls(
            issuer=issuer,
            authorization_endpoint=_endpoint(document, "authorization_endpoint"),
            token_endpoint=_endpoint(document, "token_endpoint"),
            jwks_uri=_endpoint(document, "jwks_uri"),
            userinfo_endpoint=(
                _endpoint(document, "userinfo_endpoint")
                if document.get("userinfo_endpoint")
                else None
            ),
            signing_algorithms=algorithms,
            # The default when a provider does not say (OIDC Discovery 3).
            token_auth_methods=tuple(methods) if methods else ("client_secret_basic",),
        )

    def token_auth_method(self, *, has_secret: bool) -> str:
        """How this client proves itself at the token endpoint."""
        if not has_secret:
            return "none"
        for method in ("client_secret_basic", "client_secret_post"):
            if method in self.token_auth_methods:
                return method
        raise errors.OidcFailed(
            "the identity provider accepts neither client_secret_basic nor client_secret_post "
            "at its token endpoint"
        )


def _endpoint(document: Mapping[str, Any], name: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value.startswith(("https://", "http://")):
        raise errors.OidcFailed(f"the identity provider's discovery document has no {name}")
    return value


def check_id_token_claims(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, nonce: str
) -> None:
    """The checks of OIDC Core 3.1.3.7 that are about claims (the signature is checked before
    the claims are read): issuer, audience and authorized party, times, and the nonce that
    ties the token to this browser's sign-in."""
    registry = jwt.JWTClaimsRegistry(
        leeway=CLOCK_LEEWAY_SECONDS,
        iss={"essential": True, "value": issuer},
        sub={"essential": True},
        aud={"essential": True, "value": client_id},
        exp={"essential": True},
        iat={"essential": True},
    )
    try:
        registry.validate(dict(claims))
    except jose_errors.ExpiredTokenError as exc:
        raise errors.OidcFailed("the ID token has expired (is this server's clock right?)") from exc
    except jose_errors.ClaimError as exc:
        claim = next((name for name in _BAD_CLAIM if name in exc.claim.split(",")), None)
        detail = _BAD_CLAIM[claim] if claim else f"the ID token's {exc.claim!r} is not valid"
        raise errors.OidcFailed(detail) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
        raise errors.OidcFailed("the ID token was issued to another application (azp)")
    if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), nonce.encode()):
        raise errors.OidcFailed(
            "the ID token does not belong to this sign-in (nonce); please start again"
        )


@dataclass(frozen=True)
class OidcIdentity:
    """Who the identity provider says signed in."""

    issuer: str
    subject: str
    email: str  # lower-cased
    name: str
    groups: tuple[str, ...]
    email_verified: bool = False  # the provider said so (``email_verified: true``)

    @property
    def subject_key(self) -> str:
        """How signoff stores the link to this identity: subjects are unique per issuer."""
        return f"{self.issuer}|{self.subject}"


def identity_from_claims(claims: Mapping[str, Any], *, groups_claim: str) -> OidcIdentity:
    """The identity in checked claims; refuses a missing or unverified email address, since
    signoff names people by email and links an existing user by it."""
    email = claims.get("email")
    if not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+", email.strip()):
        raise errors.OidcFailed(
            "the identity provider did not give your email address, which signoff needs "
            "(the 'email' claim)"
        )
    if len(email.strip()) > 320:
        raise errors.OidcFailed("your email address is longer than signoff allows")
    if claims.get("email_verified") in (False, "false"):  # some providers send strings
        raise errors.OidcFailed(
            "your email address at the identity provider is not verified; verify it there "
            "and sign in again"
        )
    if len(f"{claims['iss']}|{claims['sub']}") > SUBJECT_KEY_MAX_LENGTH:
        raise errors.OidcFailed("the identity provider's name for you is too long")
    name = claims.get("name")
    return OidcIdentity(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        email=email.strip().lower(),
        name=name.strip()[:200] if isinstance(name, str) else "",
        groups=_groups(claims, groups_claim) if groups_claim else (),
        email_verified=claims.get("email_verified") in (True, "true"),
    )


def _groups(claims: Mapping[str, Any], groups_claim: str) -> tuple[str, ...]:
    """The groups claim, a JSON array or one string separated by spaces or commas. Missing
    means no groups."""
    claim_names = claims.get("_claim_names")
    if isinstance(claim_names, dict) and groups_claim in claim_names:
        # Microsoft Entra ID's "group overage": too many groups, sent as a link instead.
        raise errors.OidcFailed(
            f"the identity provider left the {groups_claim!r} claim out of the ID token "
            "because you are in too many groups; an admin must limit the groups it sends"
        )
    value = claims.get(groups_claim)
    if value is None:
        return ()
    if isinstance(value, str):
        names = re.split(r"[\s,]+", value)
    elif isinstance(value, list) and all(isinstance(item, str | int) for item in value):
        names = [str(item) for item in value]
    else:
        raise errors.OidcFailed(
            f"the identity provider's {groups_claim!r} claim is neither a list nor a string"
        )
    return tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
