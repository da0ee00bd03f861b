"""Apprise subscriptions end to end on a real server: a JSON endpoint subscribed over HTTP gets
a short notification with the approval's link; an SMS goes out through Twilio's API (a local
server in its place); an unknown scheme is refused at once; the URL's secrets are shown
nowhere."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from urllib.parse import parse_qs

import httpx
import pytest
from apprise.plugins.twilio import NotifyTwilio

import signoff
from tests.conftest import RunningServer
from tests.receivers import Receiver

SID, TOKEN = "AC" + "0123456789abcdef" * 2, "f00dfeedf00dfeedf00dfeedf00dfeed"
TWILIO = f"twilio://{SID}:{TOKEN}@+15551234567/+15557654321"


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    headers = {"authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.url, headers=headers) as client:
        yield client


@pytest.fixture
def sdk(server: RunningServer) -> Iterator[signoff.Client]:
    with signoff.Client(server.url, server.admin_key) as client:
        client.people.create_user("alice@example.com")
        yield client


def test_a_json_endpoint_gets_each_matching_event_as_a_short_notification(admin, sdk, server):
    with Receiver() as receiver:
        port = receiver.httpd.server_address[1]
        answer = admin.post(
            "/v1/subscriptions",
            json={
                "name": "ops-json",
                "kind": "apprise",
                "target": f"json://ops:hunter22@127.0.0.1:{port}/notify",
                "filter": {"type": ["approval.created"]},
            },
        )
        assert answer.status_code == 201, answer.text
        assert answer.json()["target"] == f"json://ops:****@127.0.0.1:{port}/notify"
        made = sdk.approvals.create(
            title="Load partition 2026-11-25", approvers=["alice@example.com"]
        )
        (call,) = receiver.wait_for(1)
    notification = json.loads(call.body)
    assert notification["title"] == "Approval requested: Load partition 2026-11-25"
    assert f"Open in signoff: {server.url}/approvals/{made.id}" in notification["message"]
    assert "/decide/" not in call.body.decode()
    deadline = time.monotonic() + 10  # the attempt is recorded just after the receiver answers
    while True:
        listed = admin.get("/v1/deliveries", params={"target_kind": "apprise"}).json()["items"]
        if [d["status"] for d in listed] != ["pending"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [(d["status"], d["purpose"]) for d in listed] == [("delivered", "subscription")]
    assert "hunter22" not in json.dumps(listed)
    audit = admin.get("/v1/audit", params={"object_type": "subscription"})
    assert audit.status_code == 200, audit.text
    assert "hunter22" not in audit.text


def test_an_sms_goes_out_through_twilios_api(admin, sdk, monkeypatch):
    with Receiver() as twilio:
        twilio.status, twilio.answer = 201, b'{"sid": "SM1", "status": "queued"}'
        port = twilio.httpd.server_address[1]
        monkeypatch.setattr(  # the test seam: Twilio's fixed API URL, at the local server
            NotifyTwilio,
            "notify_sms_url",
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{{sid}}/Messages.json",
        )
        sdk.subscriptions.create("on-call-sms", kind="apprise", target=TWILIO)
        made = sdk.approvals.create(title="Promote v7", approvers=["alice@example.com"])
        (call,) = twilio.wait_for(1)
    assert call.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    fields = parse_qs(call.body.decode())
    assert (fields["From"], fields["To"]) == (["+15551234567"], ["+15557654321"])
    assert fields["Body"][0].startswith("Approval requested: Promote v7")
    assert f"/approvals/{made.id}" in fields["Body"][0]
    shown = admin.get("/v1/subscriptions/on-call-sms").json()["target"]
    assert TOKEN not in shown
    assert SID not in shown


def test_an_unknown_scheme_is_refused_when_the_subscription_is_made(admin):
    answer = admin.post(
        "/v1/subscriptions",
        json={"name": "typo", "kind": "apprise", "target": "twillio://sid:secret@+1555/+1666"},
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert (problem["code"], problem["field"]) == ("unknown_apprise_url", "target")
    assert "secret" not in answer.text


def test_a_service_that_is_down_is_retried_and_its_reason_kept(sdk, server, admin):
    with Receiver() as receiver:
        receiver.fail_next = 2
        target = f"json://127.0.0.1:{receiver.httpd.server_address[1]}/x"
        sdk.subscriptions.create("flaky", kind="apprise", target=target)
        sdk.approvals.create(title="t", approvers=["alice@example.com"])
        receiver.wait_for(1)
    deadline = time.monotonic() + 10
    while True:
        (found,) = admin.get("/v1/deliveries", params={"target_kind": "apprise"}).json()["items"]
        if found["status"] == "delivered" or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (found["status"], found["attempts"]) == ("delivered", 3)
    detail = admin.get(f"/v1/deliveries/{found['id']}").json()
    errors = [attempt["error"] for attempt in detail["attempt_log"]]
    assert [e is None for e in errors] == [False, False, True]
    assert "503" in errors[0]


def test_a_url_naming_no_checkable_host_is_refused_when_the_subscription_is_made(admin):
    answer = admin.post(
        "/v1/subscriptions", json={"name": "local", "kind": "apprise", "target": "syslog://"}
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert (answer.json()["code"], answer.json()["field"]) == ("invalid_input", "target")
