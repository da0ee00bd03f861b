"""The apprise sender against local servers speaking each service's real wire format: a JSON
endpoint, Twilio's SMS API (its plugin's fixed https URL pointed at a local server: the one
test seam), and ntfy on a server of one's own. Failures are results with a reason; hosts a
URL names are held to the webhook address rules, fixed public services are not."""

from __future__ import annotations

import base64
import json
import logging
from datetime import UTC, datetime, timedelta
from ipaddress import ip_network
from urllib.parse import parse_qs

import pytest
from apprise.plugins.twilio import NotifyTwilio

from signoff import errors
from signoff.domain import apprise_urls, events
from signoff.domain.deliveries import Delivery, TargetKind
from signoff.worker.senders import apprise
from tests.receivers import Receiver, free_port

LOOPBACK = (ip_network("127.0.0.0/8"), ip_network("::1/128"))
PUBLIC_URL = "https://signoff.example.com/"
NOW = datetime(2026, 11, 25, 10, 2, tzinfo=UTC)
SID, TOKEN = "AC" + "0123456789abcdef" * 2, "f00dfeedf00dfeedf00dfeedf00dfeed"


def created(**data: object) -> events.Event:
    approval = {
        "id": "ap_1",
        "title": "Promote fraud-model v7 to prod",
        "body": "AUC 0.91 on the holdout;\n\nsee the report.",
        "status": "pending",
        "deadline_at": (NOW + timedelta(hours=4)).isoformat(),
        "callback_url": "https://ci.example.com/secret-callback",
        "emailed": [],
    }
    return events.Event(
        "evt_1", events.APPROVAL_CREATED, "ap_1", "user:usr_1", approval | data, NOW
    )


def delivery(target: str, event: events.Event | None = None) -> Delivery:
    return Delivery("msg_1", event or created(), TargetKind.APPRISE, target, 0, NOW)


async def sent(target: str, *, allowed=LOOPBACK, event: events.Event | None = None, timeout=5.0):
    return await apprise.send(
        delivery(target, event), public_url=PUBLIC_URL, timeout=timeout, allowed=allowed
    )


async def test_a_json_endpoint_gets_the_title_and_the_open_link_but_no_decision_link():
    with Receiver() as receiver:
        port = receiver.httpd.server_address[1]
        result = await sent(f"json://127.0.0.1:{port}/hook")
        (call,) = receiver.wait_for(1)
    assert (result.ok, result.error) == (True, None)
    body = json.loads(call.body)
    assert body["title"] == "Approval requested: Promote fraud-model v7 to prod"
    assert body["message"].splitlines() == [
        "AUC 0.91 on the holdout; see the report.",
        "Status: pending, decide by 2026-11-25 14:02 UTC",
        "Open in signoff: https://signoff.example.com/approvals/ap_1",
    ]
    assert "/decide/" not in call.body.decode()
    assert "secret-callback" not in call.body.decode()  # the public envelope only


async def test_an_sms_through_twilio_is_posted_in_twilios_wire_format(monkeypatch):
    with Receiver() as twilio:
        twilio.status, twilio.answer = 201, b'{"sid": "SM1", "status": "queued"}'
        port = twilio.httpd.server_address[1]
        # The test seam: the plugin's fixed API URL, pointed at the local server.
        monkeypatch.setattr(
            NotifyTwilio,
            "notify_sms_url",
            f"http://127.0.0.1:{port}/2010-04-01/Accounts/{{sid}}/Messages.json",
        )
        # Twilio is a fixed public host: no address rule applies, even with none allowed.
        result = await sent(f"twilio://{SID}:{TOKEN}@+15551234567/+15557654321", allowed=())
        (call,) = twilio.wait_for(1)
    assert (result.ok, result.error) == (True, None)
    assert call.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert (
        call.headers["Authorization"]
        == "Basic " + base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    )
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    fields = parse_qs(call.body.decode(), strict_parsing=True)
    assert (fields["From"], fields["To"]) == (["+15551234567"], ["+15557654321"])
    (text,) = fields["Body"]
    assert text.startswith("Approval requested: Promote fraud-model v7 to prod")
    assert text.rstrip().endswith("Open in signoff: https://signoff.example.com/approvals/ap_1")


