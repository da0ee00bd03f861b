"""signoff.yaml: reading it (line numbers, unknown keys, environment variables) and making the
database hold what it says: plan, apply twice, change, destroy, and never more."""

from __future__ import annotations

import json
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest

from signoff import errors
from signoff.domain import config as files
from signoff.domain.principals import Role
from signoff.services import (
    audit,
    config,
    config_plan,
    invitations,
    policies,
    principals,
    subscriptions,
)
from tests import factories
from tests.factories import CLI, SECRET_KEY

THREE_TEAMS = """\
stack: ml-platform
teams:
  data-owners:
    members: [dana@example.com, Eve@Example.com]
  model-approvers-prod:
    members: [dana@example.com, frank@example.com]
  reviewers:
    description: people who label low-confidence predictions
    members: [grace@example.com]
people:
  dana@example.com: {name: Dana, role: admin}
service_accounts:
  nightly-etl:
    teams: [data-owners]
    key: {scopes: ["approvals:read", "approvals:write"], expires_in: 90d}
policies:
  prod-promotion:
    description: two prod approvers, never the requester, with a reason
    approvers: ["team:model-approvers-prod"]
    quorum: 2
    comment_required: true
    timeout: 72h
"""


def load(text: str, **environ: str) -> files.Document:
    return files.load(text, environ).document


def apply(db, text: str, **environ: str):
    return config.apply(
        db, CLI, load(text, **environ), secret_key=SECRET_KEY, invitation_ttl=timedelta(days=7)
    )


def lines_of(planned: config_plan.Plan) -> list[str]:
    return [str(change) for change in planned.changes]


def test_an_unknown_key_is_refused_with_its_line():
    with pytest.raises(
        errors.InvalidInput, match=r"signoff.yaml:4: teams.data-owners.membrs: unknown key 'membrs'"
    ):
        load("stack: s\nteams:\n  data-owners:\n    membrs: [a@example.com]\n")


def test_a_wrong_value_names_its_line_and_path():
    with pytest.raises(errors.InvalidInput, match=r":5: policies.p.quorum"):
        load("policies:\n  p:\n    approvers: [team:x]\n    description: d\n    quorum: lots\n")


def test_a_duplicate_key_and_bad_yaml_are_refused_with_their_line():
    with pytest.raises(errors.InvalidInput, match=r":3: 'a' appears twice"):
        load("teams:\n  a: {}\n  a: {}\n")
    with pytest.raises(errors.InvalidInput, match=r"signoff.yaml:2: not valid YAML"):
        load("teams:\n  a: b: c\n")


def test_environment_variables_fill_values_and_a_missing_one_is_an_error():
    text = "policies:\n  p:\n    approvers: [team:x]\n    description: ${DESC} costs $$5\n"
    assert load(text, DESC="it").policies["p"].description == "it costs $5"
    with pytest.raises(errors.InvalidInput, match=r":4: the environment variable DESC is not set"):
        load(text)


def test_the_published_json_schema_is_current():
    published = Path(__file__).parents[2] / "docs" / "signoff.schema.json"
    assert json.loads(published.read_text()) == files.json_schema(), (
        "regenerate it: signoff config schema > docs/signoff.schema.json"
    )


def test_the_schema_refuses_unknown_keys_everywhere():
    schema = files.json_schema()
    assert schema["additionalProperties"] is False
    for definition in schema["$defs"].values():
        if definition.get("type") == "object" and "properties" in definition:
            assert definition.get("additionalProperties") is False, definition


