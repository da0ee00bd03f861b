"""The wire: Pydantic v2 models of every request and response body. No I/O.

Shared by the server (it parses requests into ``*Create`` models and answers with ``*Public``
ones) and the SDK (it sends and parses the same models), so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    UrlConstraints,
    field_validator,
)

Status = Literal["pending", "approved", "rejected", "expired", "canceled"]
Verdict = Literal["approve", "reject"]
OnTimeout = Literal["reject", "approve", "expire"]
Duration = int | str

T = TypeVar("T")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a listing; pass ``next_cursor`` as ``cursor`` for the next one."""

    items: list[T]
    next_cursor: str | None = None


class PolicySpec(_Model):
    """Decision rules of one approval."""

    quorum: int = Field(default=1, ge=1, le=100, description="Approvals needed to approve.")
    rejections_to_reject: int = Field(
        default=1, ge=1, le=100, description="Rejections that reject (1: any rejection rejects)."
    )
    requester_can_decide: bool = Field(
        default=False, description="Whether the requester may decide their own approval."
    )
    comment_required: bool = False
    form: dict[str, Any] | None = Field(
        default=None, description="JSON Schema that approve decisions' form data must match."
    )
    link_requires_login: bool = Field(
        default=False,
        description="Whether an emailed decision link needs its approver signed in as well; "
        "false: the link alone decides.",
    )


class ApprovalPolicy(BaseModel):
    """An approval's decision rules as the API shows them: ``PolicySpec``'s fields, and the
    named policy they were copied from."""

    name: str | None = Field(
        default=None, description="The named policy they were copied from; null if given inline."
    )
    quorum: int
    rejections_to_reject: int
    requester_can_decide: bool
    comment_required: bool
    form: dict[str, Any] | None
    link_requires_login: bool


class ApproverPublic(BaseModel):
    kind: Literal["user", "team"]
    id: str
    name: str


class EscalationSpec(_Model):
    """At ``after``, ``approvers`` may decide too, and are emailed their decision links."""

    after: Duration = Field(
        description="Seconds, or '90s', '30m', '20h' after creation; before the deadline."
    )
    approvers: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Users (email or id) and teams ('team:<name>') to add.",
    )


_REMINDERS = (
    "Durations after creation ('4h', '12h'), increasing, each before the deadline, at most 10: "
    "then whoever may decide and has not is emailed a reminder."
)


class EscalationPublic(BaseModel):
    after_seconds: int
    approvers: list[ApproverPublic]


class ReminderScheduled(BaseModel):
    """One reminder of an approval: when it is due, and whether it was sent."""

    at: datetime
    status: Literal["scheduled", "done", "skipped"]
    sent_at: datetime | None = None


class EscalationScheduled(BaseModel):
    """An approval's escalation: when, to whom, and whether it happened."""

    at: datetime
    approvers: list[ApproverPublic]
    status: Literal["scheduled", "done", "skipped"]
    escalated_at: datetime | None = None


Label = Annotated[str, StringConstraints(min_length=1, max_length=100)]
# Any name may be asked for: one that is not a policy's is answered with unknown_policy.
PolicyRef = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class ApprovalCreate(_Model):
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(default="", description="Markdown, at most 64 KiB.")
    context: dict[str, Any] = Field(
        default_factory=dict, description="JSON shown to approvers, at most 256 KiB."
    )
    labels: list[Label] = Field(default_factory=list, max_length=20)
    approvers: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="Users (email or id, or 'user:<email>') and teams ('team:<name>'). "
        "Required with an inline policy; not allowed with a named one, which says who decides.",
    )
    policy: PolicySpec | PolicyRef = Field(
        default_factory=PolicySpec,
        description="The decision rules, or the name of a policy to take the approvers, rules, "
        "timeout and on_timeout from.",
    )
    timeout: Duration | None = Field(
        default=None,
        description="Seconds, or '90s', '30m', '24h', '7d'. Default: the named policy's, or 24h.",
    )
    on_timeout: OnTimeout | None = Field(
        default=None, description="Default: the named policy's, or 'reject'."
    )
    heartbeat_timeout: Duration | None = Field(
        default=None, description="Expire when the workflow stops heartbeating for this long."
    )
    reminders: list[Duration] | None = Field(
        default=None, max_length=10, description=_REMINDERS + " Default: the named policy's."
    )
    escalation: EscalationSpec | None = Field(
        default=None, description="Not allowed with a named policy, which says who decides."
    )
    callback_url: Annotated[HttpUrl, UrlConstraints(max_length=2048)] | None = Field(
        default=None, description="Receives the signed approval.settled webhook."
    )


