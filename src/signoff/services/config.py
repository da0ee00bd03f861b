"""``signoff plan | apply | destroy -f signoff.yaml``: make the database hold what the file
says, for teams, people, service accounts, named policies and subscriptions.

What a file creates is recorded under its ``stack`` name (``managed_objects``), and that
record is all apply and destroy ever remove: a team, person, policy or subscription made
another way is
never deleted, and one made by another stack is refused rather than taken over. A plan is
computed from one read of the database; apply carries it out step by step, each step one of
the services' own transactions with its audit entry, so a failure half way leaves every done
step done and a second apply finishes the rest. Apply twice and the second plan is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from signoff import errors, schemas
from signoff.domain import config, destinations, policies, reminders, subscriptions
from signoff.domain.accounts import Invitation
from signoff.domain.config import Document
from signoff.domain.policies import NamedPolicy
from signoff.domain.principals import ApiKey, Context, Role, Team, User, UserKind
from signoff.domain.subscriptions import Kind, Subscription
from signoff.services import invitations, journal, principals
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
class NewKey:
    """A service account's key made by apply: its secret exists only here."""

    service_account: str
    key_id: str
    secret: str
    file: str | None


@dataclass(frozen=True)
class _State:
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
    return f"{name}@{SERVICE_DOMAIN}"


def plan(
    db: Database,
    ctx: Context,
    document: Document,
    *,
    allowed_networks: Collection[destinations.Network] = (),
) -> Plan:
    """The changes apply would make. Subscriptions' URLs are checked here already against
    ``allowed_networks`` (``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``), as apply will check them."""
    ctx.principal.require_admin()
    state = _read(db, ctx, document.stack)
    _refuse_foreign(db, document)
    for spec in document.subscriptions.values():
        subscriptions.checked_target(Kind(spec.kind), spec.target, allowed_networks)
    return Plan(document.stack, tuple(_changes(document, state)))


def apply(
    db: Database,
    ctx: Context,
    document: Document,
    *,
    secret_key: str,
    invitation_ttl: timedelta,
    on_change: Callable[[Change], None] = lambda _change: None,
    on_key: Callable[[NewKey], None] = lambda _key: None,
    action: str = "config.apply",
    allowed_networks: Collection[destinations.Network] = (),
) -> tuple[Plan, list[NewKey]]:
    """Carry out the plan; the plan and the keys made. Each key is also handed to ``on_key``
    as soon as it exists, so a later step that fails cannot lose it."""
    planned = plan(db, ctx, document, allowed_networks=allowed_networks)
    run = _Run(db, ctx, document, secret_key, invitation_ttl, on_key, allowed_networks)
    for change in planned.changes:
        run.do(change)
        on_change(change)
    run.adopt_memberships()
    _record_run(db, ctx, action, planned)
    return planned, run.new_keys


def destroy(db: Database, ctx: Context, stack: str, *, apply_it: bool) -> Plan:
    """Remove everything ``stack`` created (a plan only, unless ``apply_it``)."""
    empty = Document(stack=stack)
    if not apply_it:
        return plan(db, ctx, empty)
    planned, _ = apply(
        db, ctx, empty, secret_key="", invitation_ttl=timedelta(0), action="config.destroy"
    )
    return planned


