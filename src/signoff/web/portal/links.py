"""Pages behind emailed links: accepting an invitation, and resetting a password.

Opening a link (GET) only shows a form; nothing changes until the person posts it, so a mail
scanner or a link preview that fetches the URL uses nothing up.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from starlette.datastructures import FormData

from signoff import errors
from signoff.services import invitations
from signoff.web.deps import RuntimeDep
from signoff.web.portal import security
from signoff.web.portal.render import context_of, page, redirect
from signoff.web.portal.signin import after_sign_in, keep_session

router = APIRouter(include_in_schema=False)


@router.get("/invite/{token}", response_class=HTMLResponse)
async def invitation_page(token: str, request: Request, runtime: RuntimeDep) -> Response:
    # A link that no longer works is raised to the app's error page, which keeps the
    # navigation of whoever is signed in.
    invitation = await run_in_threadpool(
        invitations.open_invitation, runtime.db, runtime.keys.secret_key, token
    )
    return page(request, runtime, "invitation.html", invitation=invitation, rules=runtime.rules)


@router.post("/invite/{token}", response_class=HTMLResponse)
async def accept_invitation(token: str, request: Request, runtime: RuntimeDep) -> Response:
    form = await security.checked_form(request, runtime.keys.secret_key)
    password = str(form.get("password", ""))
    try:
        invitation = await run_in_threadpool(
            invitations.open_invitation, runtime.db, runtime.keys.secret_key, token
        )
        _check_typed_twice(form)
        signed = await run_in_threadpool(
            lambda: invitations.accept(
                runtime.db,
                context_of(request),
                runtime.rules,
                token,
                name=str(form.get("name", "")),
                password=password,
                user_agent=request.headers.get("user-agent", ""),
            )
        )
    except errors.InvalidInput as exc:
        return page(
            request,
            runtime,
            "invitation.html",
            status_code=422,
            invitation=invitation,
            rules=runtime.rules,
            name=str(form.get("name", "")),
            error=exc.detail,
        )
    response = after_sign_in(signed.session.stage, "/")
    keep_session(response, runtime, signed.token)
    return response


@router.get("/reset", response_class=HTMLResponse)
def reset_request_page(request: Request, runtime: RuntimeDep) -> Response:
    return page(request, runtime, "reset_request.html")


@router.post("/reset", response_class=HTMLResponse)
async def request_reset(request: Request, runtime: RuntimeDep) -> Response:
    form = await security.checked_form(request, runtime.keys.secret_key)
    email = str(form.get("email", ""))
    try:
        runtime.throttle.check(request.client.host if request.client else None)
    except errors.TooManyAttempts as exc:
        return page(request, runtime, "reset_request.html", status_code=429, error=exc.detail)
    await run_in_threadpool(
        lambda: invitations.request_password_reset(
            runtime.db,
            context_of(request),
            email=email,
            ttl=timedelta(seconds=runtime.settings.password_reset_ttl_seconds),
            secret_key=runtime.keys.secret_key,
        )
    )
    # The same answer whether or not the email has an account.
    return page(request, runtime, "reset_sent.html", email=email)


@router.get("/reset/{token}", response_class=HTMLResponse)
async def reset_page(token: str, request: Request, runtime: RuntimeDep) -> Response:
    user = await run_in_threadpool(
        invitations.open_password_reset, runtime.db, runtime.keys.secret_key, token
    )
    return page(request, runtime, "reset.html", user=user, rules=runtime.rules)


@router.post("/reset/{token}", response_class=HTMLResponse)
async def reset(token: str, request: Request, runtime: RuntimeDep) -> Response:
    form = await security.checked_form(request, runtime.keys.secret_key)
    password = str(form.get("password", ""))
    try:
        user = await run_in_threadpool(
            invitations.open_password_reset, runtime.db, runtime.keys.secret_key, token
        )
        _check_typed_twice(form)
        await run_in_threadpool(
            lambda: invitations.reset_password(
                runtime.db, context_of(request), runtime.rules, token, password=password
            )
        )
    except errors.InvalidInput as exc:
        return page(
            request,
            runtime,
            "reset.html",
            status_code=422,
            user=user,
            rules=runtime.rules,
            error=exc.detail,
        )
    response = redirect("/login?done=reset")
    security.clear_session_cookie(response, secure=runtime.settings.secure_cookies)
    return response


def _check_typed_twice(form: FormData) -> None:
    if str(form.get("password", "")) != str(form.get("password_again", "")):
        raise errors.WeakPassword("the two passwords differ", field="password_again")
