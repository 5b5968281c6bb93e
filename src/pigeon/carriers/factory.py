"""The carrier a process delivers through, built from its settings' carrier parts.

No carriers configured: the embedded simulator. Otherwise a Router over the ``[[carriers]]``
in file order, with the one given by ``carrier_url`` (``PIGEON_CARRIER_URL``, ``--carrier``)
as the default route after them.
"""

from __future__ import annotations

import re

from pigeon.carriers.base import Carrier
from pigeon.carriers.router import Route, Router
from pigeon.carriers.settings import CarrierSettings, SimulatorSettings
from pigeon.carriers.simulator import SimulatedCarrier


def carrier_settings(carriers: list[CarrierSettings], carrier_url: str | None) -> list[CarrierSettings]:
    """Every configured carrier (``Settings.carriers``), the URL one (``Settings.carrier_url``) last."""
    carriers = list(carriers)
    if carrier_url:
        carriers.append(CarrierSettings(name="default", url=carrier_url))
    return carriers


def build_carrier(configured: list[CarrierSettings], simulator: SimulatorSettings, *, resend_in_doubt: bool,
                  leased: bool = False) -> Carrier:
    """The carrier for ``carrier_settings``' list: the simulator when it is empty, else a Router.
    ``leased``: its SMPP carriers bind the slots the cluster leases them (``delivery.leases``)."""
    if not configured:
        return SimulatedCarrier(simulator)
    routes = []
    for c in configured:
        if c.type == "simulator":
            carrier: Carrier = SimulatedCarrier(simulator, name=c.name)
        else:
            from pigeon.carriers.smpp import SmppCarrier

            carrier = SmppCarrier(c, resend_in_doubt=resend_in_doubt, leased=leased)
        routes.append(Route(carrier, tuple(c.prefixes), frozenset(c.countries), tuple(map(re.compile, c.senders))))
    return Router(routes)
