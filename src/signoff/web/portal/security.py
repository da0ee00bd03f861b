"""What keeps the portal's pages safe in a browser: security headers on every answer, CSRF
tokens on every form, and cookies with the right attributes.

CSRF tokens are HMACs under the server key over a random per-browser cookie and the session
id, checked on every POST (the "signed double-submit cookie" of OWASP's cheat sheet), and a
cross-site ``Origin`` is refused outright. Session cookies are SameSite=Lax: an emailed link
opened from a webmail tab arrives signed in, but no other site can post with them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from urllib.parse import urlsplit

from fastapi import Request, Response
from starlette.datastructures import FormData
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from signoff import errors

SESSION_COOKIE = "signoff_session"
CSRF_COOKIE = "signoff_csrf"
CSRF_FIELD = "csrf_token"

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
_PAGE_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),  # links carry secrets: never leak them onward
    (b"cross-origin-opener-policy", b"same-origin"),
]


class SecurityHeadersMiddleware:
    """Headers on every answer; pages (not the API, not static files) are also never cached,
    since they show what a signed-in person may see."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_page = not scope["path"].startswith(("/v1/", "/static/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.extend(_PAGE_HEADERS)
                if is_page:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


def csrf_token(request: Request, secret_key: str, session_id: str = "") -> str:
    """The token for this browser's forms (the CSRF cookie is set by ``ensure_csrf_cookie``)."""
    browser = request.state.csrf_browser
    mac = hmac.new(secret_key.encode(), f"csrf:{browser}:{session_id}".encode(), hashlib.sha256)
    return mac.hexdigest()


def ensure_csrf_cookie(request: Request) -> None:
    """Give this browser its CSRF value (kept on ``request.state`` for ``csrf_token``)."""
    value = request.cookies.get(CSRF_COOKIE, "")
    request.state.csrf_browser_is_new = not (value and len(value) <= 64 and value.isalnum())
    request.state.csrf_browser = (
        secrets.token_hex(16) if request.state.csrf_browser_is_new else value
    )


def set_csrf_cookie(request: Request, response: Response, *, secure: bool) -> None:
    if getattr(request.state, "csrf_browser_is_new", False):
        response.set_cookie(
            CSRF_COOKIE,
            request.state.csrf_browser,
            httponly=True,
            secure=secure,
            samesite="strict",
            path="/",
        )


async def checked_form(request: Request, secret_key: str, session_id: str = "") -> FormData:
    """The posted form, after the CSRF checks; ``errors.CsrfFailed`` otherwise."""
    origin = request.headers.get("origin")
    if origin and origin != "null" and urlsplit(origin).netloc != request.headers.get("host"):
        raise errors.CsrfFailed("the form was posted from another site")
    form = await request.form()
    ensure_csrf_cookie(request)
    sent = str(form.get(CSRF_FIELD, ""))
    if request.state.csrf_browser_is_new or not hmac.compare_digest(
        sent, csrf_token(request, secret_key, session_id)
    ):
        raise errors.CsrfFailed()
    return form


def set_session_cookie(response: Response, token: str, *, secure: bool, max_age: int) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        httponly=True,
        secure=secure,
        samesite="lax",
        path="/",
    )


def clear_session_cookie(response: Response, *, secure: bool) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", secure=secure, httponly=True, samesite="lax")
