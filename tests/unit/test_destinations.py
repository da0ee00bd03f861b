"""Server-side request forgery: callbacks and webhooks reach public addresses only, unless an
operator allows a network; names are checked as resolved, and the request goes to the
checked address."""

from __future__ import annotations

from datetime import UTC, datetime
from ipaddress import ip_address, ip_network

import httpx
import pytest

from signoff import errors
from signoff.domain import destinations
from signoff.domain.deliveries import Delivery, TargetKind
from signoff.domain.events import Event
from signoff.worker.senders import webhook
from tests.receivers import Receiver

LOOPBACK = [ip_network("127.0.0.0/8")]


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2001:4860:4860::8888", True),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("127.0.0.1", False),
        ("169.254.169.254", False),  # cloud metadata services
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),  # noqa: S104 (an address to refuse, not to bind)
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),  # IPv4 loopback written as IPv6
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_public_addresses_are_allowed_by_default(address, public):
    assert destinations.is_allowed(ip_address(address), []) is public


def test_an_allowed_network_opens_its_private_addresses_only():
    assert destinations.is_allowed(ip_address("127.0.0.1"), LOOPBACK)
    assert destinations.is_allowed(ip_address("::ffff:127.0.0.1"), LOOPBACK)
    assert not destinations.is_allowed(ip_address("10.0.0.1"), LOOPBACK)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://api.localhost/hook",
        "http://[::1]/hook",
        "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.8/",
    ],
)
def test_a_callback_url_at_a_private_address_is_refused_at_once(url):
    with pytest.raises(errors.InvalidInput, match="SIGNOFF_WEBHOOK_ALLOWED_NETWORKS") as refused:
        destinations.check_url(url, [], field="callback_url")
    assert refused.value.extra["field"] == "callback_url"


def test_a_callback_url_with_a_public_address_or_a_name_passes_the_first_check():
    destinations.check_url("https://hooks.example.com/x", [], field="callback_url")
    destinations.check_url("http://93.184.215.14/x", [], field="callback_url")


def delivery(target: str) -> Delivery:
    event = Event("evt_1", "approval.settled", "ap_1", "system:test", {}, datetime.now(UTC))
    return Delivery("msg_1", event, TargetKind.CALLBACK, target, 0, datetime.now(UTC))


async def test_a_name_that_resolves_to_a_private_address_is_not_sent_to():
    with Receiver() as receiver:
        target = receiver.url.replace("127.0.0.1", "localhost")
        async with httpx.AsyncClient() as http:
            result = await webhook.send(http, delivery(target), ("whsec_" + "A" * 44,), 5.0, ())
        assert not result.ok
        assert "DestinationRefused" in (result.error or "")
        assert receiver.received == []


async def test_an_allowed_name_is_sent_to_its_checked_address_with_its_host_header():
    with Receiver() as receiver:
        target = receiver.url.replace("127.0.0.1", "localhost")
        async with httpx.AsyncClient() as http:
            allowed = [*LOOPBACK, ip_network("::1/128")]
            result = await webhook.send(
                http, delivery(target), ("whsec_" + "A" * 44,), 5.0, allowed
            )
        assert result.ok, result.error
        [received] = receiver.received
        headers = {name.lower(): value for name, value in received.headers.items()}
        assert headers["host"] == httpx.URL(target).netloc.decode()


async def test_the_request_goes_to_the_address_that_was_checked():
    url, host, extensions = await webhook.pinned("https://localhost:8443/hook", LOOPBACK)
    assert url.host in ("127.0.0.1", "::1")
    assert host == "localhost:8443"
    assert extensions == {"sni_hostname": "localhost"}  # TLS still checks the name
