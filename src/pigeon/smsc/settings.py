"""Settings of ``pigeon smsc``, the simulated carrier SMSC.

A configuration file (``pigeon smsc --config smsc.toml``) is TOML with the settings as
TOP-LEVEL keys (no ``[smsc]`` table), for example::

    host = "127.0.0.1"
    port = 2775
    control_port = 2776          # 0 disables the HTTP control endpoint; absent = port + 1
    receipt_delay = 0.5          # seconds from submit_sm to its receipt
    id_format = "hex"            # hex | decimal | hex_upper_padded
    receipt_id_format = "same"   # same | decimal | padded
    receipt_tlvs = true
    enquire_link_interval = 30   # 0 = the SMSC never sends enquire_link
    seed = 42                    # for the outcomes draw
    journal = "smsc.jsonl"       # every submit_sm, receipt and ack, kept across restarts (pigeon.smsc.journal)
    throttle = 500               # submit_sm per second per connection, then ESME_RTHROTTLED

    [[accounts]]
    system_id = "pigeon"
    password = "secret"

    [[rules]]                    # first match wins; replaces the default rules entirely
    pattern = "000$"             # regex searched in destination_addr
    submit_status = 0x0B         # answer the submit_sm with this command_status

    [[rules]]
    pattern = "666$"
    stat = "UNDELIV"             # DELIVRD EXPIRED DELETED UNDELIV ACCEPTD UNKNOWN REJECTD
    err = "001"

    [[rules]]
    pattern = "999$"
    no_receipt = true

    [outcomes]                   # numbers that match no rule: weights, normalised
    DELIVRD = 0.9
    UNDELIV = 0.1

Unknown keys are errors. Command line options override the file. ``load_settings`` raises
``ConfigError`` naming the file, the key and the reason.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

__all__ = [
    "STATS",
    "Account",
    "Rule",
    "Modes",
    "SmscSettings",
    "ConfigError",
    "load_settings",
    "default_rules",
]

#: Final states an SMSC may report, as written in receipt texts.
STATS = ("DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD")
Stat = Literal["DELIVRD", "EXPIRED", "DELETED", "UNDELIV", "ACCEPTD", "UNKNOWN", "REJECTD"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Account(_Strict):
    """An ESME allowed to bind."""

    system_id: str = Field(min_length=1, max_length=15)
    password: str = Field(max_length=8)
    max_binds: int | None = Field(None, ge=1, description="Binds of this system_id at once; one more is refused "
                                  "(ESME_RBINDFAIL), as a carrier that allows so many does.")


class Rule(_Strict):
    """What happens to a submit_sm whose destination_addr matches ``pattern``."""

    pattern: str
    stat: Stat = "DELIVRD"
    err: str | None = Field(None, description="3 digits; default 000 for DELIVRD, else 001.")
    submit_status: int | None = Field(None, ge=1, le=0xFFFFFFFF, description="Refuse the submit_sm with it.")
    no_receipt: bool = False

    @field_validator("pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from None
        return value

    @field_validator("err")
    @classmethod
    def _err(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"\d{3}", value):
            raise ValueError("must be 3 digits, e.g. 001")
        return value

    @model_validator(mode="after")
    def _default_err(self) -> Rule:
        if self.err is None:
            self.err = "000" if self.stat == "DELIVRD" else "001"
        return self


def default_rules() -> list[Rule]:
    """The in-process simulator's conventions: 000$ refused, 666$ fails, 999$ never reported."""
    return [
        Rule(pattern=r"000$", submit_status=0x0B),
        Rule(pattern=r"666$", stat="UNDELIV", err="001"),
        Rule(pattern=r"999$", no_receipt=True),
    ]


class Modes(_Strict):
    """Behaviours that can be switched at run time (``POST /mode``); None = off."""

    throttle: int | None = Field(None, ge=0, description="submit_sm accepted per second per connection.")
    queue_full_after: int | None = Field(None, ge=0, description="ESME_RMSGQFUL once N receipts are pending.")
    response_delay: float | None = Field(None, ge=0, description="Seconds before each submit_sm_resp.")
    drop_after: int | None = Field(None, ge=1, description="Drop the connection on the N-th next submit_sm.")
    receipt_before_response: bool = False
    receipt_delay: float = Field(1.0, ge=0, description="Seconds from submit_sm to its receipt.")


