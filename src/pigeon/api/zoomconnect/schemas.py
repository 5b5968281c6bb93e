"""Request bodies as the swagger names them (JSON, or XML turned into the same data). Every field is optional here, so that a missing
one gets the API's own error code rather than a generic validation error; clients that send
numbers where strings belong (a phone number as a JSON number) are met halfway."""

from __future__ import annotations

from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)


def _text(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _list(value: object) -> object:
    return [value] if isinstance(value, dict) else value


Text = Annotated[str | None, BeforeValidator(_text)]


class Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SendSmsRequest(Body):
    """WebServiceSendSmsRequest."""

    recipientNumber: Text = Field(None, examples=["+27821234567"])
    message: Text = Field(None, examples=["Hello from Pigeon"])
    campaign: Text = None
    dataField: Text = None
    dateToSend: Text = Field(None, description="yyyyMMddHHmm; omit to send now", examples=["202612311200"])


class Unreadable:
    """An item of a list that its model refuses (a number given as ``true``, a list where text
    belongs): it gets its own error, and the items beside it go on."""

    __slots__ = ("detail",)

    def __init__(self, detail: str):
        self.detail = detail


def _each(value: object, handler: ValidatorFunctionWrapHandler) -> object:
    try:
        return handler(value)
    except ValidationError as exc:
        return Unreadable("Invalid request: " + "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'item'}: {e['msg']}" for e in exc.errors()))


class SendSmsRequests(Body):
    """WebServiceSendSmsRequests."""

    sendSmsRequests: Annotated[
        list[Annotated[SendSmsRequest | None, WrapValidator(_each)]] | None, BeforeValidator(_list)
    ] = Field(
        None, max_length=10_000, description="In XML, one element per request."
    )
    defaultDateToSend: Text = None
    messagesPerMinute: int | None = Field(None, ge=0)


class AnalyseRequest(Body):
    """WebServiceAnalyseMessageRequest."""

    message: Text = None
    recipientNumber: Text = None
