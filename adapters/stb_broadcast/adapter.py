"""The `stb_broadcast` adapter: the cable operator's two-way boxes, through the one set-top box contract."""

from __future__ import annotations

from typing import Any, Final

from adapters.stb_broadcast.driver import create_driver
from gateway.plugins.api import AdapterApi
from gateway.registry import Device
from gateway.stb.fleet import BoxFleet

PROFILE_ID: Final = "dvb/dial-dlna-stb"


class BroadcastAdapter:
    """Boxes reached at their UPnP device description (the SSDP LOCATION of their DIAL server)."""

    def __init__(self) -> None:
        self.fleet: BoxFleet | None = None

    async def async_start(self, api: AdapterApi) -> None:
        self.fleet = BoxFleet(api, driver_factory=create_driver, profile_id=PROFILE_ID)
        await self.fleet.async_start()

    async def async_stop(self) -> None:
        if self.fleet is not None:
            await self.fleet.async_stop()
            self.fleet = None

    async def async_adopt(self, household_id: str, target: str, **options: Any) -> Device:
        """Make the box whose description is at `target` the household's TV."""
        assert self.fleet is not None, "adapter not started"
        return await self.fleet.async_adopt(household_id, target, **options)

    def status(self) -> list[dict[str, Any]]:
        return self.fleet.status() if self.fleet is not None else []
