"""How carriers are declared: ``[[carriers]]`` tables in the TOML file, or one URL.

    [[carriers]]
    name = "acme"
    url = "smpp://pigeon:secret@smsc.example.net:2775"   # or host, port, system_id, password
    window = 64
    throughput = 200          # submit_sm per second for the whole cluster, 0 = no limit
    max_binds = 2             # binds at once for the whole cluster (default: one)
    countries = ["ZA"]        # routing: empty lists match every message

Messages go to the first carrier whose routing lists match and that is up; the others that
match are its failovers, in file order.
"""

from __future__ import annotations

import re
from typing import Literal
from urllib.parse import parse_qsl, unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from pigeon.smpp.coding import Alphabet, Split


class SimulatorSettings(BaseModel):
    """The embedded simulated carrier (see pigeon.carriers.simulator)."""

    model_config = ConfigDict(extra="forbid")  # a misspelt key is an error that names it

    delivery_delay: float = Field(1.0, ge=0, description="Seconds from submission to receipt.")
    fail_pattern: str = Field(r"666$", description="Regex on the E.164 number: receipt UNDELIV.")
    silent_pattern: str = Field(r"999$", description="Regex on the E.164 number: no receipt, ever.")
    reject_pattern: str = Field(r"000$", description="Regex on the E.164 number: submission refused.")


