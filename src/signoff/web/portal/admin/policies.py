"""Named policies: who decides and by which rules, for approvals that name a policy.

The form holds what ``PUT /v1/policies/{name}`` takes; it is read into the same
``schemas.PolicyCreate`` and written by the same service, so a rule the service refuses is
shown beside its field in the service's words.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData

from signoff import errors, schemas
from signoff.domain import json_text
from signoff.domain import policies as rules
from signoff.domain.policies import ApproverRef, NamedPolicy
from signoff.services import policies
from signoff.web.deps import Runtime, RuntimeDep
from signoff.web.portal.admin import pages
from signoff.web.portal.admin.pages import AdminDep
from signoff.web.portal.render import Visitor, context_of

router = APIRouter()

FIELDS = (
    "name",
    "description",
    "approvers",
    "quorum",
    "rejections_to_reject",
    "requester_can_decide",
    "comment_required",
    "link_requires_login",
    "timeout",
    "on_timeout",
    "reminders",
    "escalation",
    "escalation_approvers",
    "form",
)
_CHECKBOXES = ("requester_can_decide", "comment_required", "link_requires_login")


@router.get("/policies", response_class=HTMLResponse)
def policies_page(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    cursor = request.query_params.get("after") or None
    found, next_cursor = policies.list_policies(
        runtime.db, context_of(request, visitor), cursor=cursor, limit=50
    )
    return pages.show(
        request,
        runtime,
        visitor,
        "policies.html",
        section="policies",
        policies=found,
        next_url=f"/admin/policies?after={next_cursor}" if next_cursor else None,
        in_words=_in_words,
    )


@router.get("/policies/_new", response_class=HTMLResponse)
def new_policy(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> HTMLResponse:
    return _form(request, runtime, visitor, None, _DEFAULTS)


@router.post("/policies", response_class=HTMLResponse)
async def create_policy(request: Request, runtime: RuntimeDep, visitor: AdminDep) -> Response:
    form = await pages.posted(request, runtime, visitor)
    posted = _posted(form)
    try:
        rules.check_policy_name(posted["name"])  # in its own words, not the schema's pattern
        spec = schemas.PolicyCreate.model_validate(_body(posted))
        created = await run_in_threadpool(
            policies.create, runtime.db, context_of(request, visitor), spec
        )
    except (ValidationError, errors.InvalidInput) as exc:
        return _form(request, runtime, visitor, None, posted, _problems(exc, posted))
    except errors.Conflict as exc:
        return _form(request, runtime, visitor, None, posted, {"name": exc.detail}, exc.status)
    return pages.done(f"/admin/policies/{created.name}", "policy-created")


@router.get("/policies/{name}", response_class=HTMLResponse)
def policy_page(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    policy = policies.get(runtime.db, context_of(request, visitor), name)
    return pages.show(
        request,
        runtime,
        visitor,
        "policy.html",
        section="policies",
        policy=policy,
        words=_in_words(policy),
        timeout=rules.format_duration(policy.timeout_seconds) if policy.timeout_seconds else None,
        form_json=json.dumps(policy.rules.form, indent=2) if policy.rules.form else None,
    )


@router.get("/policies/{name}/edit", response_class=HTMLResponse)
def edit_policy(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    policy = policies.get(runtime.db, context_of(request, visitor), name)
    return _form(request, runtime, visitor, policy.name, _values_of(policy))


@router.post("/policies/{name}", response_class=HTMLResponse)
async def replace_policy(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    form = await pages.posted(request, runtime, visitor)
    posted = _posted(form) | {"name": name}
    try:
        body = _body(posted)
        body.pop("name")
        spec = schemas.PolicyReplace.model_validate(body)
        await run_in_threadpool(
            policies.replace, runtime.db, context_of(request, visitor), name, spec
        )
    except (ValidationError, errors.InvalidInput) as exc:
        return _form(request, runtime, visitor, name, posted, _problems(exc, posted))
    return pages.done(f"/admin/policies/{name}", "policy-saved")


@router.get("/policies/{name}/delete", response_class=HTMLResponse)
def confirm_delete(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> HTMLResponse:
    policy = policies.get(runtime.db, context_of(request, visitor), name)
    return pages.show(
        request,
        runtime,
        visitor,
        "confirm.html",
        section="policies",
        heading=f"Delete policy {policy.name}?",
        explanation="Approvals already made from it keep their copy of its rules; new "
        "approvals that name it are refused with unknown_policy.",
        action=f"/admin/policies/{policy.name}/delete",
        button="Delete policy",
        back=f"/admin/policies/{policy.name}",
    )


@router.post("/policies/{name}/delete", response_class=HTMLResponse)
async def delete_policy(
    name: str, request: Request, runtime: RuntimeDep, visitor: AdminDep
) -> Response:
    await pages.posted(request, runtime, visitor)
    await run_in_threadpool(policies.delete, runtime.db, context_of(request, visitor), name)
    return pages.done("/admin/policies", "policy-deleted")


_DEFAULTS = {
    "quorum": "1",
    "rejections_to_reject": "1",
    "timeout": "",
    "on_timeout": "",
    "reminders": "",
    "escalation": "",
    "escalation_approvers": "",
}


def _posted(form: FormData) -> dict[str, str]:
    posted = {field: pages.text(form, field) for field in FIELDS if field not in _CHECKBOXES}
    return posted | {field: "on" if form.get(field) == "on" else "" for field in _CHECKBOXES}


def _lines(text: str) -> list[str]:
    """The items of a box that takes one a line or comma-separated, blanks left out."""
    items = (item.strip() for item in text.replace(",", "\n").splitlines())
    return [item for item in items if item]


def _body(posted: dict[str, str]) -> dict[str, Any]:
    """The posted form as the API's JSON body; ``InvalidInput`` when the form's JSON is not."""
    escalation = None
    if posted["escalation"] or posted["escalation_approvers"]:
        escalation = {
            "after": posted["escalation"],
            "approvers": _lines(posted["escalation_approvers"]),
        }
    try:
        form = json_text.loads(posted["form"]) if posted["form"] else None
    except json_text.NotJson as exc:
        raise errors.InvalidInput(f"the decision form is not JSON: {exc}", field="form") from exc
    return {
        "name": posted["name"],
        "description": posted["description"],
        "approvers": _lines(posted["approvers"]),
        "quorum": posted["quorum"],
        "rejections_to_reject": posted["rejections_to_reject"],
        "requester_can_decide": bool(posted["requester_can_decide"]),
        "comment_required": bool(posted["comment_required"]),
        "link_requires_login": bool(posted["link_requires_login"]),
        "timeout": posted["timeout"] or None,
        "on_timeout": posted["on_timeout"] or None,
        "reminders": _lines(posted["reminders"]) or None,
        "escalation": escalation,
        "form": form,
    }


def _problems(exc: ValidationError | errors.InvalidInput, posted: dict[str, str]) -> dict[str, str]:
    if isinstance(exc, errors.UnknownApprover):
        ref = exc.extra.get("approver")
        escalation = ref in _lines(posted["escalation_approvers"])
        if escalation and ref not in _lines(posted["approvers"]):
            return {"escalation_approvers": exc.detail}
        return {"approvers": exc.detail}
    return pages.problems_of(exc, FIELDS)


def _refs(refs: tuple[ApproverRef, ...]) -> list[str]:
    return [f"team:{a.name}" if a.kind == "team" else a.name for a in refs]


def _values_of(policy: NamedPolicy) -> dict[str, str]:
    timeout = policy.timeout_seconds
    escalation = policy.escalation
    return {
        "name": policy.name,
        "description": policy.description,
        "approvers": "\n".join(_refs(policy.approvers)),
        "quorum": str(policy.rules.quorum),
        "rejections_to_reject": str(policy.rules.rejections_to_reject),
        "requester_can_decide": "on" if policy.rules.requester_can_decide else "",
        "comment_required": "on" if policy.rules.comment_required else "",
        "link_requires_login": "on" if policy.rules.link_requires_login else "",
        "timeout": rules.format_duration(timeout) if timeout else "",
        "on_timeout": policy.on_timeout.value if policy.on_timeout else "",
        "reminders": ", ".join(rules.format_duration(r) for r in policy.reminders or ()),
        "escalation": rules.format_duration(escalation.after_seconds) if escalation else "",
        "escalation_approvers": "\n".join(_refs(escalation.approvers)) if escalation else "",
        "form": json.dumps(policy.rules.form, indent=2) if policy.rules.form else "",
    }


_OUTCOMES = {"reject": "it is rejected", "approve": "it is approved", "expire": "it expires"}


def _in_words(policy: NamedPolicy) -> list[str]:
    found = rules.rules_in_words(policy.rules.rules_json())
    if policy.rules.requester_can_decide:
        found.append("The requester may decide their own approval.")
    if policy.rules.link_requires_login:
        found.append("An emailed link decides only for an approver who is signed in.")
    if policy.timeout_seconds:
        after = f"Times out after {rules.format_duration(policy.timeout_seconds)}"
        outcome = _OUTCOMES[policy.on_timeout.value] if policy.on_timeout else None
        found.append(f"{after}: {outcome}." if outcome else f"{after}, as the request says.")
    if policy.reminders:
        times = ", ".join(rules.format_duration(r) for r in policy.reminders)
        found.append(f"Reminds whoever has not decided after {times}.")
    if policy.escalation:
        after = rules.format_duration(policy.escalation.after_seconds)
        found.append(f"Escalates after {after} to {', '.join(_refs(policy.escalation.approvers))}.")
    return found


def _form(
    request: Request,
    runtime: Runtime,
    visitor: Visitor,
    name: str | None,
    values: dict[str, str],
    problems: dict[str, str] | None = None,
    status_code: int = 422,
) -> HTMLResponse:
    return pages.show(
        request,
        runtime,
        visitor,
        "policy_form.html",
        section="policies",
        status_code=status_code if problems else 200,
        name=name,
        values=values,
        problems=problems or {},
    )