async def test_twilio_refusing_the_credentials_is_a_failure_with_twilios_reason(monkeypatch):
    with Receiver() as twilio:
        twilio.fail_next = 1
        port = twilio.httpd.server_address[1]
        url = f"http://127.0.0.1:{port}/2010-04-01/Accounts/{{sid}}/Messages.json"
        monkeypatch.setattr(NotifyTwilio, "notify_sms_url", url)
        result = await sent(f"twilio://{SID}:{TOKEN}@+15551234567/+15557654321")
    assert not result.ok
    assert "Failed to send Twilio notification" in result.error
    assert "503" in result.error
    assert TOKEN not in result.error
    assert SID not in result.error


async def test_ntfy_on_a_server_of_ones_own_gets_topic_title_and_message():
    with Receiver() as ntfy:
        ntfy.status, ntfy.answer = 200, b'{"id": "x1", "event": "message"}'
        port = ntfy.httpd.server_address[1]
        result = await sent(f"ntfy://127.0.0.1:{port}/ml-approvals")
        (call,) = ntfy.wait_for(1)
    assert result.ok, result.error
    body = json.loads(call.body)
    assert body["topic"] == "ml-approvals"
    assert body["title"] == "Approval requested: Promote fraud-model v7 to prod"
    assert "Open in signoff: https://signoff.example.com/approvals/ap_1" in body["message"]


async def test_a_receiver_that_is_down_is_a_failure_saying_so():
    result = await sent(f"json://127.0.0.1:{free_port()}/hook")
    assert not result.ok
    assert "Connection error" in result.error, result.error


async def test_an_answer_that_is_not_2xx_is_a_failure_with_its_status():
    with Receiver() as receiver:
        receiver.fail_next = 1
        result = await sent(f"form://127.0.0.1:{receiver.httpd.server_address[1]}/hook")
    assert not result.ok
    assert "503" in result.error, result.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_a_host_at_a_private_address_is_refused_unless_allowed(host):
    with Receiver() as receiver:
        result = await sent(f"json://{host}:{receiver.httpd.server_address[1]}/hook", allowed=())
        assert receiver.started == 0  # nothing reached it
    assert not result.ok
    assert result.error.startswith("DestinationRefused: ")
    assert "SIGNOFF_WEBHOOK_ALLOWED_NETWORKS" in result.error


async def test_email_through_apprise_is_held_to_the_rules_by_its_smtp_server():
    result = await sent("mailtos://user:pw@example.com?smtp=127.0.0.1&to=a@example.com", allowed=())
    assert not result.ok
    assert "127.0.0.1" in result.error
    assert "DestinationRefused" in result.error


async def test_a_service_that_hangs_is_cut_off_at_the_timeout():
    with Receiver() as receiver:
        receiver.delay = 3
        port = receiver.httpd.server_address[1]
        result = await sent(f"json://127.0.0.1:{port}/hook", timeout=0.5)
    assert not result.ok
    assert result.error == "no answer within 0.5s"
    assert result.latency_ms < 2000


async def test_the_reason_of_one_send_is_not_mixed_with_another_sends(caplog):
    caplog.set_level(logging.WARNING)
    with Receiver() as good, Receiver() as bad:
        bad.fail_next = 1
        ok, failed = (
            await sent(f"json://127.0.0.1:{good.httpd.server_address[1]}/a"),
            await sent(f"json://127.0.0.1:{bad.httpd.server_address[1]}/b"),
        )
    assert ok.ok
    assert ok.error is None
    assert not failed.ok
    assert failed.error.count("503") == 1


