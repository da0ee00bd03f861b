"""``signoff policies create | replace | list | show | delete``: named policies, on the
database directly.

Writing a policy is governance an admin does, like making teams, so these commands work as the
other admin commands do (``SIGNOFF_DATABASE_URL``, acting as ``system:cli``): policies can be
set up before any server runs or any key exists, and a policy may name teams made the same
way. Requesters read policies through the API (``GET /v1/policies``, ``client.policies``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from pydantic import BaseModel, ValidationError

from signoff import errors, schemas
from signoff.cli.local import database
from signoff.cli.output import emit, fail

if TYPE_CHECKING:
    from signoff.domain.policies import NamedPolicy

app = typer.Typer(help="Named policies that approvals refer to by name (database access).")

M = TypeVar("M", bound=BaseModel)
COLUMNS = ("name", "quorum", "comment_required", "timeout_seconds", "on_timeout", "description")
PAGE = 200
OPEN = "each request's"  # what a policy does not fix

Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
Name = Annotated[str, typer.Argument(help="The policy's name, a lower-case slug.")]
Approvers = Annotated[
    list[str],
    typer.Option("--approver", "-a", help="user email or id, or team:<name>; repeatable."),
]
Description = Annotated[str, typer.Option(help="What the policy is for.")]
Quorum = Annotated[int, typer.Option(help="Approvals needed to approve.")]
Rejections = Annotated[int, typer.Option(help="Rejections that reject (1: any).")]
RequesterCanDecide = Annotated[bool, typer.Option(help="May the requester decide?")]
CommentRequired = Annotated[bool, typer.Option(help="Must every decision carry a comment?")]
LinkRequiresLogin = Annotated[
    bool, typer.Option(help="Must an emailed decision link's approver also be signed in?")
]
Form = Annotated[str | None, typer.Option(help="JSON Schema that decision form data must match.")]
Timeout = Annotated[
    str | None, typer.Option(help="Fix every approval's timeout, e.g. 4h (default: theirs).")
]
OnTimeout = Annotated[
    str | None,
    typer.Option(help="Fix every approval's on_timeout: reject, approve or expire."),
]
Remind = Annotated[
    list[str] | None,
    typer.Option(
        "--remind", help="Remind who has not decided this long after creation, e.g. 4h; repeatable."
    ),
]
EscalateAfter = Annotated[
    str | None, typer.Option(help="Escalate this long after creation, e.g. 20h.")
]
EscalateTo = Annotated[
    list[str] | None,
    typer.Option("--escalate-to", help="Approver added at --escalate-after; repeatable."),
]


@app.command()
def create(
    name: Name,
    approver: Approvers,
    description: Description = "",
    quorum: Quorum = 1,
    rejections_to_reject: Rejections = 1,
    requester_can_decide: RequesterCanDecide = False,
    comment_required: CommentRequired = False,
    link_requires_login: LinkRequiresLogin = False,
    form: Form = None,
    timeout: Timeout = None,
    on_timeout: OnTimeout = None,
    remind: Remind = None,
    escalate_after: EscalateAfter = None,
    escalate_to: EscalateTo = None,
    as_json: Json = False,
) -> None:
    """Create a named policy."""
    from signoff.domain.policies import check_policy_name
    from signoff.services import policies

    try:
        check_policy_name(name)  # before the schema's pattern, which says less
    except errors.InvalidInput as exc:
        raise fail(exc) from exc
    fields = _content(approver, description, form, timeout, on_timeout)
    fields |= {"reminders": remind, "escalation": escalation(escalate_after, escalate_to)}
    rules = {
        "quorum": quorum,
        "rejections_to_reject": rejections_to_reject,
        "requester_can_decide": requester_can_decide,
        "comment_required": comment_required,
        "link_requires_login": link_requires_login,
    }
    spec = _parsed(schemas.PolicyCreate, {"name": name} | fields | rules)
    with database() as (db, ctx):
        try:
            made = policies.create(db, ctx, spec)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(made, as_json)


@app.command()
def replace(
    name: Name,
    approver: Approvers,
    description: Description = "",
    quorum: Quorum = 1,
    rejections_to_reject: Rejections = 1,
    requester_can_decide: RequesterCanDecide = False,
    comment_required: CommentRequired = False,
    link_requires_login: LinkRequiresLogin = False,
    form: Form = None,
    timeout: Timeout = None,
    on_timeout: OnTimeout = None,
    remind: Remind = None,
    escalate_after: EscalateAfter = None,
    escalate_to: EscalateTo = None,
    as_json: Json = False,
) -> None:
    """Replace everything a policy holds (what you leave out takes its default). Approvals
    already made from it keep what they copied."""
    from signoff.services import policies

    fields = _content(approver, description, form, timeout, on_timeout)
    fields |= {"reminders": remind, "escalation": escalation(escalate_after, escalate_to)}
    rules = {
        "quorum": quorum,
        "rejections_to_reject": rejections_to_reject,
        "requester_can_decide": requester_can_decide,
        "comment_required": comment_required,
        "link_requires_login": link_requires_login,
    }
    spec = _parsed(schemas.PolicyReplace, fields | rules)
    with database() as (db, ctx):
        try:
            replaced = policies.replace(db, ctx, name, spec)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(replaced, as_json)


@app.command("list")
def list_(as_json: Json = False) -> None:
    """List every policy, in name order."""
    from signoff.services import policies

    found: list[NamedPolicy] = []
    cursor: str | None = None
    with database() as (db, ctx):
        while True:
            page, cursor = policies.list_policies(db, ctx, cursor=cursor, limit=PAGE)
            found += page
            if cursor is None:
                break
    emit([_public(policy) for policy in found], COLUMNS, as_json=as_json)


@app.command()
def show(name: Name, as_json: Json = False) -> None:
    """Show one policy."""
    from signoff.services import policies

    with database() as (db, ctx):
        try:
            found = policies.get(db, ctx, name)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(found, as_json)


@app.command()
def delete(name: Name) -> None:
    """Delete a policy. Approvals already made from it keep what they copied; new ones that
    name it are refused (unknown_policy)."""
    from signoff.services import policies

    with database() as (db, ctx):
        try:
            policies.delete(db, ctx, name)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    typer.echo(f"deleted policy {name}")


def _content(
    approvers: list[str],
    description: str,
    form: str | None,
    timeout: str | None,
    on_timeout: str | None,
) -> dict[str, Any]:
    try:
        form_schema = json.loads(form) if form is not None else None
    except json.JSONDecodeError as exc:
        raise fail(errors.InvalidInput(f"--form is not JSON: {exc}")) from exc
    return {
        "approvers": approvers,
        "description": description,
        "form": form_schema,
        "timeout": timeout,
        "on_timeout": on_timeout,
    }


def escalation(after: str | None, to: list[str] | None) -> dict[str, Any] | None:
    """``--escalate-after`` and ``--escalate-to`` as an escalation; both or neither."""
    if after is None and not to:
        return None
    if after is None or not to:
        raise fail(errors.InvalidInput("--escalate-after and --escalate-to go together"))
    return {"after": after, "approvers": to}


def _parsed(model: type[M], fields: dict[str, Any]) -> M:
    """``fields`` as ``model``, or the command's end with one line per wrong field."""
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = [
            {"field": ".".join(str(part) for part in error["loc"]), "message": error["msg"]}
            for error in exc.errors()
        ]
        raise fail(errors.InvalidInput("the policy is not valid", errors=problems)) from exc