def test_three_teams_applied_twice_change_nothing_the_second_time(db):
    planned = config.plan(db, CLI, load(THREE_TEAMS))
    shown = lines_of(planned)
    assert "+ team data-owners" in shown
    assert (
        "+ invitation dana@example.com (role admin, into data-owners, model-approvers-prod)"
        in shown
    )
    assert "+ invitation eve@example.com (role member, into data-owners)" in shown
    assert "+ service_account nightly-etl (nightly-etl@service.signoff.localhost)" in shown
    assert "+ api_key nightly-etl (approvals:read, approvals:write)" in shown
    assert "+ policy prod-promotion" in shown
    applied, keys = apply(db, THREE_TEAMS)
    assert applied.changes == planned.changes
    assert [key.service_account for key in keys] == ["nightly-etl"]
    assert principals.authenticate(db, keys[0].secret, secret_key=SECRET_KEY).user is not None
    again, more_keys = apply(db, THREE_TEAMS)
    assert again.is_empty
    assert more_keys == []
    assert config.plan(db, CLI, load(THREE_TEAMS)).is_empty
    sent = {i.email: i for i in invitations.list_invitations(db, CLI)}
    assert sent["dana@example.com"].role == "admin"
    assert sent["dana@example.com"].teams == ["data-owners", "model-approvers-prod"]
    assert policies.get(db, CLI, "prod-promotion").rules.quorum == 2
    assert [e.action for e in audit.export(db, CLI)].count("config.apply") == 2


def test_people_who_have_accounts_are_added_to_teams_and_given_roles(db):
    factories.user(db, "dana@example.com")
    apply(db, THREE_TEAMS)
    teams = {t.name: t for t in principals.list_teams(db, CLI)}
    users = {u.email: u for u in principals.list_users(db, CLI)}
    assert users["dana@example.com"].id in teams["data-owners"].member_ids
    assert users["dana@example.com"].role is Role.ADMIN
    assert "dana@example.com" not in {i.email for i in invitations.list_invitations(db, CLI)}


def test_changing_the_file_shows_a_diff_and_applies_only_that(db):
    apply(db, THREE_TEAMS)
    changed = THREE_TEAMS.replace("quorum: 2", "quorum: 3").replace(
        "    members: [grace@example.com]\n", "    members: []\n"
    )
    shown = lines_of(config.plan(db, CLI, load(changed)))
    assert shown == [
        "~ policy prod-promotion (quorum 2 -> 3)",
        "- invitation grace@example.com (revoke)",
    ]
    apply(db, changed)
    assert config.plan(db, CLI, load(changed)).is_empty


def test_a_member_removed_from_the_file_leaves_the_team(db):
    factories.user(db, "frank@example.com")
    apply(db, THREE_TEAMS)
    without = THREE_TEAMS.replace("[dana@example.com, frank@example.com]", "[dana@example.com]")
    shown = lines_of(config.plan(db, CLI, load(without)))
    assert "- member model-approvers-prod/frank@example.com" in shown
    assert (
        "- person frank@example.com (disable: sessions and keys stop)" not in shown
    )  # not invited by the stack
    apply(db, without)
    team = next(t for t in principals.list_teams(db, CLI) if t.name == "model-approvers-prod")
    frank = next(u for u in principals.list_users(db, CLI) if u.email == "frank@example.com")
    assert frank.id not in team.member_ids
    assert frank.is_active


def test_destroy_removes_what_the_stack_made_and_nothing_else(db):
    factories.team(db, "platform")  # made by hand
    factories.user(db, "ops@example.com", teams=("platform",))
    apply(db, THREE_TEAMS)
    planned = config.destroy(db, CLI, "ml-platform", apply_it=False)
    assert "- team data-owners" in lines_of(planned)
    assert not any("platform " in line or "ops@" in line for line in lines_of(planned))
    config.destroy(db, CLI, "ml-platform", apply_it=True)
    assert [t.name for t in principals.list_teams(db, CLI)] == ["platform"]
    assert policies.list_policies(db, CLI)[0] == []
    account = next(u for u in principals.list_users(db, CLI) if u.email.startswith("nightly-etl"))
    assert not account.is_active
    assert all(
        i.status(i.created_at) in ("revoked", "pending")
        for i in invitations.list_invitations(db, CLI)
    )
    assert config.destroy(db, CLI, "ml-platform", apply_it=False).is_empty


def test_a_team_made_by_hand_is_used_but_never_deleted(db):
    factories.team(db, "reviewers")
    apply(db, THREE_TEAMS)
    config.destroy(db, CLI, "ml-platform", apply_it=True)
    assert "reviewers" in {t.name for t in principals.list_teams(db, CLI)}


