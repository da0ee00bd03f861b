"""A real OpenID Connect provider on loopback, for the sign-in tests.

A small Starlette app served by uvicorn in a background thread, like the test server in
``conftest.py``: discovery, JWKS (an RSA key made for each provider), ``/authorize`` with no
page (it signs in whichever ``user`` the test set), ``/token`` (client authentication,
single-use codes, the redirect URI and PKCE checked; RS256-signed ID tokens) and
``/userinfo``. Tests set knobs on it to make it misbehave the ways a provider or an attacker
could, and read what it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import threading
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import httpx
import uvicorn
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

OMIT = object()  # as a value in ``claim_overrides``: leave the claim out of ID tokens
REALM = "/realms/test"  # the issuer has a path, as Keycloak's does


@dataclass
class ProviderUser:
    """Who signs in at the provider."""

    subject: str = "0b8f6a9e-alice"
    email: str = "Alice@Example.com"
    email_verified: bool | None = True  # None: the claim is left out
    name: str = "Alice Example"
    groups: list[str] | str | None = field(default_factory=list)  # None: claim left out

    def claims(self) -> dict[str, Any]:
        claims: dict[str, Any] = {"sub": self.subject, "email": self.email, "name": self.name}
        if self.email_verified is not None:
            claims["email_verified"] = self.email_verified
        if self.groups is not None:
            claims["groups"] = self.groups
        return claims


@dataclass
class _Grant:
    """An authorization code waiting to be exchanged."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    user: ProviderUser


@dataclass
class TokenRequest:
    form: dict[str, str]
    auth_method: str  # "client_secret_basic", "client_secret_post" or "none"


def new_key(kid: str) -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig", "alg": "RS256"})


