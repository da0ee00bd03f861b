"""Carrying out a ``signoff.yaml`` plan: each change one call of the services' own (teams,
people, invitations, keys, named policies, subscriptions), in its own transaction with its
audit entry, and what the stack then manages remembered (``store/config``) in another, so a
failure half way leaves every done step done and a second apply finishes the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from signoff import schemas
from signoff.domain import destinations
from signoff.domain.config import Document
from signoff.domain.principals import Context, Role, UserKind
from signoff.services import config_plan, invitations, principals
from signoff.services import policies as named_policies
from signoff.services import subscriptions as subscribing
from signoff.services.config_plan import Change
from signoff.store import config as store
from signoff.store.engine import Database


@dataclass(frozen=True)
class NewKey:
    """A service account's key made by apply: its secret exists only here."""

    service_account: str
    key_id: str
    secret: str
    file: str | None


class Run:
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
        state = config_plan.read_state(self.db, self.ctx, self.document.stack)
        for team, email in config_plan.memberships(self.document):
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
            email=config_plan.service_account_email(change.name),
            name=account.description or change.name,
            kind=UserKind.SERVICE,
        )
        self.remember("service_account", change.name, user.id)

    def _delete_service_account(self, change: Change) -> None:
        email = config_plan.service_account_email(change.name)
        principals.update_user(self.db, self.ctx, email, is_active=False)

    def _create_api_key(self, change: Change) -> None:
        created = principals.create_api_key(
            self.db,
            self.ctx,
            user=config_plan.service_account_email(change.name),
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