def test_a_policy_made_by_hand_with_the_same_name_is_refused_not_taken_over(db):
    factories.team(db, "model-approvers-prod")
    from signoff import schemas

    policies.create(
        db,
        CLI,
        schemas.PolicyCreate(name="prod-promotion", approvers=["team:model-approvers-prod"]),
    )
    with pytest.raises(errors.Conflict, match="did not create"):
        config.plan(db, CLI, load(THREE_TEAMS))


def test_another_stack_cannot_take_over_a_team(db):
    apply(db, THREE_TEAMS)
    other = "stack: other\nteams:\n  data-owners: {}\n"
    with pytest.raises(errors.Conflict, match="managed by the stack 'ml-platform'"):
        config.plan(db, CLI, load(other))


def test_a_changed_key_scope_replaces_the_key(db):
    _, keys = apply(db, THREE_TEAMS)
    narrower = THREE_TEAMS.replace('["approvals:read", "approvals:write"]', '["approvals:read"]')
    assert lines_of(config.plan(db, CLI, load(narrower))) == [
        "~ api_key nightly-etl"
        " (scopes approvals:read, approvals:write -> approvals:read: a new key)"
    ]
    _, new_keys = apply(db, narrower)
    assert len(new_keys) == 1
    with pytest.raises(errors.Unauthenticated, match="revoked"):
        principals.authenticate(db, keys[0].secret, secret_key=SECRET_KEY)


def test_only_admins_plan(db):
    member = factories.user(db, "bob@example.com")
    with pytest.raises(errors.PermissionDenied):
        config.plan(db, factories.context(db, member), load(THREE_TEAMS))


def test_apply_never_turns_back_on_someone_an_admin_disabled(db):
    apply(db, THREE_TEAMS)
    account = config_plan.service_account_email("nightly-etl")
    principals.update_user(db, CLI, account, is_active=False)  # say its key leaked
    assert config.plan(db, CLI, load(THREE_TEAMS)).is_empty
    assert not next(u for u in principals.list_users(db, CLI) if u.email == account).is_active


def test_a_membership_made_by_hand_is_never_taken_over_and_removed(db):
    factories.team(db, "platform")
    factories.user(db, "ops@example.com", teams=("platform",))
    listed = THREE_TEAMS.replace(
        "teams:\n", "teams:\n  platform:\n    members: [ops@example.com]\n", 1
    )
    apply(db, listed)
    config.destroy(db, CLI, "ml-platform", apply_it=True)
    platform = next(t for t in principals.list_teams(db, CLI) if t.name == "platform")
    ops = next(u for u in principals.list_users(db, CLI) if u.email == "ops@example.com")
    assert ops.id in platform.member_ids


def test_a_key_made_by_an_apply_that_then_fails_is_handed_over_at_once(db):
    broken = THREE_TEAMS.replace(
        'approvers: ["team:model-approvers-prod"]', 'approvers: ["nobody@example.com"]'
    )
    handed = []
    with pytest.raises(errors.UnknownApprover):
        config.apply(
            db,
            CLI,
            load(broken),
            secret_key=SECRET_KEY,
            invitation_ttl=timedelta(days=7),
            on_key=handed.append,
        )
    assert [key.service_account for key in handed] == ["nightly-etl"]
    assert principals.authenticate(db, handed[0].secret, secret_key=SECRET_KEY).user is not None


HOOKS = """\
stack: ops
subscriptions:
  ops-hook:
    kind: webhook
    target: ${OPS_HOOK_URL}
    filter:
      type: [approval.settled]
      data: {status: [rejected, expired]}
  owners-mail:
    kind: email
    target: [dana@example.com]
"""
HOOK_URL = "https://hooks.example.com/services/T0/B0/s3cr3t"


