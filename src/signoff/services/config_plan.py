"""The plan of a ``signoff.yaml`` stack: what the database holds, read once (``State``), and
the changes, kind by kind, that would make it hold what the file says (``changes``).

A change that would take over what the stack did not create is refused (a service account,
a named policy or a subscription of that name made another way); what the stack created and
the file no longer names is removed: deleted, disabled (people and service accounts) or
revoked (keys and invitations). Teams, people, service accounts and memberships are made
before the keys, policies and subscriptions that may name them, and removed after them, so
each step finds what it needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from signoff import errors, schemas
from signoff.domain import config, policies, reminders, subscriptions
from signoff.domain.accounts import Invitation
from signoff.domain.config import Document
from signoff.domain.policies import NamedPolicy
from signoff.domain.principals import ApiKey, Context, Team, User
from signoff.domain.subscriptions import Kind, Subscription
from signoff.services import invitations, principals
from signoff.services import policies as named_policies
from signoff.services import subscriptions as subscribing
from signoff.store import config as store
from signoff.store.engine import Database

SERVICE_DOMAIN = "service.signoff.localhost"
DEFAULT_KEY_SCOPES = ("approvals:read", "approvals:write")  # a pipeline asks, never decides
Verb = Literal["create", "update", "delete"]
_SYMBOLS = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True)
class Change:
    verb: Verb
    kind: str  # team, invitation, person, member, service_account, api_key, policy, subscription
    name: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __str__(self) -> str:
        suffix = f" ({self.detail})" if self.detail else ""
        return f"{_SYMBOLS[self.verb]} {self.kind} {self.name}{suffix}"


@dataclass(frozen=True)
class Plan:
    stack: str
    changes: tuple[Change, ...]

    @property
    def is_empty(self) -> bool:
        return not self.changes


@dataclass(frozen=True)
class State:
    """What the database holds, read once for a plan."""

    users: dict[str, User]  # by email
    teams: dict[str, Team]  # by name
    invitations: dict[str, Invitation]  # pending ones, by email
    policies: dict[str, NamedPolicy]  # by name
    subscriptions: dict[str, Subscription]  # by name
    keys: dict[str, ApiKey]  # by id
    managed: dict[tuple[str, str], str]  # (kind, name) -> id, this stack's

    def manages(self, kind: str, name: str) -> bool:
        return (kind, name) in self.managed


def service_account_email(name: str) -> str:
    """The address of the service account ``name`` (at ``SERVICE_DOMAIN``: not a mailbox)."""
    return f"{name}@{SERVICE_DOMAIN}"


def read_state(db: Database, ctx: Context, stack: str) -> State:
    """What the database holds now, and what ``stack`` manages: for a plan, and for apply to
    find the memberships its invitations made."""
    now = datetime.now(UTC)
    found_policies, cursor = named_policies.list_policies(db, ctx, limit=200)
    while cursor is not None:
        more, cursor = named_policies.list_policies(db, ctx, cursor=cursor, limit=200)
        found_policies += more
    found_subscriptions, cursor = subscribing.list_subscriptions(db, ctx, limit=200)
    while cursor is not None:
        others, cursor = subscribing.list_subscriptions(db, ctx, cursor=cursor, limit=200)
        found_subscriptions += others
    with db.read() as session:
        managed = store.managed(session, stack)
    return State(
        users={u.email: u for u in principals.list_users(db, ctx)},
        teams={t.name: t for t in principals.list_teams(db, ctx)},
        invitations={
            i.email: i for i in invitations.list_invitations(db, ctx) if i.status(now) == "pending"
        },
        policies={p.name: p for p in found_policies},
        subscriptions={s.name: s for s in found_subscriptions},
        keys={k.id: k for k in principals.list_api_keys(db, ctx)},
        managed=managed,
    )


def changes(document: Document, state: State) -> list[Change]:
    """What would make ``state`` hold what ``document`` says, in the order apply makes them;
    ``Conflict`` or ``InvalidInput`` where the file asks for what cannot be."""
    wanted_members = memberships(document)
    return [
        *_team_creations(document, state),
        *_service_account_creations(document, state),
        *_people_changes(document, state, wanted_members),
        *_member_additions(document, state, wanted_members),
        *_key_changes(document, state),
        *_policy_changes(document, state),
        *_subscription_changes(document, state),
        *_member_removals(state, wanted_members),
        *_people_removals(document, state),
        *_service_account_removals(document, state),
        *_team_removals(document, state),
    ]


def memberships(document: Document) -> set[tuple[str, str]]:
    """(team, email) pairs the file asks for, service accounts included."""
    wanted = {
        (team, member.lower()) for team, spec in document.teams.items() for member in spec.members
    }
    for name, account in document.service_accounts.items():
        wanted |= {(team, service_account_email(name)) for team in account.teams}
    return wanted


def _team_creations(document: Document, state: State) -> list[Change]:
    return [Change("create", "team", name) for name in document.teams if name not in state.teams]


def _team_removals(document: Document, state: State) -> list[Change]:
    return [
        Change("delete", "team", name)
        for kind, name in state.managed
        if kind == "team" and name not in document.teams and name in state.teams
    ]


def _service_account_creations(document: Document, state: State) -> list[Change]:
    changes = []
    for name, account in document.service_accounts.items():
        email = service_account_email(name)
        existing = state.users.get(email)
        for team in account.teams:
            if team not in document.teams and team not in state.teams:
                raise errors.InvalidInput(f"service account {name}: there is no team {team!r}")
        if existing is None:
            changes.append(Change("create", "service_account", name, email))
        elif not state.manages("service_account", name):
            raise errors.Conflict(f"a user {email} exists that this stack did not create")
    return changes


def _people_changes(
    document: Document, state: State, wanted_members: set[tuple[str, str]]
) -> list[Change]:
    changes = []
    explicit = {email.lower(): spec for email, spec in document.people.items()}
    for email in sorted(document.person_emails()):
        spec = explicit.get(email, config.PersonSpec())
        user = state.users.get(email)
        if user is None:
            if email not in state.invitations:
                teams = sorted(team for team, member in wanted_members if member == email)
                detail = f"role {spec.role}" + (f", into {', '.join(teams)}" if teams else "")
                data = {"teams": teams, "role": spec.role}
                changes.append(Change("create", "invitation", email, detail, data))
            continue
        updates: dict[str, Any] = {}
        if email in explicit and user.role.value != spec.role:
            updates["role"] = spec.role
        if email in explicit and spec.name and user.name != spec.name:
            updates["name"] = spec.name
        if updates:
            detail = ", ".join(f"{key} {value}" for key, value in updates.items())
            changes.append(Change("update", "person", email, detail, updates))
    return changes


def _people_removals(document: Document, state: State) -> list[Change]:
    wanted = document.person_emails()
    changes = []
    for kind, email in sorted(state.managed):
        if kind != "person" or email in wanted:
            continue
        user = state.users.get(email)
        if user is not None and user.is_active:
            changes.append(Change("delete", "person", email, "disable: sessions and keys stop"))
        elif user is None and email in state.invitations:
            changes.append(Change("delete", "invitation", email, "revoke"))
    return changes


def _member_additions(
    document: Document, state: State, wanted_members: set[tuple[str, str]]
) -> list[Change]:
    changes = []
    for team, email in sorted(wanted_members):
        user = state.users.get(email)
        is_new_account = email.endswith("@" + SERVICE_DOMAIN) and user is None
        if user is None and not is_new_account:
            continue  # invited: joins when they accept
        existing = state.teams.get(team)
        if existing is None or user is None or user.id not in existing.member_ids:
            changes.append(Change("create", "member", f"{team}/{email}"))
    return changes


def _member_removals(state: State, wanted_members: set[tuple[str, str]]) -> list[Change]:
    changes = []
    for kind, name in sorted(state.managed):
        if kind != "member":
            continue
        team, _, email = name.partition("/")
        user, existing = state.users.get(email), state.teams.get(team)
        if (team, email) in wanted_members or user is None or existing is None:
            continue
        if user.id in existing.member_ids:
            changes.append(Change("delete", "member", name))
    return changes


def _key_changes(document: Document, state: State) -> list[Change]:
    changes = []
    for name, account in document.service_accounts.items():
        if account.key is None:
            continue
        scopes = sorted(account.key.scopes or DEFAULT_KEY_SCOPES)
        key_id = state.managed.get(("api_key", name))
        key = state.keys.get(key_id) if key_id else None
        data = {"scopes": scopes, "expires_in": account.key.expires_in, "file": account.key.file}
        if key is None or key.is_revoked or key.is_expired(datetime.now(UTC)):
            changes.append(Change("create", "api_key", name, ", ".join(scopes), data))
        elif sorted(key.scopes) != scopes:
            detail = f"scopes {', '.join(sorted(key.scopes))} -> {', '.join(scopes)}: a new key"
            changes.append(Change("update", "api_key", name, detail, data))
    for kind, name in state.managed:
        if kind == "api_key" and (
            name not in document.service_accounts or document.service_accounts[name].key is None
        ):
            key = state.keys.get(state.managed[(kind, name)])
            if key is not None and not key.is_revoked:
                changes.append(Change("delete", "api_key", name, "revoke"))
    return changes


def _service_account_removals(document: Document, state: State) -> list[Change]:
    changes = []
    for kind, name in sorted(state.managed):
        if kind == "service_account" and name not in document.service_accounts:
            user = state.users.get(service_account_email(name))
            if user is not None and user.is_active:
                changes.append(Change("delete", "service_account", name, "disable"))
    return changes


def _policy_changes(document: Document, state: State) -> list[Change]:
    changes = []
    for name, spec in document.policies.items():
        current = state.policies.get(name)
        if current is None:
            changes.append(Change("create", "policy", name, data={"spec": spec}))
        elif not state.manages("policy", name):
            raise errors.Conflict(f"a policy {name} exists that this stack did not create")
        else:
            differences = _policy_differences(spec, current)
            if differences:
                changes.append(
                    Change("update", "policy", name, "; ".join(differences), {"spec": spec})
                )
    for kind, name in sorted(state.managed):
        if kind == "policy" and name not in document.policies and name in state.policies:
            changes.append(Change("delete", "policy", name))
    return changes


def _policy_differences(wanted: schemas.PolicyReplace, current: NamedPolicy) -> list[str]:
    timeout = policies.parse_duration(wanted.timeout) if wanted.timeout is not None else None
    pairs = {
        "description": (current.description, wanted.description),
        "approvers": (
            sorted(_ref_name(r.kind, r.name) for r in current.approvers),
            sorted(_normalized_ref(ref) for ref in wanted.approvers),
        ),
        "timeout_seconds": (current.timeout_seconds, timeout),
        "on_timeout": (current.on_timeout.value if current.on_timeout else None, wanted.on_timeout),
        "reminders": (
            list(current.reminders) if current.reminders is not None else None,
            list(reminders.parse_reminders(wanted.reminders))
            if wanted.reminders is not None
            else None,
        ),
        "escalation": (_escalation_of(current), _escalation_wanted(wanted)),
    }
    rules = current.rules
    for rule in schemas.PolicySpec.model_fields:
        pairs[rule] = (getattr(rules, rule), getattr(wanted, rule))
    return [f"{key} {old!r} -> {new!r}" for key, (old, new) in pairs.items() if old != new]


def _escalation_of(policy: NamedPolicy) -> tuple[int, list[str]] | None:
    found = policy.escalation
    if found is None:
        return None
    return found.after_seconds, sorted(_ref_name(r.kind, r.name) for r in found.approvers)


def _escalation_wanted(spec: schemas.PolicyReplace) -> tuple[int, list[str]] | None:
    found = spec.escalation
    if found is None:
        return None
    after = reminders.parse_escalation_after(found.after)
    return after, sorted(_normalized_ref(ref) for ref in found.approvers)


def _subscription_changes(document: Document, state: State) -> list[Change]:
    changes = []
    for name, spec in document.subscriptions.items():
        current = state.subscriptions.get(name)
        if current is None:
            changes.append(Change("create", "subscription", name, spec.kind, {"spec": spec}))
        elif not state.manages("subscription", name):
            raise errors.Conflict(f"a subscription {name} exists that this stack did not create")
        elif differences := _subscription_differences(spec, current):
            detail = "; ".join(differences)
            changes.append(Change("update", "subscription", name, detail, {"spec": spec}))
    for kind, name in sorted(state.managed):
        if kind == "subscription" and name in state.subscriptions.keys() - document.subscriptions:
            changes.append(Change("delete", "subscription", name))
    return changes


def _subscription_differences(
    wanted: schemas.SubscriptionReplace, current: Subscription
) -> list[str]:
    """What changes, as people may read it in a CI log: URLs redacted."""
    kind = Kind(wanted.kind)
    target = subscriptions.normalized_target(kind, wanted.target)
    pairs = {
        "kind": (current.kind.value, kind.value),
        "target": (
            subscriptions.shown_target(current.kind, current.target),
            subscriptions.shown_target(kind, target),
        ),
        "filter": (current.filter, wanted.filter),
        "enabled": (current.enabled, wanted.enabled),
    }
    return [f"{key} {old!r} -> {new!r}" for key, (old, new) in pairs.items() if old != new]


def _ref_name(kind: str, name: str) -> str:
    return f"team:{name}" if kind == "team" else name.lower()


def _normalized_ref(ref: str) -> str:
    ref = ref.strip()
    if ref.startswith("team:"):
        return ref
    return ref.removeprefix("user:").lower()