class DecisionCreate(_Model):
    verdict: Verdict
    comment: str = Field(default="", max_length=10_000)
    form: dict[str, Any] | None = None
    channel: Literal["api", "cli"] = "api"


class DecisionPublic(BaseModel):
    id: str
    user_id: str
    user: str
    verdict: Verdict
    comment: str
    form: dict[str, Any] | None
    channel: str
    decided_at: datetime


DeliveryPurpose = Literal["callback", "approver", "subscription", "account"]


class NotificationStatus(BaseModel):
    """One destination an approval's events are failing to reach: enough to say "slack
    delivery to #ml-approvals failing since 10:02, 5 attempts"."""

    purpose: str = Field(description="callback, approver or subscription.")
    target_kind: str = Field(description="callback, email, webhook, slack or apprise.")
    target: str = Field(
        description="Redacted: URLs without their secrets, and people's "
        "addresses only to admins and the requester."
    )
    status: str = Field(description="failing (still retried) or dead (given up).")
    failing_since: datetime = Field(description="The first failed attempt.")
    attempts: int = Field(description="Attempts at every failing delivery to it.")
    last_error: str | None


class ApprovalPublic(BaseModel):
    id: str
    url: str
    title: str
    body: str
    context: dict[str, Any]
    labels: list[str]
    status: Status
    requester_id: str
    approvers: list[ApproverPublic]
    policy: ApprovalPolicy
    on_timeout: OnTimeout
    created_at: datetime
    deadline_at: datetime
    heartbeat_timeout_seconds: int | None
    heartbeat_deadline_at: datetime | None
    callback_url: str | None
    outcome: dict[str, Any] | None
    settled_at: datetime | None
    decisions: list[DecisionPublic]
    reminders: list[ReminderScheduled] = Field(default_factory=list)
    escalation: EscalationScheduled | None = None
    notifications: list[NotificationStatus] | None = Field(
        default=None,
        description="Where this approval's notifications are failing, one entry per "
        "destination; empty when all arrive. Read by GET /v1/approvals/{id} only: null in "
        "lists and in the answers of changes.",
    )

    @property
    def is_pending(self) -> bool:
        return self.status == "pending"


class ApprovalCreated(ApprovalPublic):
    token: str = Field(
        description="Capability to read, wait on, heartbeat and cancel this approval only."
    )


PolicyName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$"),  # domain.policies.NAME_PATTERN
]


class PolicyReplace(PolicySpec):
    """What a named policy holds: the body of ``PUT /v1/policies/{name}`` (and, with the
    name, of ``POST /v1/policies``). The decision rules are ``PolicySpec``'s fields."""

    description: str = Field(default="", max_length=2000)
    approvers: list[str] = Field(
        min_length=1,
        max_length=100,
        description="Who decides, as approvals take them: users (email or id) and teams "
        "('team:<name>').",
    )
    timeout: Duration | None = Field(
        default=None, description="Fixes every approval's timeout; null: the requester's, or 24h."
    )
    on_timeout: OnTimeout | None = Field(
        default=None, description="Fixes every approval's on_timeout; null: the requester's."
    )
    reminders: list[Duration] | None = Field(
        default=None, max_length=10, description=_REMINDERS + " null: the requester's."
    )
    escalation: EscalationSpec | None = Field(
        default=None, description="Fixes every approval's escalation; requests may not add one."
    )


class PolicyCreate(PolicyReplace):
    name: PolicyName = Field(description="A lower-case slug, e.g. 'prod-promotion'.")