class SmscSettings(_Strict):
    """Everything ``pigeon smsc`` can be told (see the module docstring for the file format)."""

    host: str = "127.0.0.1"
    port: int = Field(2775, ge=0, le=65535)
    control_port: int | None = Field(None, ge=0, le=65535, description="None = port + 1; 0 = disabled.")
    accounts: list[Account] = Field(default_factory=lambda: [Account(system_id="pigeon", password="secret")])
    server_system_id: str = Field("pigeon-smsc", max_length=15, description="system_id in bind responses.")
    receipt_delay: float = Field(1.0, ge=0)
    rules: list[Rule] = Field(default_factory=default_rules)
    outcomes: dict[Stat, float] | None = None
    seed: int | None = None
    id_format: Literal["hex", "decimal", "hex_upper_padded"] = "hex"
    receipt_id_format: Literal["same", "decimal", "padded"] = "same"
    first_id: int = Field(0x1A2B3C, ge=0, description="Number of the first message id.")
    receipt_tlvs: bool = True
    tls_cert: str | None = Field(None, description="PEM certificate chain: SMPP over TLS (smpps://).")
    tls_key: str | None = Field(None, description="PEM private key of tls_cert (else read from tls_cert).")
    enquire_link_interval: float = Field(30.0, ge=0)
    throttle: int | None = Field(None, ge=0)
    queue_full_after: int | None = Field(None, ge=0)
    response_delay: float | None = Field(None, ge=0)
    drop_after: int | None = Field(None, ge=1)
    receipt_before_response: bool = False
    message_log: int = Field(10_000, ge=0, description="Submitted messages kept for GET /messages.")
    journal: str | None = Field(None, description="Append every submit_sm, receipt and acknowledgement to this "
                                "file (JSON lines), and on start send again the receipts it says are owed.")
    log_level: str = "INFO"

    @field_validator("outcomes")
    @classmethod
    def _weights(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value is None:
            return None
        if any(w < 0 for w in value.values()):
            raise ValueError("weights must not be negative")
        if not sum(value.values()) > 0:
            raise ValueError("weights must add up to more than 0")
        return value

    @model_validator(mode="after")
    def _unique_accounts(self) -> SmscSettings:
        ids = [a.system_id for a in self.accounts]
        if len(ids) != len(set(ids)):
            raise ValueError("accounts: a system_id appears twice")
        if not ids:
            raise ValueError("accounts: at least one is needed")
        return self

    def modes(self) -> Modes:
        """The run-time modes as configured at start."""
        return Modes(
            throttle=self.throttle,
            queue_full_after=self.queue_full_after,
            response_delay=self.response_delay,
            drop_after=self.drop_after,
            receipt_before_response=self.receipt_before_response,
            receipt_delay=self.receipt_delay,
        )


class ConfigError(Exception):
    """A configuration file that cannot be used; ``str()`` names the file, key and reason."""

    def __init__(self, file: str, key: str | None, reason: str) -> None:
        self.file, self.key, self.reason = file, key, reason
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + reason)


def _key(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_settings(path: str | Path | None = None, **overrides: object) -> SmscSettings:
    """Settings from the TOML file ``path`` (if any), with ``overrides`` (None values skipped).

    Raise ConfigError for an unreadable file, bad TOML, an unknown key or a bad value.
    """
    data: dict[str, object] = {}
    name = str(path) if path is not None else "command line"
    if path is not None:
        try:
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(name, None, f"cannot read: {exc.strerror or exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(name, None, f"not valid TOML: {exc}") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return SmscSettings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = _key(first["loc"]) or None
        reason = first["msg"]
        if first["type"] == "extra_forbidden":
            reason = "unknown key"
        more = len(exc.errors()) - 1
        if more:
            reason += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ConfigError(name, key, reason) from None
