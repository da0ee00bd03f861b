"""``signoff approvals ...``: client commands against a running server."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer

from signoff import errors, schemas
from signoff.cli import policies as policies_cli
from signoff.cli.output import emit, fail
from signoff.client import Approval, Client

app = typer.Typer(help="Create, list, decide and wait on approvals (talks to SIGNOFF_URL).")

COLUMNS = ("id", "status", "title", "requester_id", "deadline_at")
WAIT_EXIT = {"approved": 0, "rejected": 3, "expired": 4, "canceled": 5}
WAIT_TIMED_OUT = 6

Url = Annotated[str, typer.Option("--url", envvar="SIGNOFF_URL", help="Server URL.")]
Key = Annotated[
    str, typer.Option("--api-key", envvar="SIGNOFF_API_KEY", help="API key or task token.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def _client(url: str, api_key: str) -> Client:
    return Client(url, api_key)


@app.command()
def create(
    title: Annotated[str, typer.Option(help="What is asked (≤ 200 characters).")],
    approver: Annotated[
        list[str] | None,
        typer.Option(
            "--approver", "-a", help="user email or team:<name>; repeatable (not with --policy)."
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(help="A named policy to take the approvers and rules from."),
    ] = None,
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    body: Annotated[str, typer.Option(help="Markdown body.")] = "",
    context: Annotated[str, typer.Option(help="JSON object shown to approvers.")] = "{}",
    label: Annotated[list[str] | None, typer.Option("--label", "-l")] = None,
    timeout: Annotated[
        str | None, typer.Option(help="e.g. 30m, 24h, 7d (default: the policy's, or 24h).")
    ] = None,
    on_timeout: Annotated[
        str | None,
        typer.Option(help="reject, approve or expire (default: the policy's, or reject)."),
    ] = None,
    quorum: Annotated[
        int | None, typer.Option(help="Approvals needed (default 1; not with --policy).")
    ] = None,
    comment_required: Annotated[bool, typer.Option(help="Not with --policy.")] = False,
    remind: policies_cli.Remind = None,
    escalate_after: policies_cli.EscalateAfter = None,
    escalate_to: policies_cli.EscalateTo = None,
    callback_url: str | None = None,
    idempotency_key: str | None = None,
    as_json: Json = False,
) -> None:
    """Open an approval and print it (with its task token in --json)."""
    try:
        parsed = json.loads(context)
    except json.JSONDecodeError as exc:
        raise fail(errors.InvalidInput(f"--context is not JSON: {exc}")) from exc
    rules = _rules(policy, quorum, comment_required)
    with _client(url, api_key) as client:
        try:
            approval = client.approvals.create(
                title=title,
                approvers=approver,
                body=body,
                context=parsed,
                labels=label,
                policy=rules,
                timeout=timeout,
                on_timeout=on_timeout,
                callback_url=callback_url,
                idempotency_key=idempotency_key,
                reminders=list(remind) if remind else None,
                escalation=policies_cli.escalation(escalate_after, escalate_to),
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(approval, (*COLUMNS, "url"), as_json=as_json)


def _rules(policy: str | None, quorum: int | None, comment_required: bool) -> dict[str, Any] | str:
    """A named policy, or the rules the options give."""
    if policy is None:
        return {"quorum": 1 if quorum is None else quorum, "comment_required": comment_required}
    if quorum is not None or comment_required:
        raise fail(
            errors.InvalidInput(
                f"policy {policy!r} sets the rules: leave out --quorum and --comment-required"
            )
        )
    return policy


@app.command("list")
def list_(
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    status: str | None = None,
    label: str | None = None,
    requester: str | None = None,
    mine: Annotated[bool, typer.Option("--mine", help="Only what I can decide now.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=200)] = 50,
    as_json: Json = False,
) -> None:
    """List approvals, newest first."""
    with _client(url, api_key) as client:
        try:
            page = client.approvals.list(
                status=status, label=label, requester=requester, decidable=mine, limit=limit
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    emit(page.items, COLUMNS, as_json=as_json)


@app.command()
def show(
    approval_id: str, url: Url = "http://127.0.0.1:8000", api_key: Key = "", as_json: Json = False
) -> None:
    """Show one approval."""
    with _client(url, api_key) as client:
        try:
            approval = client.approvals.get(approval_id)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(approval, as_json)


def _decide(
    verdict: str,
    approval_id: str,
    url: str,
    api_key: str,
    comment: str,
    form: str | None,
    as_json: bool,
) -> None:
    try:
        form_data = json.loads(form) if form else None
    except json.JSONDecodeError as exc:
        raise fail(errors.InvalidInput(f"--form is not JSON: {exc}")) from exc
    with _client(url, api_key) as client:
        try:
            approval = client.approvals.decide(
                approval_id, verdict, comment=comment, form=form_data, channel="cli"
            )
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(approval, as_json)


@app.command()
def approve(
    approval_id: str,
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    form: Annotated[str | None, typer.Option(help="Decision form data as JSON.")] = None,
    as_json: Json = False,
) -> None:
    """Approve."""
    _decide("approve", approval_id, url, api_key, comment, form, as_json)


@app.command()
def reject(
    approval_id: str,
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    comment: Annotated[str, typer.Option("--comment", "-m")] = "",
    form: Annotated[str | None, typer.Option(help="Decision form data as JSON.")] = None,
    as_json: Json = False,
) -> None:
    """Reject."""
    _decide("reject", approval_id, url, api_key, comment, form, as_json)


@app.command()
def cancel(
    approval_id: str,
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    reason: str = "",
    as_json: Json = False,
) -> None:
    """Cancel a pending approval (requester, task token or admin)."""
    with _client(url, api_key) as client:
        try:
            approval = client.approvals.cancel(approval_id, reason=reason)
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(approval, as_json)


@app.command()
def wait(
    approval_id: str,
    url: Url = "http://127.0.0.1:8000",
    api_key: Key = "",
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    as_json: Json = False,
) -> None:
    """Block until the approval settles. Exit 0 approved, 3 rejected, 4 expired, 5 canceled,
    6 still pending at --timeout, 1 on errors: ``signoff approvals wait ID && apply.sh``."""
    with _client(url, api_key) as client:
        try:
            approval = client.approvals.wait(approval_id, timeout=timeout)
        except TimeoutError as exc:
            print(f"error: {exc}", file=sys.stderr)
            raise typer.Exit(WAIT_TIMED_OUT) from exc
        except errors.SignoffError as exc:
            raise fail(exc) from exc
    _show(approval, as_json)
    raise typer.Exit(WAIT_EXIT[approval.status])


def _show(approval: Approval, as_json: bool) -> None:
    if as_json:
        emit(approval, COLUMNS, as_json=True)
        return
    typer.echo(f"{approval.id}  {approval.status}  {approval.title}")
    deadline = f"{approval.deadline_at:%Y-%m-%d %H:%M:%S %Z}"
    typer.echo(f"  requested by {approval.requester_id}; deadline {deadline}")
    typer.echo(f"  approvers: {', '.join(f'{a.kind}:{a.name}' for a in approval.approvers)}")
    for reminder in approval.reminders:
        typer.echo(f"  reminder at {reminder.at:%Y-%m-%d %H:%M:%S %Z}: {_timer(reminder)}")
    if approval.escalation is not None:
        escalation = approval.escalation
        to = ", ".join(f"{a.kind}:{a.name}" for a in escalation.approvers)
        typer.echo(
            f"  escalation at {escalation.at:%Y-%m-%d %H:%M:%S %Z} to {to}: {_timer(escalation)}"
        )
    for decision in approval.decisions:
        note = f": {decision.comment}" if decision.comment else ""
        typer.echo(f"  {decision.verdict} by {decision.user} via {decision.channel}{note}")
    if approval.outcome:
        typer.echo(f"  outcome: {json.dumps(approval.outcome)}")
    for failing in approval.notifications or []:
        typer.echo(f"  {notification_line(failing)}")
    typer.echo(f"  {approval.url}")


def notification_line(failing: schemas.NotificationStatus) -> str:
    """E.g. "slack delivery to #ml-approvals failing since 10:02, 5 attempts"."""
    kind = "approver email" if failing.purpose == "approver" else failing.target_kind
    since = f"{failing.failing_since:%Y-%m-%d %H:%M %Z}"
    attempts = f"{failing.attempts} attempt{'s' if failing.attempts != 1 else ''}"
    state = "failing since" if failing.status == "failing" else "gave up; failing since"
    error = f" (last error: {failing.last_error})" if failing.last_error else ""
    return f"{kind} delivery to {failing.target} {state} {since}, {attempts}{error}"


def _timer(timer: schemas.ReminderScheduled | schemas.EscalationScheduled) -> str:
    done_at = timer.sent_at if isinstance(timer, schemas.ReminderScheduled) else timer.escalated_at
    if timer.status == "done" and done_at is not None:
        return f"done {done_at:%Y-%m-%d %H:%M:%S %Z}"
    return {"scheduled": "scheduled", "skipped": "skipped (settled first)"}.get(
        timer.status, "done"
    )