class PolicyPublic(BaseModel):
    """A named policy; its rules are ``PolicySpec``'s fields, spelled out in this order."""

    id: str
    name: str
    description: str
    approvers: list[ApproverPublic]
    quorum: int
    rejections_to_reject: int
    requester_can_decide: bool
    comment_required: bool
    form: dict[str, Any] | None
    link_requires_login: bool
    timeout_seconds: int | None
    on_timeout: OnTimeout | None
    reminders: list[int] | None = Field(default=None, description="Seconds after creation.")
    escalation: EscalationPublic | None = None
    created_at: datetime
    updated_at: datetime


SubscriptionName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$"),  # domain.subscriptions.NAME_PATTERN
]
SubscriptionKind = Literal["webhook", "email", "slack", "apprise"]
SubscriptionTarget = (
    Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    | Annotated[list[Annotated[str, StringConstraints(max_length=320)]], Field(max_length=50)]
)
_TARGET = (
    "webhook: an http(s) URL; email: a list of addresses; slack: a channel ('#name' or an id); "
    "apprise: an apprise URL. URLs at private addresses need SIGNOFF_WEBHOOK_ALLOWED_NETWORKS."
)
_FILTER = (
    "An EventBridge-style pattern over the event envelope, e.g. "
    '{"type": ["approval.settled"], "data": {"status": ["rejected"]}}; {} matches every event.'
)


class SubscriptionReplace(_Model):
    """What a subscription holds: the body of ``PUT /v1/subscriptions/{name}`` (and, with the
    name, of ``POST /v1/subscriptions``)."""

    kind: SubscriptionKind
    target: SubscriptionTarget = Field(description=_TARGET)
    filter: dict[str, Any] = Field(default_factory=dict, description=_FILTER)
    enabled: bool = True


class SubscriptionCreate(SubscriptionReplace):
    name: SubscriptionName = Field(description="A lower-case slug, e.g. 'ops-webhook'.")


class SubscriptionUpdate(_Model):
    """The body of ``PATCH /v1/subscriptions/{name}``: only the fields given change."""

    kind: SubscriptionKind | None = None
    target: SubscriptionTarget | None = Field(default=None, description=_TARGET)
    filter: dict[str, Any] | None = Field(default=None, description=_FILTER)
    enabled: bool | None = None


class SubscriptionPublic(BaseModel):
    id: str
    name: str
    kind: SubscriptionKind
    target: str | list[str]
    filter: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime


class UserCreate(_Model):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")
    name: str = Field(default="", max_length=200)
    role: Literal["admin", "member"] = "member"
    kind: Literal["person", "service"] = "person"


class UserPublic(BaseModel):
    id: str
    email: str
    name: str
    role: str
    kind: str
    is_active: bool
    created_at: datetime


class UserUpdate(_Model):
    """Only the fields given change. A disabled user's sessions and keys stop at once."""

    role: Literal["admin", "member"] | None = None
    is_active: bool | None = None
    name: str | None = Field(default=None, min_length=1, max_length=200)


class SlackLinkUpdate(_Model):
    """The Slack user a signoff user is (their member id, from 'Copy member ID')."""

    slack_user_id: str = Field(min_length=3, max_length=32, pattern=r"^[UW][A-Z0-9]{2,30}$")


class SlackLinkPublic(BaseModel):
    slack_user_id: str
    source: Literal["explicit", "email"] = Field(
        description="explicit: set by an admin; email: found by the Slack profile's email."
    )