class CarrierSettings(BaseModel):
    """One carrier: an SMPP connection (or the simulator) and the messages it takes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    type: Literal["smpp", "simulator"] = "smpp"
    url: str | None = Field(None, description="smpp://system_id:password@host:port (smpps:// for TLS)")
    host: str = "127.0.0.1"
    port: int = Field(2775, ge=1, le=65535)
    system_id: str = Field("", max_length=15)
    password: str = Field("", max_length=8)
    system_type: str = Field("", max_length=12)
    bind: Literal["transceiver", "transmitter+receiver"] = "transceiver"
    addr_ton: int = Field(0, ge=0, le=255, description="TON of the bind's address_range.")
    addr_npi: int = Field(0, ge=0, le=255)
    address_range: str = Field("", max_length=40)
    source_ton: int | None = Field(None, ge=0, le=255, description="None: 5 for names, 1 for +numbers, else 0.")
    source_npi: int | None = Field(None, ge=0, le=255)
    dest_ton: int = Field(1, ge=0, le=255)
    dest_npi: int = Field(1, ge=0, le=255)
    default_source: str | None = Field(None, max_length=20, description="Sender when a message names none.")
    service_type: str = Field("", max_length=5)
    window: int = Field(64, ge=1, le=4096, description="submit_sm awaiting a response, at most.")
    throughput: float = Field(0.0, ge=0, description="submit_sm per second for the whole cluster (shared by its "
                              "binds); 0 = no limit.")
    max_binds: int | None = Field(None, ge=1, le=64, description="Binds the carrier allows this system_id, for the "
                                  "whole cluster (leased through the database); unset: one transceiver, or one "
                                  "transmitter and one receiver.")
    enquire_link: float = Field(30.0, ge=0, description="Seconds between enquire_link; 0 = never.")
    reconnect_min: float = Field(1.0, gt=0)
    reconnect_max: float = Field(60.0, gt=0)
    response_timeout: float = Field(30.0, gt=0, description="A request unanswered this long means the link is dead.")
    submit_timeout: float = Field(20.0, gt=0, description="How long a batch waits for the carrier before retrying later.")
    retries: int = Field(3, ge=0, description="Resends on ESME_RSYSERR before the message is retried later.")
    alphabet: Alphabet = Alphabet.GSM7
    packed: bool = Field(False, description="GSM 7-bit sent packed (8 septets in 7 octets).")
    split: Split = Split.UDH8
    registered_delivery: bool = True
    validity: int = Field(0, ge=0, description="Validity period in seconds; 0 = the SMSC's default.")
    tls: bool = False
    tls_verify: bool = True
    tls_ca: str | None = Field(None, description="PEM file of the CA that signed the SMSC's certificate.")
    prefixes: list[str] = Field(default_factory=list, description="Destination prefixes, e.g. '+2782'.")
    countries: list[str] = Field(default_factory=list, description="Destination regions, e.g. 'ZA'.")
    senders: list[str] = Field(default_factory=list, description="Regular expressions on the sender.")
    code: int | None = Field(None, ge=1, le=2**31 - 1, description="Its peering carrier_code: a provider exchange "
                             "partner's numbers are routed through it, both ways.")

    @model_validator(mode="before")
    @classmethod
    def _from_url(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("url"):
            return {**parse_url(data["url"]), **{k: v for k, v in data.items() if k != "url"}}
        return data

    @field_validator("prefixes")
    @classmethod
    def _prefixes(cls, value: list[str]) -> list[str]:
        out = []
        for prefix in value:
            digits = prefix.removeprefix("+")
            if not (digits.isascii() and digits.isdigit()):
                raise ValueError(f"{prefix!r} is not a number prefix such as '+27'")
            out.append("+" + digits)
        return out

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        for country in value:
            if not re.fullmatch(r"[A-Za-z]{2}", country):
                raise ValueError(f"{country!r} is not a two-letter region code")
        return [c.upper() for c in value]

    @field_validator("senders")
    @classmethod
    def _senders(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value

    @model_validator(mode="after")
    def _backoff(self) -> CarrierSettings:
        if self.reconnect_max < self.reconnect_min:
            raise ValueError("reconnect_max is below reconnect_min")
        if self.type == "smpp" and not self.system_id:
            raise ValueError("an smpp carrier needs a system_id (or a url)")
        if self.max_binds is not None and self.bind != "transceiver" and self.max_binds < 2:
            raise ValueError("max_binds: a transmitter and a receiver are two binds; allow at least 2")
        return self

    @property
    def slots(self) -> int:
        """Its bind slots: a transceiver each, or a transmitter and a receiver each."""
        if self.max_binds is None:
            return 1
        return self.max_binds if self.bind == "transceiver" else self.max_binds // 2


_URL_OPTIONS = {f for f in CarrierSettings.model_fields if f not in ("name", "url")}


def parse_url(url: str) -> dict[str, object]:
    """``smpp[s]://system_id:password@host:port?window=64&...`` as CarrierSettings fields."""
    parts = urlsplit(url)
    if parts.scheme not in ("smpp", "smpps"):
        raise ValueError(f"{url!r}: the scheme must be smpp:// or smpps://")
    if not parts.hostname:
        raise ValueError(f"{url!r}: no host")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"{url!r}: the port is not a number") from None
    fields: dict[str, object] = {
        "host": parts.hostname,
        "port": port or 2775,
        "system_id": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "tls": parts.scheme == "smpps",
    }
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in _URL_OPTIONS:
            raise ValueError(f"{url!r}: unknown option {key!r}")
        fields[key] = value.split(",") if key in ("prefixes", "countries", "senders") else value
    return fields


Product = Literal["COMMON", "ZOOM_PHONE", "ZOOM_CONTACT_CENTER"]


class SipTrunkSettings(BaseModel):
    """A BYOC SIP trunk (``[[sip_trunks]]``): where an account's own carrier meets Pigeon.
    Its messages go through ``carrier`` (a configured carrier's name) when it names one."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    name: str = Field(min_length=1, max_length=128)
    carrier: str | None = Field(None, description="The configured carrier its numbers' messages go through.")
    carrier_account: str | None = None
    region: str | None = None
    sbc_label: str | None = None
    type: Literal["BYOC", "BYOP"] = "BYOC"
    source_system: Product = "COMMON"
    accounts: list[int] | None = Field(None, description="The accounts that may use it; unset: every account.")


class SipGroupSettings(BaseModel):
    """A SIP group (``[[sip_groups]]``): the trunk a BYOC number points at, by way of the group."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    display_name: str = Field(min_length=1, max_length=128)
    description: str | None = None
    trunk: str = Field(description="The id of its [[sip_trunks]] entry.")
    send_sip_group_name: bool = False
    source_system: Product = "COMMON"
    accounts: list[int] | None = Field(None, description="The accounts that may use it; unset: every account.")
