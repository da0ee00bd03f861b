"""Rendering portal pages, and knowing who looks at them.

Every page goes through ``page()``, which gives the template the visitor, a CSRF token for
its forms and the settings it shows; templates are Jinja2 with autoescaping on, so nothing a
requester or visitor typed is ever markup.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from signoff import errors
from signoff.domain import accounts, policies
from signoff.domain.principals import Context, Principal
from signoff.services import accounts as accounts_service
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal import markup, security, timing

log = logging.getLogger(__name__)

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent.parent / "templates")
TEMPLATES.env.filters["markdown"] = markup.markdown
TEMPLATES.env.filters["rules_in_words"] = policies.rules_in_words
TEMPLATES.env.filters["time_left"] = timing.time_left
TEMPLATES.env.filters["utc"] = timing.utc
TEMPLATES.env.tests["web_link"] = markup.is_web_link


@dataclass(frozen=True)
class Visitor:
    """Whoever looks at a page. ``session`` is set for a live session in any stage (also one
    still owing its second factor); only ``is_signed_in`` visitors may see anything."""

    token: str | None = None
    session: accounts.Session | None = None
    principal: Principal | None = None

    @property
    def session_id(self) -> str:
        return self.session.id if self.session else ""

    @property
    def is_signed_in(self) -> bool:
        return self.is_in(accounts.Stage.ACTIVE)

    def is_in(self, *stages: accounts.Stage) -> bool:
        return self.session is not None and self.session.stage in stages


class SignInRequired(Exception):
    """Raised by pages that need a signed-in person; answered with a redirect to sign in."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


async def current_visitor(request: Request, runtime: RuntimeDep) -> Visitor:
    security.ensure_csrf_cookie(request)
    token = request.cookies.get(security.SESSION_COOKIE)
    found = None
    if token:
        found = await run_in_threadpool(
            accounts_service.authenticate_session, runtime.db, runtime.rules, token
        )
    visitor = request.state.visitor = _visitor(token, found)
    return visitor


async def error_visitor(request: Request, runtime: Runtime, exc: errors.SignoffError) -> Visitor:
    """Who sees the error page for ``exc``: the visitor the page's route already knew, else
    whoever the session cookie names, read without marking the session seen; anonymous when
    that fails or the error is the database's, since an error page must render whatever else
    is broken."""
    known: Visitor | None = getattr(request.state, "visitor", None)
    token = request.cookies.get(security.SESSION_COOKIE)
    if known is not None or not token or isinstance(exc, errors.StoreUnavailable):
        return known or Visitor()
    try:
        found = await run_in_threadpool(
            accounts_service.find_session, runtime.db, runtime.rules, token
        )
    except errors.SignoffError:
        log.warning("error page shown without its visitor: the session lookup failed")
        return Visitor()
    return _visitor(token, found)


def _visitor(token: str | None, found: tuple[accounts.Session, Principal] | None) -> Visitor:
    if found is None:
        return Visitor(token=token)
    session, principal = found
    return Visitor(token=token, session=session, principal=principal)


async def signed_in(
    request: Request, visitor: Annotated[Visitor, Depends(current_visitor)]
) -> Visitor:
    """The visitor, who must be fully signed in (past the second factor and enrolment)."""
    if visitor.is_in(accounts.Stage.ENROL):
        raise SignInRequired("/account/mfa")
    if not visitor.is_signed_in:
        raise SignInRequired(request.url.path)
    return visitor


VisitorDep = Annotated[Visitor, Depends(current_visitor)]
SignedInDep = Annotated[Visitor, Depends(signed_in)]


def context_of(request: Request, visitor: Visitor | None = None) -> Context:
    """The services' context: the signed-in person, or anonymous before sign-in ends."""
    signed_in = visitor is not None and visitor.is_signed_in and visitor.principal is not None
    principal = visitor.principal if signed_in and visitor and visitor.principal else Principal()
    return Context(
        principal=principal,
        request_id=request.scope.get("state", {}).get("request_id"),
        client_addr=request.client.host if request.client else None,
    )


def page(
    request: Request,
    runtime: Runtime,
    template: str,
    *,
    visitor: Visitor | None = None,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    if not hasattr(request.state, "csrf_browser"):
        security.ensure_csrf_cookie(request)
    session_id = visitor.session_id if visitor else ""
    values |= {
        "visitor": visitor or Visitor(),
        "csrf_token": security.csrf_token(request, runtime.keys.secret_key, session_id),
        "settings": runtime.settings,
    }
    response = TEMPLATES.TemplateResponse(request, template, values, status_code=status_code)
    security.set_csrf_cookie(request, response, secure=runtime.settings.secure_cookies)
    return response


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None, default: str = "/") -> str:
    """Only a path on this site: never ``//host`` or a full URL (an open redirect)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


def sign_in_redirect(next_url: str) -> RedirectResponse:
    if next_url == "/account/mfa":
        return redirect(next_url)
    return redirect(f"/login?next={quote(safe_next(next_url), safe='/')}")


def error_page(
    request: Request, runtime: Runtime, exc: errors.SignoffError, visitor: Visitor | None = None
) -> HTMLResponse:
    return page(
        request,
        runtime,
        "error.html",
        visitor=visitor,
        status_code=exc.status,
        title=exc.title,
        detail=exc.detail,
    )
