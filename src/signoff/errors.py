"""signoff's exceptions. Each has a stable code and one HTTP status.

The server turns them into problem+json bodies (``web/problems.py``); the SDK turns those
bodies back into the same classes (``from_problem``), so a pipeline catches
``errors.AlreadyDecided`` whether it talks to the server or runs inside it.

* SignoffError
  x NotFound            ApprovalNotFound, UserNotFound, TeamNotFound, ApiKeyNotFound,
                        InvitationNotFound, PolicyNotFound, DeliveryNotFound, LinkNotFound,
                        SubscriptionNotFound, SlackNotConfigured
  x Conflict            AlreadyDecided, AlreadySettled, DuplicateName, IdempotencyConflict,
                        DuplicateDecision, DeliveryNotDead
  x InvalidInput        UnknownApprover, UnknownPolicy, InvalidForm, CommentRequired,
                        WeakPassword, PayloadTooLarge, UnknownAppriseUrl
  x PermissionDenied    NotAnApprover, RequesterCannotDecide, AddressNotAllowed,
                        InsufficientScope, CsrfFailed, AccountDisabled, GroupNotAllowed
  x Unauthenticated     InvalidSignature (SlackSignatureInvalid, SlackRequestStale),
                        InvalidCredentials, OidcFailed
  x InvalidLink         (410: an emailed link that is not genuine, expired, used or revoked;
                        a decision link that is not genuine is a LinkNotFound)
  x TooManyAttempts     (429: sign-in refused for a while)
  x StoreUnavailable    (driver error kept as __cause__)
  x SchemaBehind        (the database needs ``signoff db upgrade``)
  x DeliveryFailed      (a sender could not hand an event over; transport error as __cause__)
  x ServerError         (anything the server did not expect; only ever seen by clients)
  x ServerUnreachable   (the SDK could not reach the server; transport error as __cause__)
"""

from __future__ import annotations

from typing import Any, ClassVar


class SignoffError(Exception):
    """signoff refused to do this."""

    code: ClassVar[str] = "signoff_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "signoff refused to do this"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        self.detail = detail or self.title
        self.extra = extra
        super().__init__(self.detail)


class NotFound(SignoffError):
    code = "not_found"
    status = 404
    title = "Not found"


class ApprovalNotFound(NotFound):
    code = "approval_not_found"
    title = "No such approval"


class UserNotFound(NotFound):
    code = "user_not_found"
    title = "No such user"


class TeamNotFound(NotFound):
    code = "team_not_found"
    title = "No such team"


class ApiKeyNotFound(NotFound):
    code = "api_key_not_found"
    title = "No such API key"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"
    title = "No such invitation"


class PolicyNotFound(NotFound):
    code = "policy_not_found"
    title = "No such policy"


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"
    title = "No such delivery"


class LinkNotFound(NotFound):
    """A decision link this server did not make as it stands: mistyped, cut short, altered,
    or for an approval that does not exist (the page does not say which)."""

    code = "link_not_found"
    title = "This link is not valid"


class SubscriptionNotFound(NotFound):
    code = "subscription_not_found"
    title = "No such subscription"


class SlackNotConfigured(NotFound):
    """Slack's interactivity endpoint on a server without ``SIGNOFF_SLACK_SIGNING_SECRET``."""

    code = "slack_not_configured"
    title = "Slack is not set up on this server"


class Conflict(SignoffError):
    code = "conflict"
    status = 409
    title = "Conflict with the current state"


class AlreadyDecided(Conflict):
    """The approval settled before this decision arrived; ``extra`` carries the outcome."""

    code = "already_decided"
    title = "The approval is already decided"


class AlreadySettled(Conflict):
    """Cancel or heartbeat on an approval that is no longer pending."""

    code = "already_settled"
    title = "The approval is no longer pending"


class DuplicateDecision(Conflict):
    code = "duplicate_decision"
    title = "You already decided on this approval"


class DuplicateName(Conflict):
    code = "duplicate_name"
    title = "The name is taken"


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    title = "The Idempotency-Key was used with a different request"


class DeliveryNotDead(Conflict):
    """A redrive of a delivery that is pending (it is still being tried) or delivered;
    ``extra["delivery_status"]`` says which."""

    code = "delivery_not_dead"
    title = "Only a dead delivery can be redriven"


class InvalidInput(SignoffError):
    code = "invalid_input"
    status = 422
    title = "The request is not valid"


class UnknownApprover(InvalidInput):
    code = "unknown_approver"
    title = "An approver does not exist"


class UnknownPolicy(InvalidInput):
    """An approval names a policy that does not exist (``PolicyNotFound`` is for the policy
    routes themselves: there the policy is what was asked for, here it is part of the input)."""

    code = "unknown_policy"
    title = "The named policy does not exist"


class InvalidForm(InvalidInput):
    """Decision form data that does not match the policy's JSON Schema."""

    code = "invalid_form"
    title = "The decision form is not valid"


class CommentRequired(InvalidInput):
    code = "comment_required"
    title = "The policy requires a comment"


