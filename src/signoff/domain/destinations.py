"""Where signoff may send webhooks and callbacks: protection against server-side request
forgery.

A callback URL comes from whoever creates an approval; without a check, signoff would POST to
its own admin ports, a cloud metadata service (169.254.169.254) or anything else on the
private network it runs in. Only public addresses are reachable, unless an operator allows
networks (``SIGNOFF_WEBHOOK_ALLOWED_NETWORKS``, e.g. an internal receiver at 10.1.2.3/32).
The check runs on the addresses a name resolves to at send time, and the request then goes
to exactly that address, so a name that resolves differently the second time (DNS rebinding)
gains nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address
from urllib.parse import urlsplit

from signoff import errors

Network = IPv4Network | IPv6Network
Address = IPv4Address | IPv6Address


def is_allowed(address: Address, allowed: Collection[Network]) -> bool:
    """Public addresses always; any other (private, loopback, link-local, shared, reserved,
    multicast) only inside an allowed network."""
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if any(address in network for network in allowed):
        return True
    return address.is_global and not address.is_multicast


def refusal(host: str, address: Address) -> str:
    return (
        f"{host} is {address}, a private, loopback or reserved address; signoff sends only to "
        "public addresses unless SIGNOFF_WEBHOOK_ALLOWED_NETWORKS allows it"
    )


def check_url(url: str, allowed: Collection[Network], *, field: str) -> None:
    """Refuse at once a URL whose host is visibly not allowed (an address, or localhost);
    names are checked again, resolved, when something is sent."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        address: Address = IPv4Address("127.0.0.1")
    else:
        try:
            address = ip_address(host)
        except ValueError:
            return
    if not is_allowed(address, allowed):
        raise errors.InvalidInput(refusal(host, address), field=field)


def redacted(url: str) -> str:
    """``url`` fit for logs, audit entries and plans: scheme and host, and a digest that
    changes when anything else does. Tokens hide in paths (``hooks.slack.com/services/...``),
    queries and user info, so none of those are shown."""
    parts = urlsplit(url)
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…#{digest}"
