"""Server configuration: the only place that reads environment variables.

Every setting is ``SIGNOFF_<NAME>``; ``docs/configuration.md`` lists them all.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, IPvAnyNetwork, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


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
    wait_max_seconds: int = Field(default=300, ge=1, description="Longest long-poll wait.")
    log_level: str = "info"

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