class WeakPassword(InvalidInput):
    code = "weak_password"
    title = "The password may not be used"


class UnknownAppriseUrl(InvalidInput):
    """A subscription's apprise URL whose scheme apprise does not know, or that lacks what
    its service needs."""

    code = "unknown_apprise_url"
    title = "apprise cannot send to this URL"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    status = 413
    title = "The request body is too large"


class PermissionDenied(SignoffError):
    code = "permission_denied"
    status = 403
    title = "Not allowed"


class AddressNotAllowed(PermissionDenied):
    code = "address_not_allowed"
    title = "Requests from this network address are not allowed"


class InsufficientScope(PermissionDenied):
    code = "insufficient_scope"
    title = "The API key's scopes do not allow this"


class CsrfFailed(PermissionDenied):
    code = "csrf_failed"
    title = "The form expired or came from another site; reload the page and try again"


class NotAnApprover(PermissionDenied):
    code = "not_an_approver"
    title = "You are not an approver of this approval"


class RequesterCannotDecide(PermissionDenied):
    code = "requester_cannot_decide"
    title = "The requester may not decide this approval"


class AccountDisabled(PermissionDenied):
    """A disabled person signing in. Who they are is proven (by their identity provider, or
    their password), so this is a refusal to let them in, not a credential to retry."""

    code = "account_disabled"
    title = "This account is disabled"


class GroupNotAllowed(PermissionDenied):
    """An OIDC sign-in by someone in none of ``SIGNOFF_OIDC_ALLOWED_GROUPS``."""

    code = "oidc_group_not_allowed"
    title = "Your groups at the identity provider do not allow signing in here"


class Unauthenticated(SignoffError):
    code = "unauthenticated"
    status = 401
    title = "Missing or invalid credentials"


class InvalidSignature(Unauthenticated):
    """A webhook whose signature or timestamp does not verify (``signoff.webhooks.verify``)."""

    code = "invalid_signature"
    title = "The webhook signature is not valid"


class SlackSignatureInvalid(InvalidSignature):
    """A request to the Slack endpoint without a valid ``X-Slack-Signature`` (v0 HMAC)."""

    code = "invalid_slack_signature"
    title = "The Slack request signature is not valid"


class SlackRequestStale(InvalidSignature):
    """A Slack request whose ``X-Slack-Request-Timestamp`` is over five minutes from now:
    a replay, or a clock far off."""

    code = "stale_slack_request"
    title = "The Slack request is too old or from the future"


class InvalidCredentials(Unauthenticated):
    """A wrong email, password or second-factor code; which of them is not said."""

    code = "invalid_credentials"
    title = "The sign-in details are not right"


class InvalidLink(SignoffError):
    """An invitation or password-reset link that is not genuine, expired, used or revoked;
    a decision link past its approval's deadline."""

    code = "invalid_link"
    status = 410
    title = "This link is no longer valid"


class TooManyAttempts(SignoffError):
    """Sign-in refused for a while: too many failures for the account or from the address;
    ``extra["retry_after"]`` says in how many seconds to try again."""

    code = "too_many_attempts"
    status = 429
    title = "Too many failed attempts"


class OidcFailed(Unauthenticated):
    """An OpenID Connect sign-in that did not prove who someone is. ``detail`` is written to
    be shown to that person; the underlying error is kept as ``__cause__``."""

    code = "oidc_failed"
    title = "Signing in with the identity provider failed"


class StoreUnavailable(SignoffError):
    code = "store_unavailable"
    status = 503
    title = "The database is unavailable"


class SchemaBehind(SignoffError):
    code = "schema_behind"
    status = 503
    title = "The database schema is behind this version; run `signoff db upgrade`"


class DeliveryFailed(SignoffError):
    code = "delivery_failed"
    status = 502
    title = "The event could not be delivered"


class ServerError(SignoffError):
    code = "internal_error"
    status = 500
    title = "The server failed unexpectedly"


class ServerUnreachable(SignoffError):
    code = "server_unreachable"
    status = 503
    title = "The signoff server could not be reached"


def all_classes() -> list[type[SignoffError]]:
    """Every error class, the root included, in definition order."""
    found: list[type[SignoffError]] = []
    pending: list[type[SignoffError]] = [SignoffError]
    while pending:
        cls = pending.pop(0)
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return found


def from_problem(status: int, body: dict[str, Any]) -> SignoffError:
    """The exception a problem+json body stands for (the SDK's side of the boundary)."""
    by_code = {cls.code: cls for cls in all_classes()}
    code = str(body.get("code", ""))
    cls = by_code.get(code) or _by_status(status)
    known = {"type", "title", "status", "detail", "code", "instance"}
    extra = {key: value for key, value in body.items() if key not in known}
    return cls(str(body.get("detail") or body.get("title") or cls.title), **extra)


def _by_status(status: int) -> type[SignoffError]:
    for cls in (NotFound, Conflict, InvalidInput, PermissionDenied, Unauthenticated):
        if cls.status == status:
            return cls
    return ServerError if status >= 500 else SignoffError