def test_subscriptions_are_planned_applied_changed_and_destroyed(db):
    def plan(text: str, url: str = HOOK_URL) -> list[str]:
        return lines_of(config.plan(db, CLI, load(text, OPS_HOOK_URL=url)))

    assert plan(HOOKS) == [
        "+ subscription ops-hook (webhook)",
        "+ subscription owners-mail (email)",
    ]
    apply(db, HOOKS, OPS_HOOK_URL=HOOK_URL)
    made = subscriptions.get(db, CLI, "ops-hook")
    assert (made.target, made.filter["data"]) == (HOOK_URL, {"status": ["rejected", "expired"]})
    assert plan(HOOKS) == []
    changed = HOOKS.replace("[rejected, expired]", "[rejected]")
    (line,) = plan(changed, url=HOOK_URL + "-rotated")
    assert line.startswith("~ subscription ops-hook (target 'https://hooks.example.com/…#")
    assert "; filter {" in line
    assert "s3cr3t" not in line  # plans land in CI logs
    apply(db, changed, OPS_HOOK_URL=HOOK_URL + "-rotated")
    assert subscriptions.get(db, CLI, "ops-hook").target == HOOK_URL + "-rotated"
    without_mail = changed.split("  owners-mail:")[0]
    assert plan(without_mail, url=HOOK_URL + "-rotated") == ["- subscription owners-mail"]
    config.destroy(db, CLI, "ops", apply_it=True)
    assert subscriptions.list_subscriptions(db, CLI) == ([], None)


def test_a_subscription_made_by_hand_is_refused_not_taken_over(db):
    factories.subscription(db, "ops-hook")
    with pytest.raises(errors.Conflict, match="a subscription ops-hook exists"):
        config.plan(db, CLI, load(HOOKS, OPS_HOOK_URL=HOOK_URL))


def test_a_subscription_at_a_private_address_is_refused_at_plan(db):
    document = load(HOOKS, OPS_HOOK_URL="http://10.0.0.5/hook")
    with pytest.raises(errors.InvalidInput, match="public addresses"):
        config.plan(db, CLI, document)
    private = [ip_network("10.0.0.0/8")]
    assert len(config.plan(db, CLI, document, allowed_networks=private).changes) == 2


@pytest.mark.parametrize(
    ("wrong", "says"),
    [
        (
            ("[rejected, expired]", "rejected"),
            "signoff.yaml:8: subscriptions.ops-hook.filter.data.status: write a list",
        ),
        (
            ("[approval.settled]", "[approval.setled]"),
            "signoff.yaml:7: subscriptions.ops-hook.filter.type[0]: 'approval.setled' is not",
        ),
        (
            ("[dana@example.com]", "[dana]"),
            "signoff.yaml:11: subscriptions.owners-mail.target: 'dana' is not an email address",
        ),
    ],
)
def test_a_wrong_subscription_names_its_line_and_path(wrong, says):
    with pytest.raises(errors.InvalidInput) as refused:
        load(HOOKS.replace(*wrong), OPS_HOOK_URL=HOOK_URL)
    assert refused.value.detail.startswith(says)


WITH_REMINDERS = (
    THREE_TEAMS
    + """\
    reminders: [4h, 12h]
    escalation: {after: 20h, approvers: ["team:reviewers", "team:data-owners"]}
"""
)


def test_a_policy_s_reminders_and_escalation_are_applied_and_changed_like_its_rules(db):
    apply(db, WITH_REMINDERS)
    made = policies.get(db, CLI, "prod-promotion")
    assert made.reminders == (4 * 3600, 12 * 3600)
    assert made.escalation is not None
    assert made.escalation.after_seconds == 20 * 3600
    assert [r.name for r in made.escalation.approvers] == ["reviewers", "data-owners"]
    assert config.plan(db, CLI, load(WITH_REMINDERS)).is_empty
    changed = WITH_REMINDERS.replace("[4h, 12h]", "[4h, 14h]").replace("after: 20h", "after: 1d")
    assert lines_of(config.plan(db, CLI, load(changed))) == [
        "~ policy prod-promotion (reminders [14400, 43200] -> [14400, 50400]; escalation "
        "(72000, ['team:data-owners', 'team:reviewers']) -> (86400, ['team:data-owners', "
        "'team:reviewers']))"
    ]
    apply(db, changed)
    assert config.plan(db, CLI, load(changed)).is_empty
    late = WITH_REMINDERS.replace("[4h, 12h]", "[4h, 80h]")
    with pytest.raises(errors.InvalidInput, match="reminder 3d8h is not before the deadline"):
        apply(db, late)
