"""The ``signoff`` command as a user runs it: processes, environment, exit codes, output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests import factories
from tests.conftest import RunningServer


def signoff(
    *args: str, env: dict[str, str], check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "signoff", *args],
        env=os.environ | env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"signoff {' '.join(args)} exited {result.returncode}: {result.stderr}"
        )
    return result


@pytest.fixture
def admin_env(database_url: str) -> dict[str, str]:
    return {"SIGNOFF_DATABASE_URL": database_url}


def test_admin_commands_work_on_the_database_directly(admin_env):
    user = json.loads(
        signoff(
            "users", "create", "alice@example.com", "--name", "Alice", "--json", env=admin_env
        ).stdout
    )
    assert user["email"] == "alice@example.com"
    signoff("teams", "create", "owners", env=admin_env)
    team = json.loads(
        signoff(
            "teams", "add-member", "owners", "alice@example.com", "--json", env=admin_env
        ).stdout
    )
    assert team["member_ids"] == [user["id"]]
    created = json.loads(
        signoff("keys", "create", "--user", "alice@example.com", "--json", env=admin_env).stdout
    )
    assert created["key"].startswith("sok_")
    listed = signoff("keys", "list", env=admin_env).stdout
    assert created["id"] in listed
    assert created["key"] not in listed
    signoff("keys", "revoke", created["id"], env=admin_env)
    assert "ok:" in signoff("audit", "verify", env=admin_env).stdout


def test_admin_command_errors_are_clear_and_non_zero(admin_env):
    signoff("users", "create", "alice@example.com", env=admin_env)
    again = signoff("users", "create", "ALICE@example.com", env=admin_env, check=False)
    assert again.returncode == 1
    assert again.stderr.startswith(
        "error: a user with email alice@example.com exists (duplicate_name)"
    )
    missing = signoff(
        "teams", "add-member", "ghosts", "alice@example.com", env=admin_env, check=False
    )
    assert (missing.returncode, "team_not_found" in missing.stderr) == (1, True)


def test_audit_verify_fails_after_tampering_and_export_writes_json_lines(
    admin_env, db, tmp_path: Path
):
    from sqlalchemy import update

    from signoff.store.tables import AuditEntryRow

    signoff("users", "create", "alice@example.com", env=admin_env)
    signoff("users", "create", "bob@example.com", env=admin_env)
    out = tmp_path / "audit.jsonl"
    signoff("audit", "export", "-o", str(out), env=admin_env)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["seq"] for line in lines] == [1, 2]
    assert lines[1]["after"]["email"] == "bob@example.com"
    with db.write() as session:
        session.execute(
            update(AuditEntryRow).where(AuditEntryRow.seq == 1).values(action="user.delete")
        )
    broken = signoff("audit", "verify", env=admin_env, check=False)
    assert broken.returncode == 1
    assert "BROKEN at entry 1" in broken.stderr


@pytest.fixture
def client_env(server: RunningServer) -> dict[str, dict[str, str]]:
    import signoff as sdk

    admin = sdk.Client(server.url, server.admin_key)
    for email in ("pipeline@example.com", "alice@example.com"):
        admin.people.create_user(email)
    env = {}
    for name in ("pipeline", "alice"):
        key = admin.people.create_key(user=f"{name}@example.com").key
        env[name] = {"SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": key}
    return env


def test_a_gate_from_the_shell(client_env):
    pipeline, alice = client_env["pipeline"], client_env["alice"]
    created = json.loads(
        signoff(
            "approvals",
            "create",
            "--title",
            "Apply batch?",
            "-a",
            "alice@example.com",
            "--context",
            '{"ratio": 0.064}',
            "--label",
            "nightly",
            "--json",
            env=pipeline,
        ).stdout
    )
    assert created["token"].startswith("sot_")
    assert created["id"] in signoff("approvals", "list", "--mine", env=alice).stdout
    decided = signoff("approvals", "approve", created["id"], "-m", "fine", env=alice).stdout
    assert "approve by alice@example.com via cli: fine" in decided
    waited = signoff("approvals", "wait", created["id"], "--json", env=pipeline)
    assert (waited.returncode, json.loads(waited.stdout)["status"]) == (0, "approved")


@pytest.mark.parametrize(("action", "code"), [("reject", 3), ("cancel", 5)])
def test_wait_exit_codes_tell_the_outcome(client_env, action, code):
    pipeline, alice = client_env["pipeline"], client_env["alice"]
    created = json.loads(
        signoff(
            "approvals", "create", "--title", "t", "-a", "alice@example.com", "--json", env=pipeline
        ).stdout
    )
    signoff("approvals", action, created["id"], env=alice if action == "reject" else pipeline)
    assert signoff("approvals", "wait", created["id"], env=pipeline, check=False).returncode == code


def test_wait_gives_up_at_its_timeout_with_exit_6(client_env):
    pipeline = client_env["pipeline"]
    created = json.loads(
        signoff(
            "approvals", "create", "--title", "t", "-a", "alice@example.com", "--json", env=pipeline
        ).stdout
    )
    assert (
        signoff(
            "approvals", "wait", created["id"], "--timeout", "0.5", env=pipeline, check=False
        ).returncode
        == 6
    )


def test_client_errors_name_the_problem(client_env, server):
    pipeline = client_env["pipeline"]
    bad = signoff(
        "approvals", "create", "--title", "t", "-a", "nobody@example.com", env=pipeline, check=False
    )
    assert (bad.returncode, "unknown_approver" in bad.stderr) == (1, True)
    invalid = signoff(
        "approvals",
        "create",
        "--title",
        "t",
        "-a",
        "alice@example.com",
        "--context",
        "{oops",
        env=pipeline,
        check=False,
    )
    assert "--context is not JSON" in invalid.stderr
    wrong_key = signoff(
        "approvals",
        "list",
        env={"SIGNOFF_URL": server.url, "SIGNOFF_API_KEY": "sok_wrong"},
        check=False,
    )
    assert (wrong_key.returncode, "unauthenticated" in wrong_key.stderr) == (1, True)


def test_version_and_help():
    assert signoff("--version", env={}).stdout.startswith("signoff ")
    assert "approvals" in signoff("--help", env={}).stdout


def test_a_bad_setting_is_one_clear_line_naming_the_variable(admin_env):
    env = admin_env | {"SIGNOFF_ALLOWED_NETWORKS": "10.0.0.0/8,not-a-network"}
    for command in (["users", "list"], ["server", "run", "--port", "0"]):
        ran = signoff(*command, env=env, check=False)
        assert ran.returncode == 1
        assert ran.stderr.strip() == (
            "error: SIGNOFF_ALLOWED_NETWORKS: value is not a valid IPv4 or IPv6 network"
        )


def test_keys_can_be_scoped_and_expire(admin_env):
    signoff("users", "create", "etl@example.com", "--service", env=admin_env)
    created = json.loads(
        signoff(
            "keys",
            "create",
            "--user",
            "etl@example.com",
            "--scope",
            "approvals:write",
            "--scope",
            "approvals:read",
            "--expires-in",
            "90d",
            "--json",
            env=admin_env,
        ).stdout
    )
    assert created["scopes"] == ["approvals:read", "approvals:write"]
    expires_at = datetime.fromisoformat(created["expires_at"])
    assert abs(expires_at - (datetime.now(UTC) + timedelta(days=90))) < timedelta(minutes=1)
    assert "approvals:read" in signoff("keys", "list", env=admin_env).stdout
    refused = signoff(
        "keys",
        "create",
        "--user",
        "etl@example.com",
        "--scope",
        "admin",
        env=admin_env,
        check=False,
    )
    assert (refused.returncode, "invalid_input" in refused.stderr) == (1, True)


def test_invitations_are_created_listed_resent_and_revoked_from_the_shell(admin_env):
    signoff("teams", "create", "owners", env=admin_env)
    env = admin_env | {"SIGNOFF_PUBLIC_URL": "https://signoff.example.com"}
    created = signoff("invitations", "create", "Dana@Example.com", "--team", "owners", env=env)
    assert "invited dana@example.com" in created.stdout
    assert "link (also emailed): https://signoff.example.com/invite/inv_" in created.stdout
    listed = json.loads(signoff("invitations", "list", "--json", env=env).stdout)
    assert [(i["email"], i["teams"], i["status"]) for i in listed] == [
        ("dana@example.com", ["owners"], "pending")
    ]
    resent = json.loads(signoff("invitations", "resend", listed[0]["id"], "--json", env=env).stdout)
    assert resent["send_count"] == 2
    assert resent["link"] not in created.stdout  # a new link: the old one stopped working
    revoked = json.loads(
        signoff("invitations", "revoke", listed[0]["id"], "--json", env=env).stdout
    )
    assert revoked["status"] == "revoked"
    again = signoff(
        "invitations", "create", "dana@example.com", "--team", "nope", env=env, check=False
    )
    assert again.returncode != 0
    assert "nope" in again.stderr


def test_users_are_disabled_enabled_and_given_roles_from_the_shell(admin_env):
    signoff("users", "create", "alice@example.com", env=admin_env)
    assert "False" in signoff("users", "disable", "alice@example.com", env=admin_env).stdout
    assert "True" in signoff("users", "enable", "alice@example.com", env=admin_env).stdout
    assert (
        "admin" in signoff("users", "set-role", "alice@example.com", "admin", env=admin_env).stdout
    )
    wrong = signoff("users", "set-role", "alice@example.com", "boss", env=admin_env, check=False)
    assert wrong.returncode != 0
    assert "admin or member" in wrong.stderr
    unlinked = signoff("users", "unlink-oidc", "alice@example.com", env=admin_env)
    assert "alice@example.com was not linked to a provider account" in unlinked.stdout
    signoff("teams", "create", "spare", env=admin_env)
    signoff("teams", "add-member", "spare", "alice@example.com", env=admin_env)
    assert (
        "[]"
        in signoff("teams", "remove-member", "spare", "alice@example.com", env=admin_env).stdout
    )
    assert "deleted team spare" in signoff("teams", "delete", "spare", env=admin_env).stdout


def test_a_slack_user_is_linked_listed_and_unlinked_from_the_shell(admin_env):
    signoff("users", "create", "dana@example.com", env=admin_env)
    linked = signoff(
        "users", "slack-link", "dana@example.com", "U012AB3CD", "--json", env=admin_env
    )
    assert json.loads(linked.stdout) == [{"slack_user_id": "U012AB3CD", "source": "explicit"}]
    assert "U012AB3CD" in signoff("users", "slack-links", "dana@example.com", env=admin_env).stdout
    unlinked = signoff("users", "slack-unlink", "dana@example.com", env=admin_env)
    assert unlinked.stdout.strip() == "unlinked U012AB3CD"
    wrong = signoff("users", "slack-link", "dana@example.com", "dana", env=admin_env, check=False)
    assert wrong.returncode != 0
    assert "is not a Slack user id" in wrong.stderr


def test_policies_are_admin_commands_on_the_database(admin_env):
    signoff("teams", "create", "prod-approvers", env=admin_env)
    made = json.loads(
        signoff(
            "policies",
            "create",
            "prod-promotion",
            "-a",
            "team:prod-approvers",
            "--quorum",
            "2",
            "--comment-required",
            "--timeout",
            "4h",
            "--on-timeout",
            "expire",
            "--json",
            env=admin_env,
        ).stdout
    )
    assert (made["quorum"], made["comment_required"], made["timeout_seconds"]) == (2, True, 14400)
    assert [a["name"] for a in made["approvers"]] == ["prod-approvers"]
    assert "prod-promotion" in signoff("policies", "list", env=admin_env).stdout
    shown = signoff("policies", "show", "prod-promotion", env=admin_env).stdout
    assert "approvers: team:prod-approvers" in shown
    assert "timeout: 4h; on timeout: expire" in shown
    signoff("policies", "replace", "prod-promotion", "-a", "team:prod-approvers", env=admin_env)
    assert json.loads(signoff("policies", "list", "--json", env=admin_env).stdout)[0]["quorum"] == 1
    assert "deleted" in signoff("policies", "delete", "prod-promotion", env=admin_env).stdout
    gone = signoff("policies", "show", "prod-promotion", env=admin_env, check=False)
    assert (gone.returncode, "policy_not_found" in gone.stderr) == (1, True)
    assert "policy.delete" in signoff("audit", "export", env=admin_env).stdout


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["Prod", "-a", "team:prod-approvers"], "policy name 'Prod' is not a lower-case slug"),
        (["p", "-a", "team:nobody"], "no such approver: 'team:nobody' (unknown_approver)"),
        (["p", "-a", "team:prod-approvers", "--quorum", "0"], "quorum: Input should be"),
        (["p", "-a", "team:prod-approvers", "--form", "{oops"], "--form is not JSON"),
    ],
)
def test_policy_command_errors_are_clear_and_non_zero(admin_env, args, says):
    signoff("teams", "create", "prod-approvers", env=admin_env)
    refused = signoff("policies", "create", *args, env=admin_env, check=False)
    assert refused.returncode == 1
    assert says in refused.stderr


def test_subscriptions_are_admin_commands_on_the_database(admin_env):
    made = json.loads(
        signoff(
            "subscriptions",
            "create",
            "ops-hook",
            "--webhook",
            "https://hooks.example.com/x",
            "--filter",
            '{"type": ["approval.settled"]}',
            "--json",
            env=admin_env,
        ).stdout
    )
    assert (made["kind"], made["filter"], made["enabled"]) == (
        "webhook",
        {"type": ["approval.settled"]},
        True,
    )
    signoff(
        "subscriptions",
        "create",
        "owners-mail",
        "--email",
        "a@example.com",
        "--email",
        "b@example.com",
        "--disabled",
        env=admin_env,
    )
    listed = json.loads(signoff("subscriptions", "list", "--json", env=admin_env).stdout)
    assert [(s["name"], s["target"], s["enabled"]) for s in listed] == [
        ("ops-hook", "https://hooks.example.com/x", True),
        ("owners-mail", ["a@example.com", "b@example.com"], False),
    ]
    shown = signoff("subscriptions", "show", "owners-mail", env=admin_env).stdout
    assert "(disabled)" in shown
    assert "email: a@example.com, b@example.com" in shown
    assert "deleted" in signoff("subscriptions", "delete", "ops-hook", env=admin_env).stdout
    gone = signoff("subscriptions", "show", "ops-hook", env=admin_env, check=False)
    assert (gone.returncode, "subscription_not_found" in gone.stderr) == (1, True)
    exported = signoff("audit", "export", env=admin_env).stdout
    assert "subscription.create" in exported
    assert "subscription.delete" in exported


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--webhook", "https://x.example.com", "--slack", "#x"], "give exactly one of"),
        (["--webhook", "http://127.0.0.1:9/hook"], "signoff sends only to public addresses"),
        (["--slack", "#x", "--filter", "{oops"], "--filter is not JSON"),
        (["--slack", "#x", "--filter", '{"type": "approval.settled"}'], "filter.type: write a"),
        (["--email", "nobody"], "'nobody' is not an email address (invalid_input)"),
    ],
)
def test_subscription_command_errors_are_clear_and_non_zero(admin_env, args, says):
    refused = signoff("subscriptions", "create", "s", *args, env=admin_env, check=False)
    assert refused.returncode == 1
    assert says in refused.stderr


def test_the_webhook_address_rules_come_from_the_settings(admin_env, tmp_path):
    loopback = ["--webhook", "http://127.0.0.1:9/hook"]
    allowed = admin_env | {"SIGNOFF_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8"}
    signoff("subscriptions", "create", "local", *loopback, env=allowed)
    path = tmp_path / "signoff.yaml"
    path.write_text(
        "stack: hooks\nsubscriptions:\n  local-too:\n"
        "    kind: webhook\n    target: http://127.0.0.1:9/other\n"
    )
    refused = signoff("plan", "-f", str(path), env=admin_env, check=False)
    assert (refused.returncode, "public addresses" in refused.stderr) == (1, True)
    planned = signoff("apply", "-f", str(path), env=allowed)
    assert "+ subscription local-too (webhook)" in planned.stdout


def test_an_approval_from_the_shell_can_name_a_policy(admin_env, client_env):
    pipeline = client_env["pipeline"]
    signoff("teams", "create", "prod-approvers", env=admin_env)
    signoff("teams", "add-member", "prod-approvers", "alice@example.com", env=admin_env)
    signoff(
        "policies",
        "create",
        "prod-promotion",
        "-a",
        "team:prod-approvers",
        "--quorum",
        "2",
        env=admin_env,
    )
    created = json.loads(
        signoff(
            "approvals",
            "create",
            "--title",
            "Promote v7?",
            "--policy",
            "prod-promotion",
            "--json",
            env=pipeline,
        ).stdout
    )
    assert (created["policy"]["name"], created["policy"]["quorum"]) == ("prod-promotion", 2)
    assert [a["name"] for a in created["approvers"]] == ["prod-approvers"]
    for extra, says in (
        (["-a", "alice@example.com"], "leave approvers out (invalid_input)"),
        (["--quorum", "1"], "leave out --quorum"),
    ):
        refused = signoff(
            "approvals",
            "create",
            "--title",
            "t",
            "--policy",
            "prod-promotion",
            *extra,
            env=pipeline,
            check=False,
        )
        assert (refused.returncode, says in refused.stderr) == (1, True), refused.stderr
    unknown = signoff(
        "approvals", "create", "--title", "t", "--policy", "nope", env=pipeline, check=False
    )
    assert "no policy named 'nope' (unknown_policy)" in unknown.stderr


SIGNOFF_YAML = """\
stack: ml-platform
teams:
  data-owners:
    members: [dana@example.com]
  reviewers: {}
