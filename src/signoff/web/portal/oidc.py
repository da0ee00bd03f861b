"""Signing in with the organisation's identity provider (OpenID Connect).

``/auth/oidc/login`` sends the browser to the provider with state, nonce and a PKCE challenge;
what is needed to check the answer travels in a sealed, short-lived cookie, so no server holds
it. ``/auth/oidc/callback`` checks the answer (``services/oidc.py``), finds or creates the
person, syncs their teams from the groups claim, and starts a session as a password sign-in
would, the authenticator app included when one is required.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse, Response

from signoff import errors
from signoff.domain import oidc as oidc_domain
from signoff.domain.accounts import Method
from signoff.domain.principals import Context, Principal
from signoff.services import accounts, oidc
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.render import context_of, page, safe_next
from signoff.web.portal.signin import after_sign_in, keep_session

router = APIRouter(include_in_schema=False)
FLOW_COOKIE = "signoff_oidc"
FLOW_PATH = "/auth/oidc"
FLOW_SECONDS = 600


@router.get("/auth/oidc/login")
async def begin(request: Request, runtime: RuntimeDep) -> Response:
    client = _client(runtime)
    try:
        url, flow = await client.begin(safe_next(request.query_params.get("next")))
    except errors.OidcFailed as exc:
        return _refused(request, runtime, exc)
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        FLOW_COOKIE,
        flow.seal(runtime.keys.secret_key),
        max_age=FLOW_SECONDS,
        path=FLOW_PATH,
        httponly=True,
        secure=runtime.settings.secure_cookies,
        samesite="lax",  # the provider's redirect back is a cross-site navigation
    )
    return response


@router.get("/auth/oidc/callback")
async def callback(request: Request, runtime: RuntimeDep) -> Response:
    client = _client(runtime)
    sealed = request.cookies.get(FLOW_COOKIE)
    try:
        if not sealed:
            raise errors.OidcFailed("the sign-in took too long or started elsewhere; start again")
        flow = oidc_domain.OidcFlow.unseal(runtime.keys.secret_key, sealed, FLOW_SECONDS)
        identity = await client.complete(flow, dict(request.query_params))
        user = await run_in_threadpool(
            oidc.sign_in_with_oidc, runtime.db, _oidc_context(request), identity, runtime.settings
        )
        signed = await run_in_threadpool(
            accounts.start_session,
            runtime.db,
            context_of(request),
            runtime.rules,
            user,
            Method.OIDC,
            request.headers.get("user-agent", ""),
        )
    except (errors.Unauthenticated, errors.PermissionDenied, errors.Conflict) as exc:
        response = _refused(request, runtime, exc)
    else:
        response = after_sign_in(signed.session.stage, flow.next_url)
        keep_session(response, runtime, signed.token)
    response.delete_cookie(FLOW_COOKIE, path=FLOW_PATH)
    return response


def _client(runtime: Runtime) -> oidc.OidcClient:
    if runtime.oidc is None:
        raise errors.NotFound("sign-in with an identity provider is not set up on this server")
    return runtime.oidc


def _oidc_context(request: Request) -> Context:
    """Signoff itself acts on what the identity provider vouched for (the audit's actor)."""
    anonymous = context_of(request)
    return Context(
        principal=Principal(system="oidc"),
        request_id=anonymous.request_id,
        client_addr=anonymous.client_addr,
    )


def _refused(request: Request, runtime: Runtime, exc: errors.SignoffError) -> Response:
    return page(request, runtime, "login.html", status_code=exc.status, error=exc.detail, next="/")