def test_each_approval_event_reads_as_one_short_notification():
    def decided(verdict: str, status: str) -> events.Event:
        data = {
            "approval_id": "ap_1",
            "title": "Nightly load",
            "decision": {"verdict": verdict, "user": "bob@example.com", "comment": "looks fine"},
            "previous_status": "pending",
            "status": status,
        }
        return events.Event("evt_2", events.APPROVAL_DECIDED, "ap_1", "user:u", data, NOW)

    title, body = apprise.message(decided("approve", "approved").public_envelope(), PUBLIC_URL)
    assert title == "Nightly load: approve by bob@example.com"
    assert body.splitlines()[:2] == ["Comment: looks fine", "Status: approved"]
    canceled = events.Event(
        "evt_3",
        events.APPROVAL_CANCELED,
        "ap_1",
        "user:u",
        {"title": "Nightly load", "reason": "rerun", "previous_status": "pending"}
        | {"status": "canceled"},
        NOW,
    )
    reminder = events.Event(
        "evt_4",
        events.APPROVAL_REMINDER_DUE,
        "ap_1",
        "system:scheduler",
        {"title": "Nightly load", "deadline_at": NOW.isoformat(), "status": "pending"},
        NOW,
    )
    title, body = apprise.message(reminder.public_envelope(), PUBLIC_URL)
    assert title == "Reminder: Nightly load"
    assert body.splitlines()[0] == "Status: pending, decide by 2026-11-25 10:02 UTC"
    title, body = apprise.message(canceled.public_envelope(), PUBLIC_URL)
    assert title == "Approval canceled: Nightly load"
    assert body.splitlines() == [
        "Reason: rerun",
        "Status: pending -> canceled",
        "Open in signoff: https://signoff.example.com/approvals/ap_1",
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"twilio://{SID}:{TOKEN}@+15551234567/+15557654321", "twilio://...cdef:f...d@"),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", "discord://4...8/J...s"),
        ("json://user:hunter2@hooks.example.com/x?token=abc", "json://user:****@hooks.example.com"),
    ],
)
def test_apprise_urls_are_shown_in_their_privacy_form(url, shown):
    assert apprise_urls.shown(url).startswith(shown)
    for secret in (TOKEN, "JHMHI8qBe7bk2ZwO5U711o3dV_js", "hunter2"):
        assert secret not in apprise_urls.shown(url)


def test_an_unknown_scheme_is_refused_with_a_stable_code():
    with pytest.raises(errors.UnknownAppriseUrl) as refused:
        apprise_urls.check("bogus://user:secret@host/x")
    assert refused.value.code == "unknown_apprise_url"
    assert "secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        (f"twilio://{SID}:{TOKEN}@+15551234567/+15557654321", []),
        ("discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV_js", []),
        ("ntfy://ml-approvals", []),  # ntfy.sh
        ("ntfys://ntfy.example.com/ml-approvals", [("ntfy.example.com", None)]),
        ("json://hooks.example.com:8080/x", [("hooks.example.com", 8080)]),
        ("mailtos://me:pw@gmail.com?to=ops@example.com", [("smtp.gmail.com", 587)]),
        (
            "workflows://prod-00.westus.logic.azure.com/wf/sig",
            [("prod-00.westus.logic.azure.com", None)],
        ),
    ],
)
def test_the_hosts_a_url_connects_to_are_known_or_fixed(url, hosts):
    assert apprise_urls.hosts(apprise_urls.plugin(url), url.partition(":")[0]) == hosts


def test_matrix_never_follows_well_known_discovery_to_another_host():
    """Discovery would send to whatever host matrix.example.com's .well-known answer names,
    past the check of the host the URL names: it is off, so nothing is fetched for it."""
    found = apprise_urls.plugin("matrixs://user:pass@matrix.example.com/%23room")
    assert found.discovery is False
    assert found.server_discovery() == ""  # no request made: the URL's host is used
    assert apprise_urls.hosts(found, "matrixs") == [("matrix.example.com", None)]


def test_a_url_whose_connected_host_cannot_be_told_is_refused():
    with pytest.raises(errors.InvalidInput) as refused:
        apprise_urls.check("syslog://")
    assert refused.value.code == "invalid_input"
    assert refused.value.extra["field"] == "target"
    apprise_urls.check("ntfys://ntfy.example.com/ml-approvals")  # names its host: fine