class InvitationCreate(_Model):
    email: str = Field(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    teams: list[str] = Field(default_factory=list, max_length=100, description="Team names.")
    role: Literal["admin", "member"] = "member"


class InvitationPublic(BaseModel):
    id: str
    email: str
    role: str
    teams: list[str]
    status: Literal["pending", "accepted", "revoked", "expired"]
    invited_by: str
    created_at: datetime
    sent_at: datetime
    expires_at: datetime
    send_count: int
    accepted_at: datetime | None
    user_id: str | None
    revoked_at: datetime | None


class InvitationSent(InvitationPublic):
    link: str = Field(
        description="The invitation link, also emailed; for admins to hand over another way "
        "when email is not set up. It works once, until expires_at."
    )


class TeamCreate(_Model):
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class TeamPublic(BaseModel):
    id: str
    name: str
    member_ids: list[str]
    created_at: datetime


class TeamMemberAdd(_Model):
    user: str = Field(description="Email or id of the user.")


ScopeName = Literal["approvals:read", "approvals:write", "approvals:decide", "admin"]


class ApiKeyCreate(_Model):
    name: str = Field(default="", max_length=200)
    user: str | None = Field(default=None, description="Email or id; default: yourself.")
    scopes: list[ScopeName] | None = Field(
        default=None,
        description="What the key may do; default: everything its user's role allows.",
    )
    expires_in: Duration | None = Field(
        default=None, description="The key stops working after this long ('90d'); default: never."
    )


class ApiKeyPublic(BaseModel):
    id: str
    user_id: str
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    scopes: list[ScopeName]
    expires_at: datetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _in_order(cls, value: Any) -> Any:
        return sorted(value) if isinstance(value, set | frozenset) else value


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The secret; shown this once and never again.")


class AuditEntryPublic(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    client_addr: str | None
    prev_hash: str
    hash: str


class AuditBreak(BaseModel):
    seq: int
    reason: str


class AuditVerification(BaseModel):
    ok: bool
    checked: int
    first_break: AuditBreak | None = None


DeliveryStatus = Literal["pending", "delivered", "dead"]
TargetKind = Literal[
    "callback", "email", "webhook", "slack", "apprise"
]  # domain.deliveries.TargetKind


class DeliveryPublic(BaseModel):
    """One event on its way to one destination, and how that is going: the fields a page
    needs to say "failing since 10:02, 5 attempts, last error HTTP 503, next attempt 10:40"."""

    id: str = Field(description="Also the webhook-id header of every attempt.")
    event_id: str
    event_type: str
    subject: str = Field(description="The object the event is about, e.g. an approval id.")
    target_kind: str = Field(description="callback, email, webhook, slack or apprise.")
    target: str = Field(
        description="Where it goes; an apprise URL in its privacy form, and what a reader may "
        "not see of an approval's deliveries masked."
    )
    purpose: str = Field(
        description="Why it was made: callback (the approval's own), approver (the email to "
        "one person who may decide), subscription, or account (an invitation or reset email)."
    )
    status: str = Field(description="pending, delivered or dead.")
    attempts: int
    created_at: datetime = Field(
        description="When the delivery was made, or last redriven: its maximum age counts "
        "from here."
    )
    next_attempt_at: datetime | None = Field(description="Set while pending.")
    completed_at: datetime | None = Field(description="When it was delivered or gave up.")
    last_attempt_at: datetime | None
    failing_since: datetime | None = Field(
        description="The first failed attempt, unless the delivery succeeded since."
    )
    last_error: str | None


class DeliveryAttemptPublic(BaseModel):
    attempted_at: datetime
    ok: bool
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None = Field(description="The first 1 KiB of the answer.")


class DeliveryDetail(DeliveryPublic):
    attempt_log: list[DeliveryAttemptPublic] = Field(description="Every attempt, oldest first.")


class DeliveryRedrive(_Model):
    """Which dead deliveries ``POST /v1/deliveries/redrive`` redrives: every one that matches
    all the filters given."""

    status: Literal["dead"] = Field(default="dead", description="Only dead ones are redriven.")
    target_kind: TargetKind | None = None
    event_type: str | None = Field(default=None, max_length=64)
    subject: str | None = Field(default=None, max_length=64)


class DeliveriesRedriven(BaseModel):
    redriven: int = Field(description="How many dead deliveries became pending.")


class WebhookSecret(BaseModel):
    secret: str = Field(description="Standard Webhooks secret (whsec_...) that signs callbacks.")
    previous: list[str] = Field(
        default_factory=list,
        description="Secrets that also sign every callback while receivers move to the new "
        "one (SIGNOFF_WEBHOOK_PREVIOUS_SECRET).",
    )


class Problem(BaseModel):
    """An error, as RFC 9457 problem details with signoff's stable ``code``."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    code: str
