"""Configuration: environment variables (``PIGEON_*``) over a TOML file over defaults.

The TOML file is the one named by ``PIGEON_CONFIG`` (or ``--config``), else ``./pigeon.toml``
when it exists. Nested keys map to environment variables with a double underscore:
``[simulator] delivery_delay = 0.5`` is ``PIGEON_SIMULATOR__DELIVERY_DELAY=0.5``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from pigeon.carriers.settings import CarrierSettings, SimulatorSettings, SipGroupSettings, SipTrunkSettings


class DeliverySettings(BaseModel):
    """The delivery engine: how the outbound queue is drained."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it

    batch_size: int = Field(500, ge=1, le=10_000)
    rounds: int = Field(2, ge=1, le=16, description="Batches in flight at once per process.")
    lease_seconds: float = Field(60.0, gt=0)
    poll_interval: float = Field(0.2, gt=0, description="Idle sleep between queue polls.")
    max_attempts: int = Field(10, ge=1, description="Temporary failures before a message fails.")
    retry_base: float = Field(2.0, gt=0, description="First retry delay; doubles per attempt.")
    retry_max: float = Field(600.0, gt=0)
    in_doubt: Literal["resend", "unknown"] = Field(
        "resend", description="A message handed to a carrier whose answer was lost (a crash, a dropped link): "
        "send it again (at least once) or make it UNKNOWN (at most once).")
    drain_seconds: float = Field(10.0, ge=0, description="On SIGTERM: how long rounds in flight may take to finish.")
    handover: int = Field(64, ge=1, le=10_000, description="Messages marked in flight and handed to the carrier at "
                          "a time (a crash leaves at most about two lots per round in doubt).")


class WebhookSettings(BaseModel):
    """Pushing replies and delivery reports to users' servers (see pigeon.webhooks)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it

    timeout: float = Field(5.0, gt=0, le=60, description="Seconds a receiver has to answer one POST.")
    retry_base: float = Field(10.0, gt=0, description="First retry delay; doubles per attempt.")
    retry_max: float = Field(3600.0, gt=0, description="Longest delay between two attempts.")
    retry_hours: float = Field(48.0, ge=24, description="How long an event is retried before it fails.")
    per_receiver: int = Field(16, ge=1, le=100, description="POSTs in flight to one receiver at once.")
    in_flight: int = Field(200, ge=1, le=10_000, description="POSTs in flight per process at once.")
    poll_interval: float = Field(0.5, gt=0, description="Idle sleep between outbox polls.")


class LimitSettings(BaseModel):
    """Sizes of requests: bigger ones are refused before they are read (see pigeon.api.limits)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it

    body_bytes: int = Field(256 * 1024, ge=1024, description="Largest request body (JSON, XML, form).")
    bulk_body_bytes: int = Field(16 * 1024 * 1024, ge=1024,
                                 description="Largest body of sms/send-bulk (10,000 sends) and of the console's uploads.")
    body_overrides: dict[str, int] = Field(
        default_factory=dict, description="Path prefix -> largest body there (routes that take media)."
    )
    header_bytes: int = Field(16 * 1024, ge=1024, description="Largest request line and headers, in all.")


class RateLimitSettings(BaseModel):
    """Requests per account per second for each of Zoom's rate-limit labels (Number Management
    API), counted in the database so that they hold across processes."""

    model_config = ConfigDict(extra="forbid")

    light: int = Field(30, ge=1, description="LIGHT routes: requests per second per account.")
    medium: int = Field(20, ge=1, description="MEDIUM routes: requests per second per account.")
    heavy: int = Field(10, ge=1, description="HEAVY routes: requests per second per account.")
    window: float = Field(1.0, gt=0, le=60, description="Seconds a count lasts (Zoom's limits are per second).")