def _public(policy: NamedPolicy) -> schemas.PolicyPublic:
    return schemas.PolicyPublic.model_validate(policy.as_json())


def _show(policy: NamedPolicy, as_json: bool) -> None:
    from signoff.domain.policies import format_duration

    public = _public(policy)
    if as_json:
        emit(public, COLUMNS, as_json=True)
        return
    typer.echo(f"{public.name}  {public.id}")
    if public.description:
        typer.echo(f"  {public.description}")
    typer.echo(f"  approvers: {', '.join(f'{a.kind}:{a.name}' for a in public.approvers)}")
    typer.echo(
        f"  quorum {public.quorum}; rejections to reject {public.rejections_to_reject}; "
        f"requester can decide: {_yes_no(public.requester_can_decide)}; "
        f"comment required: {_yes_no(public.comment_required)}; "
        f"link requires login: {_yes_no(public.link_requires_login)}"
    )
    timeout = format_duration(public.timeout_seconds) if public.timeout_seconds else OPEN
    typer.echo(f"  timeout: {timeout}; on timeout: {public.on_timeout or OPEN}")
    if public.reminders is not None:
        reminders = ", ".join(format_duration(r) for r in public.reminders) or "none"
        typer.echo(f"  reminders: {reminders}")
    if public.escalation is not None:
        to = ", ".join(f"{a.kind}:{a.name}" for a in public.escalation.approvers)
        typer.echo(
            f"  escalation: after {format_duration(public.escalation.after_seconds)} to {to}"
        )
    if public.form is not None:
        typer.echo(f"  form: {json.dumps(public.form)}")


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"
