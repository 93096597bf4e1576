"""The `stb_carrier` adapter: the carriers' IPTV boxes, through the one set-top box contract."""

from __future__ import annotations

from typing import Any, Final

from adapters.stb_carrier.driver import create_driver
from gateway.plugins.api import AdapterApi
from gateway.registry import Device
from gateway.stb.fleet import BoxFleet

PROFILE_ID: Final = "rdk/thunder-stb"


class CarrierAdapter:
    """Boxes reached at their Thunder address (`http://<box>:9998`)."""

    def __init__(self) -> None:
        self.fleet: BoxFleet | None = None

    async def async_start(self, api: AdapterApi) -> None:
        self.fleet = BoxFleet(api, driver_factory=create_driver, profile_id=PROFILE_ID)
        await self.fleet.async_start()

    async def async_stop(self) -> None:
        if self.fleet is not None:
            await self.fleet.async_stop()
            self.fleet = None

    async def async_adopt(
        self, household_id: str, target: str, *, dial_url: str | None = None, **options: Any
    ) -> Device:
        """Make the box at `target` (its Thunder URL) the household's TV.

        `dial_url`: the box's DIAL Application-URL, where it has one; apps it lists are
        then launched and stopped the DIAL way.
        """
        assert self.fleet is not None, "adapter not started"
        if dial_url:
            options["extra"] = {**options.get("extra", {}), "dial_url": dial_url}
        return await self.fleet.async_adopt(household_id, target, **options)

    def status(self) -> list[dict[str, Any]]:
        return self.fleet.status() if self.fleet is not None else []
