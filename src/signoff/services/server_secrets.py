"""The server's own keys: the task-token key and the webhook signing secrets.

Configured through settings in production (so a copy of the database alone cannot mint task
tokens); otherwise generated on first start and kept in the database, so a single-node
deployment needs no setup. Previous webhook secrets come from settings only: they exist for
the overlap of a rotation, while receivers move to the new secret, and every webhook is
signed with each of them as well as with the current one.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass

from signoff.store import server_secrets
from signoff.store.engine import Database


@dataclass(frozen=True)
class Keys:
    secret_key: str
    webhook_secret: str
    previous_webhook_secrets: tuple[str, ...] = ()

    @property
    def webhook_signing_secrets(self) -> tuple[str, ...]:
        """The current secret first, then each previous one that differs from it."""
        previous = (s for s in self.previous_webhook_secrets if s != self.webhook_secret)
        return (self.webhook_secret, *dict.fromkeys(previous))


def load(
    db: Database,
    *,
    secret_key: str | None,
    webhook_secret: str | None,
    previous_webhook_secrets: tuple[str, ...] = (),
) -> Keys:
    with db.write() as session:
        stored_key = server_secrets.ensure(session, "secret_key", lambda: secrets.token_hex(32))
        stored_webhook = server_secrets.ensure(session, "webhook_secret", _new_webhook_secret)
    return Keys(
        secret_key=secret_key or stored_key,
        webhook_secret=webhook_secret or stored_webhook,
        previous_webhook_secrets=previous_webhook_secrets,
    )


def _new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
