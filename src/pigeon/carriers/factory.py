"""The carrier a process delivers through, built from the settings.

No carriers configured: the embedded simulator. Otherwise a Router over the ``[[carriers]]``
in file order, with the one given by ``carrier_url`` (``PIGEON_CARRIER_URL``, ``--carrier``)
as the default route after them.
"""

from __future__ import annotations

import re

from pigeon.carriers.base import Carrier
from pigeon.carriers.router import Route, Router
from pigeon.carriers.settings import CarrierSettings
from pigeon.carriers.simulator import SimulatedCarrier
from pigeon.config import Settings


def carrier_settings(settings: Settings) -> list[CarrierSettings]:
    """Every configured carrier, the URL one last."""
    carriers = list(settings.carriers)
    if settings.carrier_url:
        carriers.append(CarrierSettings(name="default", url=settings.carrier_url))
    return carriers


def build_carrier(settings: Settings) -> Carrier:
    configured = carrier_settings(settings)
    if not configured:
        return SimulatedCarrier(settings.simulator)
    routes = []
    for c in configured:
        if c.type == "simulator":
            carrier: Carrier = SimulatedCarrier(settings.simulator, name=c.name)
        else:
            from pigeon.carriers.smpp import SmppCarrier

            carrier = SmppCarrier(c, resend_in_doubt=settings.delivery.in_doubt == "resend")
        routes.append(Route(carrier, tuple(c.prefixes), frozenset(c.countries), tuple(map(re.compile, c.senders))))
    return Router(routes)
