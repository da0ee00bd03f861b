"""The approver's pages: the inbox (``/approvals``, also the home page) and one approval
(``/approvals/<id>``), where a person who may decide it approves or rejects.

Deciding is a plain form post (CSRF-checked; no JavaScript needed), answered with a redirect
to the approval's page (POST/redirect/GET), or with the page again, status 422, listing what
to fix next to each field. A decision that arrives after the approval settled is answered
409 with who settled it and when.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from signoff import errors, schemas
from signoff.domain import approvals, forms
from signoff.domain.approvals import Status, Verdict
from signoff.services import approval_settlement, inbox
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal import security
from signoff.web.portal.render import SignedInDep, Visitor, context_of, page, redirect

router = APIRouter(include_in_schema=False)

STATUS_CHOICES = ("pending", "approved", "rejected", "expired", "canceled", "any")
ALL_STATUSES = "any"
Text = Annotated[str, Query(max_length=200)]


@router.get("/", response_class=HTMLResponse)
@router.get("/approvals", response_class=HTMLResponse)
async def inbox_page(
    request: Request,
    runtime: RuntimeDep,
    visitor: SignedInDep,
    view: str = "",
    status: str = "pending",
    label: Text = "",
    team: Text = "",
    requester: Text = "",
    q: Text = "",
    sort: str = "",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> HTMLResponse:
    query = inbox.Query(
        view=inbox.View(view) if view in set(inbox.View) else inbox.View.TO_DECIDE,
        status=None if status == ALL_STATUSES else _status(status),
        label=label.strip(),
        team=team.strip(),
        requester=requester.strip(),
        text=q.strip(),
        latest_first=sort == "latest",
        cursor=cursor or None,
    )
    ctx = context_of(request, visitor)
    found = await run_in_threadpool(inbox.list_inbox, runtime.db, ctx, query)
    filtered = bool(query.label or query.team or query.requester or query.text)
    params = {
        "view": query.view.value,
        "status": status if status in STATUS_CHOICES else "pending",
        "label": query.label,
        "team": query.team,
        "requester": query.requester,
        "q": query.text,
        "sort": "latest" if query.latest_first else "",
    }

    def link(**changes: str) -> str:
        """This inbox's URL with ``changes`` (a new page, another status), empty ones left out."""
        merged = {key: value for key, value in (params | changes).items() if value}
        return "/approvals?" + urlencode(merged)

    return page(
        request,
        runtime,
        "inbox.html",
        visitor=visitor,
        inbox=found,
        filtered=filtered,
        statuses=STATUS_CHOICES,
        views=inbox.View,
        count_cap=inbox.COUNT_CAP,
        search_limit=inbox.SEARCH_SCAN_LIMIT,
        status_values=list(Status),
        params=params,
        link=link,
    )


def _status(value: str) -> Status:
    return Status(value) if value in set(Status) else Status.PENDING


@router.get("/approvals/{approval_id}", response_class=HTMLResponse)
async def approval_page(
    approval_id: str, request: Request, runtime: RuntimeDep, visitor: SignedInDep
) -> HTMLResponse:
    return await _approval_page(request, runtime, visitor, approval_id)


@router.post("/approvals/{approval_id}", response_class=HTMLResponse)
async def decide(
    approval_id: str, request: Request, runtime: RuntimeDep, visitor: SignedInDep
) -> Response:
    posted = await security.checked_form(request, runtime.keys.secret_key, visitor.session_id)
    fields = forms.posted_values(posted.multi_items())
    ctx = context_of(request, visitor)
    shown = await run_in_threadpool(inbox.view_approval, runtime.db, ctx, approval_id)
    verdict_sent = fields.get("verdict")
    if verdict_sent not in ("approve", "reject"):
        problems = {"": "choose Approve or Reject"}
        return _render(request, runtime, visitor, shown, fields, problems, status_code=422)
    verdict = Verdict(verdict_sent)
    comment = fields.get("comment", "")
    decision = forms.read(
        shown.approval.policy, verdict, comment if isinstance(comment, str) else "", fields
    )
    if decision.errors:
        return _render(request, runtime, visitor, shown, fields, decision.errors, verdict=verdict)
    spec = schemas.DecisionCreate(verdict=verdict, comment=decision.comment, form=decision.form)
    try:
        await run_in_threadpool(
            lambda: approval_settlement.decide(
                runtime.db, ctx, approval_id, spec, channel=approvals.Channel.WEB
            )
        )
    except errors.AlreadyDecided:
        late = await run_in_threadpool(inbox.view_approval, runtime.db, ctx, approval_id)
        return _render(request, runtime, visitor, late, {}, {}, status_code=409, late=True)
    except (errors.PermissionDenied, errors.Conflict) as exc:
        problems = {"": exc.detail or exc.title}
        return _render(request, runtime, visitor, shown, fields, problems, status_code=409)
    except errors.InvalidInput as exc:  # what the page's own reading did not foresee
        return _render(request, runtime, visitor, shown, fields, {"": exc.detail}, verdict=verdict)
    return redirect(f"/approvals/{approval_id}?decided={verdict.value}#outcome")


async def _approval_page(
    request: Request, runtime: Runtime, visitor: Visitor, approval_id: str
) -> HTMLResponse:
    ctx = context_of(request, visitor)
    shown = await run_in_threadpool(inbox.view_approval, runtime.db, ctx, approval_id)
    # "Your decision is recorded" only for whoever has a decision on it: the parameter alone
    # (a link anyone can type) says nothing.
    decided = request.query_params.get("decided")
    me = visitor.principal.user.id if visitor.principal and visitor.principal.user else None
    if not any(d.user_id == me for d in shown.approval.decisions):
        decided = None
    return _render(request, runtime, visitor, shown, {}, {}, just_decided=decided)


def _render(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    shown: inbox.ApprovalView,
    posted: forms.Values,
    problems: dict[str, str],
    *,
    status_code: int | None = None,
    verdict: Verdict | None = None,
    late: bool = False,
    just_decided: str | None = None,
) -> HTMLResponse:
    approval = shown.approval
    return page(
        request,
        runtime,
        "approval.html",
        visitor=visitor,
        status_code=status_code or (422 if problems else 200),
        shown=shown,
        approval=approval,
        fields=forms.fields_of(approval.policy.form),
        posted=posted,
        problems=problems,
        verdict=verdict.value if verdict else "",
        late=late,
        just_decided=just_decided if just_decided in ("approve", "reject") else None,
        max_comment=forms.MAX_COMMENT,
        settled_by=approvals.settled_by(approval, shown.people),
    )
