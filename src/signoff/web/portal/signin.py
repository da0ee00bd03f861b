"""Signing in and out: password, second factor, authenticator enrolment, sign-out.

Each step that succeeds issues a new session secret (``services/accounts.py``), so the cookie
is replaced at every step. Failures re-render the form with the service's message; nothing
here decides what is allowed.
"""

from __future__ import annotations

from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors
from signoff.domain.accounts import Stage
from signoff.services import accounts
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal import security
from signoff.web.portal.render import (
    VisitorDep,
    context_of,
    page,
    redirect,
    safe_next,
)

router = APIRouter(include_in_schema=False)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    if visitor.session is not None:
        return after_sign_in(visitor.session.stage, request.query_params.get("next"))
    return page(
        request,
        runtime,
        "login.html",
        next=safe_next(request.query_params.get("next")),
        notice=_NOTICES.get(request.query_params.get("done", "")),
    )


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request, runtime: RuntimeDep) -> Response:
    form = await security.checked_form(request, runtime.keys.secret_key)
    email, next_url = str(form.get("email", "")), safe_next(str(form.get("next", "")))
    try:
        runtime.throttle.check(request.client.host if request.client else None)
        signed = await run_in_threadpool(
            accounts.sign_in,
            runtime.db,
            context_of(request),
            runtime.rules,
            email=email,
            password=str(form.get("password", "")),
            user_agent=request.headers.get("user-agent", ""),
        )
    except (errors.Unauthenticated, errors.AccountDisabled, errors.TooManyAttempts) as exc:
        return page(
            request,
            runtime,
            "login.html",
            status_code=exc.status,
            error=exc.detail,
            email=email,
            next=next_url,
        )
    response = after_sign_in(signed.session.stage, next_url)
    keep_session(response, runtime, signed.token)
    return response


@router.get("/login/code", response_class=HTMLResponse)
def code_page(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    if not visitor.is_in(Stage.MFA):
        return redirect("/login")
    next_url = safe_next(request.query_params.get("next"))
    return page(request, runtime, "code.html", visitor=visitor, next=next_url)


@router.post("/login/code", response_class=HTMLResponse)
async def code(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    if not visitor.is_in(Stage.MFA) or visitor.token is None:
        return redirect("/login")
    form = await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)
    next_url = safe_next(str(form.get("next", "")))
    try:
        runtime.throttle.check(request.client.host if request.client else None)
        signed = await run_in_threadpool(
            accounts.second_factor,
            runtime.db,
            context_of(request),
            runtime.rules,
            visitor.token,
            str(form.get("code", "")),
        )
    except errors.TooManyAttempts as exc:
        return page(request, runtime, "login.html", status_code=429, error=exc.detail)
    except errors.Unauthenticated as exc:
        return page(
            request,
            runtime,
            "code.html",
            status_code=exc.status,
            visitor=visitor,
            error=exc.detail,
            next=next_url,
        )
    response = redirect(next_url)
    keep_session(response, runtime, signed.token)
    return response


@router.get("/account/mfa", response_class=HTMLResponse)
async def enrol_page(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    if not visitor.is_in(Stage.ENROL, Stage.ACTIVE) or visitor.token is None:
        return redirect("/login")
    try:
        enrolment = await run_in_threadpool(
            accounts.begin_enrolment, runtime.db, runtime.rules, visitor.token
        )
    except errors.Conflict:
        # Set up meanwhile (in another browser, say): this session owes the code instead.
        if visitor.is_in(Stage.ENROL):
            await run_in_threadpool(
                accounts.sign_out, runtime.db, context_of(request), visitor.token
            )
            response = redirect("/login")
            security.clear_session_cookie(response, secure=runtime.settings.secure_cookies)
            return response
        return redirect("/")
    return page(request, runtime, "enrol.html", visitor=visitor, enrolment=enrolment)


@router.post("/account/mfa", response_class=HTMLResponse)
async def enrol(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    if not visitor.is_in(Stage.ENROL, Stage.ACTIVE) or visitor.token is None:
        return redirect("/login")
    form = await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)
    try:
        signed, codes = await run_in_threadpool(
            accounts.confirm_enrolment,
            runtime.db,
            context_of(request, visitor),
            runtime.rules,
            visitor.token,
            str(form.get("code", "")),
        )
    except (errors.Unauthenticated, errors.Conflict) as exc:
        enrolment = await run_in_threadpool(
            accounts.begin_enrolment, runtime.db, runtime.rules, visitor.token
        )
        return page(
            request,
            runtime,
            "enrol.html",
            status_code=exc.status,
            visitor=visitor,
            enrolment=enrolment,
            error=exc.detail,
        )
    response = page(request, runtime, "recovery_codes.html", visitor=visitor, codes=codes)
    keep_session(response, runtime, signed.token)
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep, visitor: VisitorDep) -> Response:
    """Sign out, also half way through signing in (to start again as someone else)."""
    await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)
    if visitor.token:
        await run_in_threadpool(
            accounts.sign_out, runtime.db, context_of(request, visitor), visitor.token
        )
    response = redirect("/login?done=signed-out")
    security.clear_session_cookie(response, secure=runtime.settings.secure_cookies)
    return response


_NOTICES = {
    "signed-out": "You are signed out.",
    "reset": "Your password is changed. Sign in with it.",
}


def after_sign_in(stage: Stage, next_url: str | None) -> Response:
    target = safe_next(next_url)
    if stage is Stage.MFA:
        return redirect(f"/login/code?next={quote(target, safe='/')}")
    if stage is Stage.ENROL:
        return redirect("/account/mfa")
    return redirect(target)


def keep_session(response: Response, runtime: Runtime, token: str) -> None:
    security.set_session_cookie(
        response,
        token,
        secure=runtime.settings.secure_cookies,
        max_age=runtime.settings.session_max_seconds,
    )