class OidcProvider:
    client_id = "signoff-test"
    client_secret = "test-client-secret"

    def __init__(self) -> None:
        self.keys = [new_key("key-1")]  # what /jwks publishes
        self.signing_key = self.keys[0]  # what ID tokens are signed with
        self.user: ProviderUser | None = ProviderUser()
        self.redirect_uris: set[str] = set()
        self.deny: str | None = None  # /authorize answers error=<this>
        self.claim_overrides: dict[str, Any] = {}  # merged into ID tokens (OMIT: left out)
        self.discovery_issuer: str | None = None  # what discovery says the issuer is
        self.auth_methods = ["client_secret_basic", "client_secret_post"]
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[TokenRequest] = []
        self.jwks_requests = 0
        self.userinfo_requests = 0
        self.issuer = ""  # known once started
        self._grants: dict[str, _Grant] = {}
        self._access: dict[str, ProviderUser] = {}
        self._lock = threading.Lock()
        app = Starlette(
            routes=[
                Route(f"{REALM}/.well-known/openid-configuration", self._discovery),
                Route(f"{REALM}/jwks", self._jwks),
                Route(f"{REALM}/authorize", self._authorize),
                Route(f"{REALM}/token", self._token, methods=["POST"]),
                Route(f"{REALM}/userinfo", self._userinfo),
            ]
        )
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> OidcProvider:
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the OIDC provider did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.issuer = f"http://127.0.0.1:{port}{REALM}"
        return self

    def __exit__(
        self,
        _type: type[BaseException] | None,
        _exc: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    async def visit(self, authorization_url: str) -> dict[str, str]:
        """What a browser sent to ``authorization_url`` brings back to signoff: the query
        parameters of the provider's redirect to the callback."""
        async with httpx.AsyncClient() as http:
            response = await http.get(authorization_url)
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.split("?")[0] in self.redirect_uris
        return dict(parse_qsl(urlsplit(location).query))

    def id_token(self, grant: _Grant) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "exp": now + 300,
            "iat": now,
            **grant.user.claims(),
        }
        if grant.nonce is not None:
            claims["nonce"] = grant.nonce
        for name, value in self.claim_overrides.items():
            if value is OMIT:
                claims.pop(name, None)
            else:
                claims[name] = value
        header = {"alg": "RS256", "kid": self.signing_key.kid}
        return jwt.encode(header, claims, self.signing_key)

    async def _discovery(self, _request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.discovery_issuer or self.issuer,
                "authorization_endpoint": f"{self.issuer}/authorize",
                "token_endpoint": f"{self.issuer}/token",
                "jwks_uri": f"{self.issuer}/jwks",
                "userinfo_endpoint": f"{self.issuer}/userinfo",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": self.auth_methods,
                "scopes_supported": ["openid", "email", "profile"],
            }
        )

    async def _jwks(self, _request: Request) -> Response:
        self.jwks_requests += 1
        return JSONResponse({"keys": [key.as_dict(private=False) for key in self.keys]})

    async def _authorize(self, request: Request) -> Response:
        params = dict(request.query_params)
        self.authorize_requests.append(params)
        redirect_uri = params.get("redirect_uri", "")
        if params.get("client_id") != self.client_id or redirect_uri not in self.redirect_uris:
            # Never redirect to a URI nobody registered.
            return PlainTextResponse("unknown client or redirect_uri", status_code=400)
        answer = {"state": params["state"]} if "state" in params else {}
        error = self._authorize_error(params)
        if error is not None:
            answer |= {"error": error, "error_description": f"refused: {error}"}
        else:
            code = secrets.token_urlsafe(24)
            assert self.user is not None
            with self._lock:
                self._grants[code] = _Grant(
                    client_id=params["client_id"],
                    redirect_uri=redirect_uri,
                    code_challenge=params["code_challenge"],
                    nonce=params.get("nonce"),
                    scope=params.get("scope", ""),
                    user=self.user,
                )
            answer["code"] = code
        return RedirectResponse(f"{redirect_uri}?{urlencode(answer)}", status_code=302)

    def _authorize_error(self, params: dict[str, str]) -> str | None:
        if self.deny:
            return self.deny
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        if "openid" not in params.get("scope", "").split():
            return "invalid_scope"
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            return "invalid_request"  # this provider requires PKCE, as it should
        return "login_required" if self.user is None else None

    async def _token(self, request: Request) -> Response:
        form = {key: str(value) for key, value in (await request.form()).items()}
        client_id, secret, method = _client_credentials(request, form)
        self.token_requests.append(TokenRequest(form=form, auth_method=method))
        if (
            method not in self.auth_methods
            or client_id != self.client_id
            or not secrets.compare_digest(secret, self.client_secret)
        ):
            return _token_error("invalid_client", status=401)
        if form.get("grant_type") != "authorization_code":
            return _token_error("unsupported_grant_type")
        with self._lock:
            grant = self._grants.pop(form.get("code", ""), None)  # single use
        if grant is None:
            return _token_error("invalid_grant", "the code is unknown or was used")
        if grant.client_id != client_id or grant.redirect_uri != form.get("redirect_uri"):
            return _token_error("invalid_grant", "the redirect_uri does not match")
        if _s256(form.get("code_verifier", "")) != grant.code_challenge:
            return _token_error("invalid_grant", "PKCE verification failed")
        access_token = secrets.token_urlsafe(24)
        with self._lock:
            self._access[access_token] = grant.user
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": self.id_token(grant),
                "scope": grant.scope,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def _userinfo(self, request: Request) -> Response:
        self.userinfo_requests += 1
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        user = self._access.get(token) if scheme.lower() == "bearer" else None
        if user is None:
            return _token_error("invalid_token", status=401)
        return JSONResponse(user.claims())


def _client_credentials(request: Request, form: dict[str, str]) -> tuple[str, str, str]:
    """(client id, secret, method) from a Basic header (RFC 6749 2.3.1) or the form."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic":
        client_id, _, secret = base64.b64decode(encoded).decode().partition(":")
        return unquote(client_id), unquote(secret), "client_secret_basic"
    if "client_secret" in form:
        return form.get("client_id", ""), form["client_secret"], "client_secret_post"
    return form.get("client_id", ""), "", "none"


def _token_error(error: str, description: str = "", *, status: int = 400) -> Response:
    body = {"error": error} | ({"error_description": description} if description else {})
    return JSONResponse(body, status_code=status)


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
