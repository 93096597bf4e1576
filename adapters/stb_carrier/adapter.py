"""The `stb_carrier` adapter: the carriers' IPTV boxes, through the one set-top box contract."""

from __future__ import annotations

from typing import Any, Final
from urllib.parse import urlsplit

from linli.adapters.stb_carrier.driver import create_driver
from linli.gateway.discovery import FoundDevice
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.registry import Device
from linli.gateway.stb.fleet import AdoptError, BoxFleet

PROFILE_ID: Final = "rdk/thunder-stb"
THUNDER_PORT: Final = 9998  # where RDK's Thunder (WPEFramework) listens unless the box says otherwise


class CarrierAdapter:
    """Boxes reached at their Thunder address (`http://<box>:9998`)."""

    def __init__(self) -> None:
        self.fleet: BoxFleet | None = None

    async def async_start(self, api: AdapterApi) -> None:
        self.fleet = BoxFleet(api, driver_factory=create_driver, profile_id=PROFILE_ID)
        await self.fleet.async_start()
        api.on_discovered(self._adopt_found)

    @staticmethod
    def thunder_url(found: FoundDevice) -> str:
        """The box's Thunder address: its `_thunder._tcp` service, else Thunder's port on the DIAL host."""
        service = found.zeroconf or {}
        addresses, port = service.get("addresses") or [], service.get("port")
        if addresses and port:
            return f"http://{addresses[0]}:{port}"
        host = urlsplit(str((found.ssdp or {}).get("location") or "")).hostname
        if host:
            return f"http://{host}:{THUNDER_PORT}"
        raise AdoptError(
            f"{found.announced_name or found.item_id}: neither a _thunder._tcp service nor an SSDP "
            "location says where the box is; check that it announces _thunder._tcp over mDNS or runs DIAL"
        )

    async def _adopt_found(self, found: FoundDevice) -> Device:
        """An installer approved a box found over mDNS or DIAL: reach it over Thunder."""
        return await self.async_adopt(
            found.household_id,
            self.thunder_url(found),
            dial_url=(found.ssdp or {}).get("application_url"),
            name=found.name,
            room=found.room,
            device_id=found.device_id,
        )

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