class SigninSettings(BaseModel):
    """Failed sign-ins, counted in the database per client address and per email (pigeon.accounts.throttle)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it

    email_failures: int = Field(10, ge=0, description="Failures per email per window before 429 (0: no limit).")
    address_failures: int = Field(50, ge=0, description="Failures per client address per window (0: no limit).")
    window: float = Field(60.0, gt=0, description="Seconds a count lasts, from its first failure.")


class ConsoleSettings(BaseModel):
    """The web console at /console (pigeon.api.console)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Serve the console at /console.")
    idle_minutes: float = Field(720.0, gt=0, description="A console session ends after this long without a request.")
    lifetime_hours: float = Field(168.0, gt=0, description="A console session ends this long after signing in.")
    secure_cookies: bool | None = Field(
        None, description="Mark cookies Secure; unset: when the request came over HTTPS (as the proxy says).")


class RetentionSettings(BaseModel):
    """How long messages are kept (``[retention]``): older final ones are purged in batches, each
    its own short transaction, never blocking sends."""

    model_config = ConfigDict(extra="forbid")

    days: float | None = Field(None, gt=0, description="Final messages older than this many days are purged, "
                               "with their parts, media, webhook deliveries; unset: kept for ever.")
    archive: str | None = Field(None, description="A directory: each purged message is first written to "
                                "messages-YYYY-MM-DD.jsonl.gz there.")
    batch: int = Field(1000, ge=1, le=50_000, description="Messages per purge transaction.")
    pause: float = Field(0.05, ge=0, description="Seconds between two batches (sends go between them).")
    every: float = Field(600.0, gt=0, description="Seconds between two purges by a delivering process.")


class CampaignSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    required: bool = Field(False, description="Only numbers in an active SMS campaign may send (10DLC).")


DEFAULT_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/bmp", "image/webp", "video/mp4",
                       "video/3gpp", "audio/mpeg", "audio/amr", "audio/mp4", "text/vcard", "text/x-vcard",
                       "text/plain", "application/pdf")


class MmsSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_file_bytes: int = Field(5_000_000, ge=1, le=100_000_000, description="Largest media file of an MMS.")
    max_total_bytes: int = Field(5_000_000, ge=1, le=100_000_000, description="Largest media of one MMS, all files.")
    max_files: int = Field(10, ge=1, le=50, description="Most media files in one MMS.")
    types: list[str] = Field(default_factory=lambda: list(DEFAULT_MEDIA_TYPES),
                             description="Media types an MMS may carry (type/subtype; type/* for all of a type).")


class ZohoSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_domain: str | None = Field(None, description="What the Zoho token endpoint answers as api_domain "
                                   "(default: public_url, else the request's own base URL).")
    grant_code_minutes: int = Field(10, ge=1, le=60, description="How long a self-client's grant code lasts.")