def _read(db: Database, ctx: Context, stack: str) -> _State:
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
    return _State(
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


def _refuse_foreign(db: Database, document: Document) -> None:
    """A name another stack manages is that stack's: refuse rather than share it."""
    wanted = [("team", name) for name in document.teams]
    wanted += [("service_account", name) for name in document.service_accounts]
    wanted += [("policy", name) for name in document.policies]
    wanted += [("subscription", name) for name in document.subscriptions]
    with db.read() as session:
        for kind, name in wanted:
            other = store.managed_elsewhere(session, document.stack, kind, name)
            if other is not None:
                raise errors.Conflict(f"{kind} {name} is managed by the stack {other!r}")


def _changes(document: Document, state: _State) -> list[Change]:
    wanted_members = _memberships(document)
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


def _memberships(document: Document) -> set[tuple[str, str]]:
    """(team, email) pairs the file asks for, service accounts included."""
    wanted = {
        (team, member.lower()) for team, spec in document.teams.items() for member in spec.members
    }
    for name, account in document.service_accounts.items():
        wanted |= {(team, service_account_email(name)) for team in account.teams}
    return wanted


def _team_creations(document: Document, state: _State) -> list[Change]:
    return [Change("create", "team", name) for name in document.teams if name not in state.teams]


def _team_removals(document: Document, state: _State) -> list[Change]:
    return [
        Change("delete", "team", name)
        for kind, name in state.managed
        if kind == "team" and name not in document.teams and name in state.teams
    ]


def _service_account_creations(document: Document, state: _State) -> list[Change]:
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
    document: Document, state: _State, wanted_members: set[tuple[str, str]]
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


def _people_removals(document: Document, state: _State) -> list[Change]:
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
    document: Document, state: _State, wanted_members: set[tuple[str, str]]
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


def _member_removals(state: _State, wanted_members: set[tuple[str, str]]) -> list[Change]:
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


def _key_changes(document: Document, state: _State) -> list[Change]:
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


def _service_account_removals(document: Document, state: _State) -> list[Change]:
    changes = []
    for kind, name in sorted(state.managed):
        if kind == "service_account" and name not in document.service_accounts:
            user = state.users.get(service_account_email(name))
            if user is not None and user.is_active:
                changes.append(Change("delete", "service_account", name, "disable"))
    return changes


def _policy_changes(document: Document, state: _State) -> list[Change]:
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


def _subscription_changes(document: Document, state: _State) -> list[Change]:
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


class _Run:
    """Carries out one plan's changes, remembering what the stack now manages."""

    def __init__(
        self,
        db: Database,
        ctx: Context,
        document: Document,
        secret_key: str,
        invitation_ttl: timedelta,
        on_key: Callable[[NewKey], None],
        allowed_networks: Collection[destinations.Network],
    ) -> None:
        self.db, self.ctx, self.document = db, ctx, document
        self.secret_key, self.invitation_ttl = secret_key, invitation_ttl
        self.on_key = on_key
        self.allowed_networks = allowed_networks
        self.new_keys: list[NewKey] = []

    def do(self, change: Change) -> None:
        getattr(self, f"_{change.verb}_{change.kind}")(change)

    def remember(self, kind: str, name: str, object_id: str) -> None:
        with self.db.write() as session:
            store.remember(session, self.document.stack, kind, name, object_id, datetime.now(UTC))

    def forget(self, kind: str, name: str) -> None:
        with self.db.write() as session:
            store.forget(session, self.document.stack, kind, name)

    def adopt_memberships(self) -> None:
        """Record the memberships of people this stack invited, made when they accepted (into
        the invitation's teams), so removing them from the file removes them. Memberships of
        anyone else were made by hand or by another stack, and are never taken over."""
        state = _read(self.db, self.ctx, self.document.stack)
        for team, email in _memberships(self.document):
            if not state.manages("person", email):
                continue
            user, existing = state.users.get(email), state.teams.get(team)
            is_member = user is not None and existing and user.id in existing.member_ids
            if user is not None and is_member and not state.manages("member", f"{team}/{email}"):
                self.remember("member", f"{team}/{email}", user.id)

    def _create_team(self, change: Change) -> None:
        team = principals.create_team(self.db, self.ctx, name=change.name)
        self.remember("team", change.name, team.id)

    def _delete_team(self, change: Change) -> None:
        principals.delete_team(self.db, self.ctx, change.name)
        self.forget("team", change.name)

    def _create_invitation(self, change: Change) -> None:
        invitation, _ = invitations.invite(
            self.db,
            self.ctx,
            email=change.name,
            teams=change.data["teams"],
            role=Role(change.data["role"]),
            ttl=self.invitation_ttl,
            secret_key=self.secret_key,
        )
        self.remember("person", change.name, invitation.id)

    def _delete_invitation(self, change: Change) -> None:
        for invitation in invitations.list_invitations(self.db, self.ctx):
            if (
                invitation.email == change.name
                and invitation.status(datetime.now(UTC)) == "pending"
            ):
                invitations.revoke(self.db, self.ctx, invitation.id)
        self.forget("person", change.name)

    def _update_person(self, change: Change) -> None:
        role = change.data.get("role")
        principals.update_user(
            self.db,
            self.ctx,
            change.name,
            role=Role(role) if role else None,
            name=change.data.get("name"),
        )

    def _delete_person(self, change: Change) -> None:
        principals.update_user(self.db, self.ctx, change.name, is_active=False)

    def _create_member(self, change: Change) -> None:
        team, _, email = change.name.partition("/")
        found = principals.add_member(self.db, self.ctx, team=team, user=email)
        self.remember("member", change.name, found.id)

    def _delete_member(self, change: Change) -> None:
        team, _, email = change.name.partition("/")
        principals.remove_member(self.db, self.ctx, team=team, user=email)
        self.forget("member", change.name)

    def _create_service_account(self, change: Change) -> None:
        account = self.document.service_accounts[change.name]
        user = principals.create_user(
            self.db,
            self.ctx,
            email=service_account_email(change.name),
            name=account.description or change.name,
            kind=UserKind.SERVICE,
        )
        self.remember("service_account", change.name, user.id)

    def _delete_service_account(self, change: Change) -> None:
        email = service_account_email(change.name)
        principals.update_user(self.db, self.ctx, email, is_active=False)

    def _create_api_key(self, change: Change) -> None:
        created = principals.create_api_key(
            self.db,
            self.ctx,
            user=service_account_email(change.name),
            name=f"signoff.yaml {self.document.stack}",
            scopes=change.data["scopes"],
            expires_in=change.data["expires_in"],
        )
        self.remember("api_key", change.name, created.api_key.id)
        key = NewKey(change.name, created.api_key.id, created.secret, change.data["file"])
        self.new_keys.append(key)
        self.on_key(key)

    def _update_api_key(self, change: Change) -> None:
        self._delete_api_key(change)
        self._create_api_key(change)

    def _delete_api_key(self, change: Change) -> None:
        with self.db.read() as session:
            key_id = store.managed(session, self.document.stack).get(("api_key", change.name))
        if key_id is not None:
            principals.revoke_api_key(self.db, self.ctx, key_id)
            self.forget("api_key", change.name)

    def _create_policy(self, change: Change) -> None:
        spec: schemas.PolicyReplace = change.data["spec"]
        body = spec.model_dump() | {"name": change.name}
        policy = named_policies.create(self.db, self.ctx, schemas.PolicyCreate(**body))
        self.remember("policy", change.name, policy.id)

    def _update_policy(self, change: Change) -> None:
        named_policies.replace(self.db, self.ctx, change.name, change.data["spec"])

    def _delete_policy(self, change: Change) -> None:
        named_policies.delete(self.db, self.ctx, change.name)
        self.forget("policy", change.name)

    def _create_subscription(self, change: Change) -> None:
        spec: schemas.SubscriptionReplace = change.data["spec"]
        body = spec.model_dump() | {"name": change.name}
        made = subscribing.create(
            self.db,
            self.ctx,
            schemas.SubscriptionCreate(**body),
            allowed_networks=self.allowed_networks,
        )
        self.remember("subscription", change.name, made.id)

    def _update_subscription(self, change: Change) -> None:
        subscribing.replace(
            self.db,
            self.ctx,
            change.name,
            change.data["spec"],
            allowed_networks=self.allowed_networks,
        )

    def _delete_subscription(self, change: Change) -> None:
        subscribing.delete(self.db, self.ctx, change.name)
        self.forget("subscription", change.name)


def _record_run(db: Database, ctx: Context, action: str, planned: Plan) -> None:
    with db.write() as session:
        journal.record(
            session,
            ctx,
            at=datetime.now(UTC),
            action=action,
            object_type="stack",
            object_id=planned.stack,
            after={"changes": [str(change) for change in planned.changes[:500]]},
        )
