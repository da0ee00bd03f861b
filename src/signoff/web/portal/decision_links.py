"""The page behind an emailed Approve or Reject link (``/decide/<token>``).

GET shows the request and asks to confirm, with a comment box and the policy's decision form;
it changes nothing, so a mail scanner or a link preview that fetches it decides nothing. POST
(CSRF-checked) decides. A link that cannot decide shows why, with the status that says so:
404 not genuine, 410 past the deadline, 409 already decided, 403 not this visitor's to use.
When the policy says the link needs its approver signed in, a visitor who is not is sent to
sign in and back.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors
from signoff.domain import approvals, forms, policies
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

# Why a link cannot decide: shown as a page with the error's own status.
_REFUSALS = (errors.NotFound, errors.Conflict, errors.InvalidLink, errors.PermissionDenied)


@router.get("/decide/{token}", response_class=HTMLResponse)
async def decision_page(
    token: str, request: Request, runtime: RuntimeDep, visitor: VisitorDep
) -> Response:
    try:
        link = await run_in_threadpool(
            decision_links.open_link,
            runtime.db,
            _context(request, visitor),
            runtime.keys.secret_key,
            token,
        )
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
    ctx = _context(request, visitor)
    secret_key = runtime.keys.secret_key
    try:
        link = await run_in_threadpool(decision_links.open_link, runtime.db, ctx, secret_key, token)
        comment = fields.get("comment", "")
        decision = forms.read(
            link.approval.policy, link.verdict, comment if isinstance(comment, str) else "", fields
        )
        if decision.errors:
            return _confirm_page(request, runtime, visitor, link, fields, decision.errors)
        approval = await run_in_threadpool(
            lambda: decision_links.decide(
                runtime.db, ctx, secret_key, token, comment=decision.comment, form=decision.form
            )
        )
    except errors.Unauthenticated:
        return sign_in_redirect(request.url.path)
    except _REFUSALS as exc:
        return error_page(request, runtime, exc, visitor)
    except errors.InvalidInput as exc:  # what the page's own reading did not foresee
        return _confirm_page(request, runtime, visitor, link, fields, {"": exc.detail})
    approved = sum(1 for d in approval.decisions if d.verdict is Verdict.APPROVE)
    return page(
        request,
        runtime,
        "decided.html",
        visitor=visitor,
        approval=approval,
        verdict=link.verdict.value,
        approvals_missing=max(0, approval.policy.quorum - approved),
    )


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
) -> HTMLResponse:
    approval = link.approval
    context, more = approvals.readable_context(approval.context, max_items=100, max_chars=2000)
    fields = forms.fields_of(approval.policy.form) if link.verdict is Verdict.APPROVE else []
    return page(
        request,
        runtime,
        "decide.html",
        visitor=visitor,
        status_code=422 if problems else 200,
        approval=approval,
        approver=link.approver,
        verdict=link.verdict.value,
        context_rows=context,
        context_more=more,
        rules=policies.rules_in_words(approval.policy.rules_json()),
        fields=fields,
        posted=posted or {},
        problems=problems or {},
        max_comment=forms.MAX_COMMENT,
    )