service_accounts:
  nightly-etl:
    teams: [data-owners]
    key: {file: secrets/nightly-etl.key}
  scorer:
    key: {scopes: ["approvals:read"]}
policies:
  prod-promotion:
    approvers: ["team:data-owners"]
    quorum: 2
    comment_required: true
"""


def test_plan_apply_and_destroy_a_signoff_yaml_from_the_shell(admin_env, tmp_path):
    path = tmp_path / "signoff.yaml"
    path.write_text(SIGNOFF_YAML)
    planned = signoff("plan", "-f", str(path), env=admin_env, check=False)
    assert planned.returncode == 2  # changes to make
    assert "+ team data-owners" in planned.stdout
    assert "+ invitation dana@example.com (role member, into data-owners)" in planned.stdout
    applied = signoff("apply", "-f", str(path), env=admin_env)
    assert "changes applied" in applied.stdout
    key_file = tmp_path / "secrets" / "nightly-etl.key"
    assert key_file.read_text().startswith("sok_")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert key_file.read_text().strip() not in applied.stdout
    printed = [
        line for line in applied.stdout.splitlines() if "for scorer (shown only now)" in line
    ]
    assert len(printed) == 1
    again = signoff("plan", "-f", str(path), env=admin_env, check=False)
    assert (again.returncode, again.stdout.strip()) == (0, "stack ml-platform: nothing to change")
    assert "nothing to change" in signoff("apply", "-f", str(path), env=admin_env).stdout
    destroyed = signoff("destroy", "-f", str(path), "--yes", env=admin_env)
    assert "- team data-owners" in destroyed.stdout
    assert "destroyed" in destroyed.stdout
    teams = json.loads(signoff("teams", "list", "--json", env=admin_env).stdout)
    assert teams == []


def test_an_unknown_key_in_signoff_yaml_names_its_line(admin_env, tmp_path):
    path = tmp_path / "signoff.yaml"
    path.write_text(SIGNOFF_YAML.replace("    quorum: 2", "    quorom: 2"))
    refused = signoff("plan", "-f", str(path), env=admin_env, check=False)
    assert refused.returncode == 1
    assert "signoff.yaml:15: policies.prod-promotion.quorom: unknown key 'quorom'" in refused.stderr


def test_the_json_schema_of_signoff_yaml_is_printed():
    schema = json.loads(signoff("config", "schema", env={}).stdout)
    assert schema["title"] == "signoff.yaml"
    assert schema["additionalProperties"] is False


def test_deliveries_are_listed_shown_and_redriven_from_the_shell(admin_env, db):
    first, second = factories.delivery(db, "ap_1"), factories.delivery(db, "ap_2")
    factories.attempt_due(db, ok=False, backoff=factories.DIE_AT_ONCE)
    listed = json.loads(
        signoff("deliveries", "list", "--status", "dead", "--json", env=admin_env).stdout
    )
    assert [d["id"] for d in listed] == [second, first]  # newest first
    page = signoff("deliveries", "list", "--limit", "1", env=admin_env)
    assert second in page.stdout
    assert f"more: --cursor {second}" in page.stderr
    shown = signoff("deliveries", "show", first, env=admin_env).stdout
    assert f"{first}  dead  approval.settled  ap_1" in shown
    assert "1 attempt; failing since " in shown
    assert "last error: HTTP 503" in shown
    assert "503  HTTP 503  12 ms" in shown
    detail = json.loads(signoff("deliveries", "show", first, "--json", env=admin_env).stdout)
    assert [a["status_code"] for a in detail["attempt_log"]] == [503]

    assert signoff("deliveries", "redrive", first, env=admin_env).stdout == (
        f"redrove {first}: pending, due now\n"
    )
    again = signoff("deliveries", "redrive", first, env=admin_env, check=False)
    assert (again.returncode, "(delivery_not_dead)" in again.stderr) == (1, True)
    every = signoff(
        "deliveries", "redrive", "--all", "--status", "dead", "--subject", "ap_2", env=admin_env
    )
    assert every.stdout == "redrove 1 dead delivery\n"
    neither = signoff("deliveries", "redrive", env=admin_env, check=False)
    assert (neither.returncode, "--all" in neither.stderr) == (1, True)
    wrong = signoff("deliveries", "list", "--status", "lost", env=admin_env, check=False)
    assert wrong.stderr == (
        "error: --status is one of pending, delivered, dead, not 'lost' (invalid_input)\n"
    )
    pending = signoff("deliveries", "list", "--status", "pending", "--json", env=admin_env)
    assert {d["id"] for d in json.loads(pending.stdout)} == {first, second}