class Settings(BaseSettings):
    """Everything Pigeon can be told; see the README's configuration table."""

    model_config = SettingsConfigDict(
        env_prefix="PIGEON_", env_nested_delimiter="__", extra="forbid"
    )

    database_url: str = "sqlite:///pigeon.db"
    sqlite_synchronous: str = Field("FULL", pattern="^(OFF|NORMAL|FULL|EXTRA)$")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = Field(1, ge=1, le=64, description="Processes of `pigeon serve` sharing the port.")
    delivery_process: bool = Field(
        True, description="`pigeon serve` runs delivery (engine, carriers, receipts, webhooks) in a process of "
        "its own beside the API, so each has a core.")
    deliver: bool = Field(
        True, description="`pigeon serve` delivers too (in its delivery process); false: the API alone, while "
        "`pigeon worker` processes deliver (several machines on one PostgreSQL).")
    worker_port: int | None = Field(
        None, ge=1, le=65535, description="`pigeon worker` answers /health, /ready and /metrics on this port "
        "(on `host`); unset: no HTTP.")
    wake_socket: str | None = Field(None, description="Internal: where `pigeon serve` wakes its delivery process.")
    public_url: str | None = Field(None, description="Base URL printed in examples.")
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Addresses (or networks) of the reverse proxies whose X-Forwarded-For and X-Forwarded-Proto are "
        "believed: the client's address (sign-in throttles) and https (Secure cookies). Empty: none; '*': any.")
    default_region: str = Field("ZA", description="Region for numbers written without +country.")
    timezone: str = Field("UTC", description="Zone in which dateToSend and date filters are read.")
    max_parts: int = Field(10, ge=1, le=255, description="Longest message accepted, in parts.")
    prices: dict[str, float] = Field(
        default_factory=lambda: {"default": 1.0},
        description="Credits per SMS part by ISO region; 'default' for the rest.",
    )
    starting_credits: float = Field(1000.0, ge=0, description="Credits of the demo account.")
    auth_cache_seconds: float = Field(10.0, ge=0)
    demo_account: bool = Field(True, description="Create a demo account on first start.")
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    carriers: list[CarrierSettings] = Field(default_factory=list, description="SMPP carriers ([[carriers]]).")
    carrier_url: str | None = Field(None, description="smpp://system_id:password@host:port, the default route.")
    sip_trunks: list[SipTrunkSettings] = Field(default_factory=list, description="BYOC SIP trunks ([[sip_trunks]]).")
    sip_groups: list[SipGroupSettings] = Field(default_factory=list, description="SIP groups ([[sip_groups]]).")
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    mms: MmsSettings = Field(default_factory=MmsSettings)
    zoho: ZohoSettings = Field(default_factory=ZohoSettings)
    webhooks: WebhookSettings = Field(default_factory=WebhookSettings)
    webhooks_allow_private: bool = Field(
        False, description="Allow webhook URLs on loopback and private addresses (testing, private networks)."
    )
    limits: LimitSettings = Field(default_factory=LimitSettings)
    signin: SigninSettings = Field(default_factory=SigninSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    token_key: SecretStr | None = Field(
        None, description="HMAC key for stored API and URL tokens; unset: a random key kept in the database."
    )
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = Field(
        "text", description="text: readable lines; json: one JSON object a line, with message_id, account_id "
        "and carrier as fields where a line concerns them.")

    @model_validator(mode="after")
    def _carrier_names(self) -> Settings:
        names = [c.name for c in self.carriers]
        if self.carrier_url:
            CarrierSettings(name="default", url=self.carrier_url)  # checked here, so errors name the key
            names.append("default")
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"carrier names must be unique: {', '.join(dupes)} (the carrier_url one is 'default')")
        codes = [c.code for c in self.carriers if c.code is not None]
        if len(codes) != len(set(codes)):
            raise ValueError("carrier codes must be unique")
        trunks = {t.id: t for t in self.sip_trunks}
        if len(trunks) != len(self.sip_trunks) or len({g.id for g in self.sip_groups}) != len(self.sip_groups):
            raise ValueError("sip_trunks and sip_groups ids must be unique")
        for trunk in self.sip_trunks:
            if trunk.carrier is not None and trunk.carrier not in names:
                raise ValueError(f"sip trunk {trunk.id}: no carrier named {trunk.carrier!r}")
        for group in self.sip_groups:
            if group.trunk not in trunks:
                raise ValueError(f"sip group {group.id}: no sip trunk {group.trunk!r}")
        return self

    @field_validator("default_region")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @field_validator("prices")
    @classmethod
    def _prices(cls, value: dict[str, float]) -> dict[str, float]:
        prices = {k.upper() if k != "default" else k: float(v) for k, v in value.items()}
        if any(v < 0 for v in prices.values()):
            raise ValueError("prices must not be negative")
        prices.setdefault("default", 1.0)
        return prices

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_path()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)


def config_path() -> Path | None:
    """The TOML file in force, if any; a named file that does not exist is an error."""
    named = os.environ.get("PIGEON_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise FileNotFoundError(f"PIGEON_CONFIG names {named}, which is not a file")
        return path
    default = Path("pigeon.toml")
    return default if default.is_file() else None


def describe(error: Exception) -> str:
    """A configuration error as lines of 'source: key: reason'."""
    if not isinstance(error, ValidationError):
        return str(error)
    path = config_path()
    source = str(path) if path else "environment"
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(top level)"
        reason = item["msg"].removeprefix("Value error, ")
        lines.append(f"{source}: {key}: {reason}")
    return "\n".join(lines)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read once."""
    return Settings()
