"""The `stb_broadcast` adapter: the cable operator's two-way boxes, through the one set-top box contract."""

from __future__ import annotations

from functools import partial
from typing import Any, Final

from linli.adapters.stb_broadcast.driver import create_driver
from linli.adapters.upnp.gena import GenaListener
from linli.gateway.discovery import FoundDevice
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.registry import Device
from linli.gateway.stb.fleet import AdoptError, BoxFleet
from linli.gateway.stb.http import Limits

PROFILE_ID: Final = "dvb/dial-dlna-stb"


class BroadcastAdapter:
    """Boxes reached at their UPnP device description (the SSDP LOCATION of their DIAL server)."""

    def __init__(self) -> None:
        self.fleet: BoxFleet | None = None
        self.events: GenaListener | None = None

    async def async_start(self, api: AdapterApi) -> None:
        settings = dict(api.config.get("events") or {})
        if settings.get("enabled", True):
            self.events = GenaListener(
                limits=Limits(timeout_s=float(api.config.get("timeout_s", 3))),
                log=api.log,
                host=settings.get("host"),
                port=int(settings.get("port", 0)),
            )
            await self.events.async_start()
        self.fleet = BoxFleet(
            api, driver_factory=partial(create_driver, events=self.events), profile_id=PROFILE_ID
        )
        await self.fleet.async_start()
        api.on_discovered(self._adopt_found)

    async def _adopt_found(self, found: FoundDevice) -> Device:
        """An installer approved a box found over SSDP: reach it at its description's LOCATION."""
        ssdp = found.ssdp or {}
        location = ssdp.get("location")
        if not location:
            raise AdoptError(
                f"{found.announced_name or found.item_id} was found over {', '.join(found.sources)} "
                "only; a cable box is reached at the UPnP description its SSDP announcement names. "
                "Scan again (POST /api/v1/inbox/scan) and approve it once it has answered"
            )
        # What SSDP discovery already learnt is kept with the address: the DIAL server's
        # Application-URL (for a box whose description answers an error) and its UDN (its identity).
        extra = {k: ssdp[k] for k in ("application_url", "udn") if isinstance(ssdp.get(k), str)}
        return await self.async_adopt(
            found.household_id,
            location,
            name=found.name,
            room=found.room,
            device_id=found.device_id,
            extra=extra,
        )

    async def async_stop(self) -> None:
        if self.events is not None:  # first: every box is unsubscribed at once, not one by one
            await self.events.async_stop()
            self.events = None
        if self.fleet is not None:
            await self.fleet.async_stop()
            self.fleet = None

    async def async_adopt(self, household_id: str, target: str, **options: Any) -> Device:
        """Make the box whose description is at `target` the household's TV."""
        assert self.fleet is not None, "adapter not started"
        return await self.fleet.async_adopt(household_id, target, **options)

    def status(self) -> list[dict[str, Any]]:
        return self.fleet.status() if self.fleet is not None else []
