"""Webhook signatures across a secret rotation: signoff signs with every secret it holds, and
``signoff.webhooks.verify`` accepts any one signature that checks out."""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from signoff import errors, webhooks
from signoff.domain.deliveries import Delivery, TargetKind
from signoff.domain.events import Event
from signoff.services.server_secrets import Keys
from signoff.settings import Settings
from signoff.worker.senders import webhook


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


OLD, NEW, OTHER = new_secret(), new_secret(), new_secret()


def signed(*signing: str) -> tuple[bytes, dict[str, str]]:
    event = Event("evt_1", "approval.settled", "ap_1", "system:test", {"a": 1}, datetime.now(UTC))
    delivery = Delivery(
        "msg_1", event, TargetKind.CALLBACK, "https://x.example/", 0, event.occurred_at
    )
    return webhook.signed_request(delivery, signing)


def test_during_a_rotation_each_webhook_carries_a_signature_per_secret():
    body, headers = signed(NEW, OLD)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(s.startswith("v1,") for s in headers["webhook-signature"].split(" "))
    assert webhooks.verify(body, headers, OLD)["id"] == "evt_1"  # a receiver not moved yet
    assert webhooks.verify(body, headers, NEW)["id"] == "evt_1"  # one that has
    with pytest.raises(errors.InvalidSignature):
        webhooks.verify(body, headers, OTHER)


def test_a_receiver_holding_several_secrets_verifies_with_any_of_them():
    body, headers = signed(NEW)
    assert webhooks.verify(body, headers, [OLD, NEW])["type"] == "approval.settled"
    with pytest.raises(errors.InvalidSignature):
        webhooks.verify(body, headers, [OLD, OTHER])
    with pytest.raises(ValueError, match="at least one secret"):
        webhooks.verify(body, headers, [])


@pytest.mark.parametrize(
    "garbage", ["v1", "v1,not base64!", "v1,a,b", ",abc", "v2,AAAA", "   "], ids=repr
)
def test_a_malformed_signature_beside_a_good_one_does_not_hide_it(garbage):
    body, headers = signed(NEW)
    good = headers["webhook-signature"]
    assert webhooks.verify(body, headers | {"webhook-signature": f"{garbage} {good}"}, NEW)
    with pytest.raises(errors.InvalidSignature):
        webhooks.verify(body, headers | {"webhook-signature": garbage}, NEW)


def test_a_tampered_body_or_missing_signature_does_not_verify():
    body, headers = signed(NEW, OLD)
    with pytest.raises(errors.InvalidSignature):
        webhooks.verify(body.replace(b'"a":1', b'"a":2'), headers, OLD)
    without = {k: v for k, v in headers.items() if k != "webhook-signature"}
    with pytest.raises(errors.InvalidSignature):
        webhooks.verify(body, without, NEW)


def test_keys_sign_with_the_current_secret_first_and_each_previous_once():
    keys = Keys("k", NEW, previous_webhook_secrets=(OLD, NEW, OLD))
    assert keys.webhook_signing_secrets == (NEW, OLD)
    assert Keys("k", NEW).webhook_signing_secrets == (NEW,)


def test_previous_secrets_are_read_comma_separated_and_checked(monkeypatch):
    monkeypatch.setenv("SIGNOFF_WEBHOOK_PREVIOUS_SECRET", f"{OLD}, {OTHER}")
    assert [s.get_secret_value() for s in Settings().webhook_previous_secret] == [OLD, OTHER]
    monkeypatch.setenv("SIGNOFF_WEBHOOK_PREVIOUS_SECRET", "whsec_not base64!")
    with pytest.raises(ValidationError, match="'whsec_' followed by base64"):
        Settings()
    monkeypatch.delenv("SIGNOFF_WEBHOOK_PREVIOUS_SECRET")
    monkeypatch.setenv("SIGNOFF_WEBHOOK_SECRET", "whsec_")
    with pytest.raises(ValidationError, match="webhook_secret"):
        Settings()
