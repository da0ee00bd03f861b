"""Server configuration: the only place that reads environment variables.

Every setting is ``SIGNOFF_<NAME>``; ``docs/configuration.md`` lists them all.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal, Self
from urllib.parse import urlsplit

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def is_webhook_secret(value: str) -> bool:
    """``whsec_`` (optional, as Standard Webhooks libraries take it) and non-empty base64."""
    encoded = value.removeprefix("whsec_")
    try:
        return bool(base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True))
    except ValueError:
        return False


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SIGNOFF_", extra="ignore")

    database_url: str = Field(
        default="sqlite:///signoff.db",
        description="SQLAlchemy URL; the default is an SQLite file in the working directory.",
    )
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Where people reach this server."
    )
    admin_api_key: SecretStr | None = Field(
        default=None, description="When set, an admin API key with this value exists at start."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key for task tokens; generated and kept in the database when unset.",
    )
    webhook_secret: SecretStr | None = Field(
        default=None,
        description="Standard Webhooks signing secret (whsec_...); generated when unset.",
    )
    webhook_previous_secret: Annotated[list[SecretStr], NoDecode] = Field(
        default=[],
        description="During a rotation, the secret (or comma-separated secrets) receivers may "
        "still verify with: every webhook is signed with it too. Empty once they moved on.",
    )
    run_worker: bool = Field(
        default=True, description="Run the dispatcher and scheduler inside the server process."
    )
    db_pool_size: int = Field(default=20, ge=1)
    delivery_timeout_seconds: float = Field(default=10.0, gt=0)
    delivery_backoff_base_seconds: float = Field(default=1.0, gt=0)
    delivery_backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    delivery_max_age_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    delivery_concurrency: int = Field(default=32, ge=1)
    worker_max_sleep_seconds: float = Field(
        default=5.0,
        gt=0,
        description="Longest a worker sleeps without a notification before looking again.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a server trusts what it read about an API key. Changes made "
        "through this server, or on PostgreSQL through any process, apply at once; this bounds "
        "only changes it cannot hear of (admin commands on another process's SQLite file).",
    )
    allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default=[],
        description="Only clients in these networks (comma-separated CIDRs, e.g. "
        "'10.0.0.0/8,192.168.1.0/24') may use the API; empty: everyone. /healthz is exempt.",
    )
    webhook_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default=[],
        description="Private, loopback or link-local networks (comma-separated CIDRs) that "
        "callbacks and webhooks may still reach; empty: public addresses only.",
    )
    metrics_allowed_networks: Annotated[list[IPvAnyNetwork], NoDecode] = Field(
        default=[],
        description="Clients in these networks (comma-separated CIDRs) may read GET /metrics, "
        "without credentials; empty: nobody may.",
    )
    wait_max_seconds: int = Field(default=300, ge=1, description="Longest long-poll wait.")
    mfa_required: bool = Field(
        default=True,
        description="Every person must enrol an authenticator app (TOTP) before using the "
        "portal. When false, enrolment is offered, and passwords must then be at least 15 "
        "characters (NIST SP 800-63B for a single factor) instead of 8.",
    )
    session_idle_seconds: int = Field(
        default=3600, ge=60, description="A portal session ends after this long unused."
    )
    session_max_seconds: int = Field(
        default=12 * 3600, ge=300, description="A portal session ends this long after sign-in."
    )
    cookie_secure: bool | None = Field(
        default=None,
        description="Send portal cookies only over HTTPS; unset: true when public_url is https.",
    )
    login_max_failures: int = Field(
        default=5, ge=1, description="Wrong passwords or codes in a row that lock an account."
    )
    login_lockout_seconds: int = Field(
        default=900, ge=1, description="How long a locked account stays locked."
    )
    login_attempts_per_minute: int = Field(
        default=20,
        ge=1,
        description="Sign-in, code and reset attempts one client address may make per minute, "
        "per server process.",
    )
    invitation_ttl_seconds: int = Field(
        default=7 * 86400, ge=60, description="How long an invitation link works."
    )
    password_reset_ttl_seconds: int = Field(
        default=3600, ge=60, description="How long a password-reset link works."
    )
    smtp_host: str | None = Field(
        default=None,
        description="SMTP server for email; unset: approvals email nobody, and invitations "
        "and password resets fail to send.",
    )
    smtp_port: int | None = Field(
        default=None, description="Default 587 with starttls, 465 with tls, 25 with none."
    )
    smtp_security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="starttls (upgrade), tls (implicit TLS) or none."
    )
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = Field(
        default="signoff <signoff@localhost>", description="The From: of every email."
    )
    slack_bot_token: SecretStr | None = Field(
        default=None,
        description="The Slack app's bot token (xoxb-...); unset: Slack is off, and Slack "
        "subscriptions' deliveries fail with a clear error.",
    )
    slack_signing_secret: SecretStr | None = Field(
        default=None,
        description="The Slack app's signing secret, to verify clicks on Approve and Reject; "
        "unset: /slack/interactions answers 404 slack_not_configured.",
    )
    slack_api_url: str = Field(
        default="https://slack.com/api/",
        description="Slack's Web API; change it only to point at a test server.",
    )
    log_level: str = "info"
    oidc_issuer: str | None = Field(
        default=None,
        description="OpenID Connect issuer URL, exactly as the provider's discovery document "
        "names it (e.g. 'https://id.example.com/realms/acme'); unset: no OIDC sign-in. Must "
        "be https, except on a loopback address.",
    )
    oidc_client_id: str = Field(
        default="", description="This server's client id at the identity provider."
    )
    oidc_client_secret: SecretStr | None = Field(
        default=None,
        description="The client's secret; unset for a public client (PKCE only).",
    )
    oidc_scopes: str = Field(
        default="openid email profile",
        description="Scopes asked for at sign-in (space-separated; must include 'openid').",
    )
    oidc_groups_claim: str = Field(
        default="groups",
        description="ID token claim listing the person's groups; each group becomes a team "
        "they are a member of. Empty: teams are not synced from the identity provider.",
    )
    oidc_allowed_groups: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="Only people in at least one of these groups (comma-separated) may sign "
        "in with OIDC; empty: everyone the identity provider lets through.",
    )
    oidc_trust_email: bool = Field(
        default=False,
        description="Link a provider identity to the existing account with its email even "
        "when the provider does not say email_verified: true (Microsoft Entra ID never does). "
        "Set it only when the provider alone controls its users' addresses.",
    )
    oidc_display_name: str = Field(
        default="your identity provider",
        description="Name of the identity provider on the sign-in button.",
    )

    @field_validator(
        "allowed_networks",
        "webhook_allowed_networks",
        "metrics_allowed_networks",
        "oidc_allowed_groups",
        "webhook_previous_secret",
        mode="before",
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_secret", "webhook_previous_secret")
    @classmethod
    def _standard_webhooks_secrets(cls, value: Any) -> Any:
        given = value if isinstance(value, list) else [value] if value is not None else []
        for secret in given:
            if not is_webhook_secret(secret.get_secret_value()):
                raise ValueError("a webhook secret is 'whsec_' followed by base64")
        return value

    @field_validator(
        "oidc_issuer",
        "oidc_client_secret",
        "slack_bot_token",
        "slack_signing_secret",
        mode="before",
    )
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("oidc_issuer")
    @classmethod
    def _https_issuer(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            raise ValueError("the issuer must be an https:// URL (http:// only on loopback)")
        return value

    @model_validator(mode="after")
    def _complete_oidc(self) -> Self:
        if self.oidc_issuer is None:
            return self
        if not self.oidc_client_id:
            raise ValueError("SIGNOFF_OIDC_CLIENT_ID is required with SIGNOFF_OIDC_ISSUER")
        if "openid" not in self.oidc_scopes.split():
            raise ValueError("SIGNOFF_OIDC_SCOPES must include 'openid'")
        if self.oidc_allowed_groups and not self.oidc_groups_claim:
            raise ValueError("SIGNOFF_OIDC_ALLOWED_GROUPS needs SIGNOFF_OIDC_GROUPS_CLAIM")
        return self

    @property
    def secure_cookies(self) -> bool:
        if self.cookie_secure is not None:
            return self.cookie_secure
        return self.public_url.startswith("https://")

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def email_enabled(self) -> bool:
        return self.smtp_host is not None

    @property
    def slack_enabled(self) -> bool:
        """Slack messages are sent (the bot token is set)."""
        return self.slack_bot_token is not None

    @property
    def oidc_enabled(self) -> bool:
        return self.oidc_issuer is not None

    @property
    def oidc_redirect_uri(self) -> str:
        """Where the identity provider sends people back; register it there."""
        return f"{self.public_url.rstrip('/')}/auth/oidc/callback"
