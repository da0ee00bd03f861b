"""What every admin page shares: who may see them, reading their forms, and answering.

Admin pages call the services with the signed-in admin's context, so what is allowed and what
is audited is the services' business; the check here only turns a member away before a page
shows anything (some listings, such as teams, are open to members through the API).

Forms post and redirect (POST/redirect/GET) to a page that says what was done: the redirect
carries a key of ``NOTICES``, never text of its own, so nobody can make a page say something
through a link. A refused form is shown again with the service's words beside the field they
are about. Pages showing a secret once (a new API key, an invitation link) answer the POST
itself: the secret never travels in a URL, and pages are never cached.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from signoff import errors
from signoff.web.deps import Runtime
from signoff.web.portal import render, security
from signoff.web.portal.render import SignedInDep, Visitor

NOTICES = {
    "invited": "The invitation is sent.",
    "resent": "A new invitation link is sent; earlier links no longer work.",
    "invitation-revoked": "The invitation is revoked.",
    "role-changed": "The role is changed; they sign in again.",
    "disabled": "The account is disabled: its sessions ended and its API keys stopped.",
    "enabled": "The account is enabled again.",
    "renamed": "The name is changed.",
    "team-created": "The team is created.",
    "member-added": "The member is added.",
    "member-removed": "The member is removed.",
    "team-deleted": "The team is deleted.",
    "service-account-created": "The service account is created. Create a key for it below.",
    "key-revoked": "The key is revoked; it stops working at once.",
    "policy-created": "The policy is created.",
    "policy-saved": "The policy is saved. Approvals already made from it keep their copy.",
    "policy-deleted": "The policy is deleted.",
    "subscription-created": "The subscription is created.",
    "subscription-saved": "The subscription is saved.",
    "subscription-enabled": "The subscription is enabled.",
    "subscription-disabled": "The subscription is disabled: matching events are not sent.",
    "subscription-deleted": "The subscription is deleted.",
    "redriven": "The delivery is pending again and is tried at once.",
    "redriven-all": "{count} dead deliveries are pending again and are tried at once.",
}


async def signed_in_admin(visitor: SignedInDep) -> Visitor:
    if visitor.principal is None or not visitor.principal.is_admin:
        raise errors.PermissionDenied("these pages are for admins")
    return visitor


AdminDep = Annotated[Visitor, Depends(signed_in_admin)]


def show(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    template: str,
    *,
    section: str,
    status_code: int = 200,
    **values: Any,
) -> HTMLResponse:
    """An admin page, with the notice its redirect asked for."""
    notice = NOTICES.get(request.query_params.get("done", ""))
    count = request.query_params.get("count", "")
    if notice and "{count}" in notice:
        notice = notice.format(count=int(count)) if count.isdigit() and len(count) < 10 else None
    values.setdefault("notice", notice)
    return render.page(
        request,
        runtime,
        f"admin/{template}",
        visitor=visitor,
        status_code=status_code,
        section=section,
        **values,
    )


async def posted(request: Request, runtime: Runtime, visitor: Visitor) -> FormData:
    """The form, once its CSRF token checks out (``errors.CsrfFailed`` otherwise)."""
    return await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)


def text(form: FormData, name: str) -> str:
    value = form.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def done(url: str, notice: str, count: int | None = None) -> RedirectResponse:
    assert notice in NOTICES, notice
    separator = "&" if "?" in url else "?"
    counted = f"&count={count}" if count is not None else ""
    return render.redirect(f"{url}{separator}done={notice}{counted}")


def problems_of(
    exc: errors.InvalidInput | ValidationError, fields: Collection[str]
) -> dict[str, str]:
    """What was wrong, by form field (``""``: the form as a whole), in the service's words."""
    if isinstance(exc, errors.InvalidInput):
        field = _field_of(str(exc.extra.get("field") or ""), fields)
        return {field: exc.detail}
    found: dict[str, str] = {}
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        field = _field_of(location[0] if location else "", fields)
        where = ".".join(location[1:])
        message = f"{where}: {error['msg']}" if where else error["msg"]
        found.setdefault(field, message.removeprefix("Value error, "))
    return found


def _field_of(name: str, fields: Collection[str]) -> str:
    first = re.split(r"[.\[]", name, maxsplit=1)[0]
    return first if first in fields else ""
