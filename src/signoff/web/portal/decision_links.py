"""The page behind an emailed Approve or Reject link (``/decide/<token>``).

GET shows the approval as its own page does (``_approval.html``: the request's Markdown, the
context, the deadline, the policy and progress) and asks to confirm, with a comment box and
the policy's decision form; it changes nothing, so a mail scanner or a link preview that
fetches it decides nothing. POST (CSRF-checked) decides. A link that no longer decides (used,
the approval settled, past the deadline) still shows the approval, with why and how it ended,
under status 409 or 410; one that is no use at all says why: 404 not genuine, 403 not this
visitor's to use. When the policy says the link needs its approver signed in, a visitor who is
not is sent to sign in and back."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors
from signoff.domain import approvals, forms
from signoff.domain.approvals import Verdict
from signoff.domain.principals import Context
from signoff.services import decision_links
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal import security
from signoff.web.portal.render import (
    Visitor,
    VisitorDep,
    context_of,
    error_page,
    page,
    sign_in_redirect,
)

router = APIRouter(include_in_schema=False)

# Why a link is no use to this visitor at all: an error page with the error's own status.
# (One that no longer decides still shows its approval: ``OpenLink.refusal``.)
_REFUSALS = (errors.NotFound, errors.PermissionDenied)


@router.get("/decide/{token}", response_class=HTMLResponse)
async def decision_page(
    token: str, request: Request, runtime: RuntimeDep, visitor: VisitorDep
) -> Response:
    try:
        link = await _open(request, runtime, visitor, token)
    except errors.Unauthenticated:
        return sign_in_redirect(request.url.path)
    except _REFUSALS as exc:
        return error_page(request, runtime, exc, visitor)
    return _confirm_page(request, runtime, visitor, link)


@router.post("/decide/{token}", response_class=HTMLResponse)
async def decide(
    token: str, request: Request, runtime: RuntimeDep, visitor: VisitorDep
) -> Response:
    posted = await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)
    fields = forms.posted_values(posted.multi_items())
    try:
        link = await _open(request, runtime, visitor, token)
        if link.refusal is not None:
            return _confirm_page(request, runtime, visitor, link, late=True)
        comment = fields.get("comment", "")
        decision = forms.read(
            link.approval.policy, link.verdict, comment if isinstance(comment, str) else "", fields
        )
        if decision.errors:
            return _confirm_page(request, runtime, visitor, link, fields, decision.errors)
        approval = await run_in_threadpool(
            lambda: decision_links.decide(
                runtime.db,
                _context(request, visitor),
                runtime.keys.secret_key,
                token,
                comment=decision.comment,
                form=decision.form,
            )
        )
    except errors.Unauthenticated:
        return sign_in_redirect(request.url.path)
    except (errors.Conflict, errors.InvalidLink) as exc:
        return await _closed_since(request, runtime, visitor, token, exc)
    except _REFUSALS as exc:
        return error_page(request, runtime, exc, visitor)
    except errors.InvalidInput as exc:  # what the page's own reading did not foresee
        return _confirm_page(request, runtime, visitor, link, fields, {"": exc.detail})
    return page(
        request,
        runtime,
        "decided.html",
        visitor=visitor,
        approval=approval,
        verdict=link.verdict.value,
        settled_by=approvals.settled_by(approval, link.people | {link.approver.id: link.approver}),
    )


async def _open(
    request: Request, runtime: Runtime, visitor: Visitor, token: str
) -> decision_links.OpenLink:
    return await run_in_threadpool(
        decision_links.open_link,
        runtime.db,
        _context(request, visitor),
        runtime.keys.secret_key,
        token,
    )


async def _closed_since(
    request: Request, runtime: Runtime, visitor: Visitor, token: str, exc: errors.SignoffError
) -> HTMLResponse:
    """A link that stopped deciding between its opening and its use (another approver
    settled the approval meanwhile): its page, saying how the approval ended."""
    link = await _open(request, runtime, visitor, token)
    if link.refusal is None:
        return error_page(request, runtime, exc, visitor)
    return _confirm_page(request, runtime, visitor, link, late=True)


def _context(request: Request, visitor: Visitor) -> Context:
    """The visitor as the service sees them: who they are once fully signed in (with their
    second factor), and anonymous before that."""
    return context_of(request, visitor if visitor.is_signed_in else None)


def _confirm_page(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    link: decision_links.OpenLink,
    posted: forms.Values | None = None,
    problems: dict[str, str] | None = None,
    *,
    late: bool = False,
) -> HTMLResponse:
    """The link's page: the approval and the form to confirm the decision; or, once the link
    no longer decides, why not and how the approval ended, with the refusal's status (and,
    ``late``, that the decision just posted was not recorded)."""
    approval = link.approval
    fields = forms.fields_of(approval.policy.form) if link.verdict is Verdict.APPROVE else []
    status = link.refusal.status if link.refusal else 422 if problems else 200
    return page(
        request,
        runtime,
        "decide.html",
        visitor=visitor,
        status_code=status,
        approval=approval,
        approver=link.approver,
        verdict=link.verdict.value,
        refusal=link.refusal,
        late=late,
        settled_by=approvals.settled_by(approval, link.people),
        fields=fields,
        posted=posted or {},
        problems=problems or {},
        max_comment=forms.MAX_COMMENT,
    )
