"""What a message costs: parts times the price of the destination's country."""

from __future__ import annotations

from pigeon.credits import MILLI


class PriceTable:
    """Credits per SMS part by ISO region, with a default for every other country."""

    def __init__(self, prices: dict[str, float]):
        self._milli = {region: round(price * MILLI) for region, price in prices.items()}
        self._default = self._milli.get("default", MILLI)

    def part_price(self, region: str | None) -> int:
        """Thousandths of a credit for one part to this region."""
        return self._milli.get(region or "", self._default)

    def cost(self, parts: int, region: str | None) -> int:
        return parts * self.part_price(region)
