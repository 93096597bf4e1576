"""A simulated UPnP device on loopback: real SSDP packets and a real description server.

The SSDP side is async-upnp-client's server side (`SsdpAdvertisementAnnouncer`
sends NOTIFY alive and, on stop, byebye; `SsdpSearchResponder` answers
M-SEARCH), the description is served over HTTP by aiohttp on 127.0.0.1. DIAL
servers add the `Application-URL` header to the description response, as the
DIAL spec asks. Tests replace the description handler to serve hostile bodies.
"""

from __future__ import annotations

import socket
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import web
from async_upnp_client.const import DeviceInfo, ServiceInfo
from async_upnp_client.server import (
    NopRequester,
    SsdpAdvertisementAnnouncer,
    SsdpSearchResponder,
    UpnpServerDevice,
    UpnpServerService,
    UpnpXmlSerializer,
)

DIAL_SERVICE: Final = "urn:dial-multiscreen-org:service:dial:1"
DESCRIPTION_PATH: Final = "/description.xml"
LOOPBACK: Final = "127.0.0.1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _service_class(service_type: str) -> type[UpnpServerService]:
    name = service_type.split(":")[-2]
    return type(
        f"Sim{name}",
        (UpnpServerService,),
        {
            "SERVICE_DEFINITION": ServiceInfo(
                service_id=f"urn:upnp-org:serviceId:{name}",
                service_type=service_type,
                control_url=f"/{name}/control",
                event_sub_url=f"/{name}/event",
                scpd_url=f"/{name}/scpd.xml",
                xml=ET.Element("service"),
            ),
            "STATE_VARIABLE_DEFINITIONS": {},
        },
    )


class SimUpnpDevice:
    """One root device: announces itself, answers searches, serves its description."""

    def __init__(
        self,
        *,
        udn: str,
        device_type: str,
        friendly_name: str,
        manufacturer: str,
        model_name: str,
        model_number: str | None = None,
        serial_number: str | None = None,
        firmware: str | None = None,
        services: list[str] | tuple[str, ...] = (),
        dial: bool = False,
        boot_id: int = 1,
        ssdp_group: str = "239.255.255.250",
        ssdp_port: int = 1900,
        announce: bool = True,
        description: Handler | None = None,
    ) -> None:
        self.udn = udn
        self.info: dict[str, Any] = {
            "device_type": device_type,
            "friendly_name": friendly_name,
            "manufacturer": manufacturer,
            "model_name": model_name,
            "model_number": model_number,
            "serial_number": serial_number,
        }
        self.firmware = firmware
        self.services = [*services, *([DIAL_SERVICE] if dial and DIAL_SERVICE not in services else [])]
        self.dial = dial
        self.boot_id = boot_id
        self.target = (ssdp_group, ssdp_port)
        self.announce = announce
        self._description = description
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.device: UpnpServerDevice | None = None
        self._responder: SsdpSearchResponder | None = None
        self._announcer: SsdpAdvertisementAnnouncer | None = None
        self.requests = 0

    @property
    def location(self) -> str:
        return f"http://{LOOPBACK}:{self.port}{DESCRIPTION_PATH}"

    def description_xml(self) -> bytes:
        assert self.device is not None
        root = UpnpXmlSerializer.to_xml(self.device)
        if self.firmware:
            device = next(c for c in root if c.tag == "device")
            ET.SubElement(device, "softwareVersion").text = self.firmware
        return ET.tostring(root, encoding="utf-8", xml_declaration=True)

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.requests += 1
        if self._description is not None:
            return await self._description(request)
        headers = {"Application-URL": f"http://{LOOPBACK}:{self.port}/apps/"} if self.dial else {}
        return web.Response(body=self.description_xml(), content_type="text/xml", headers=headers)

    async def async_start(self) -> None:
        app = web.Application()
        app.router.add_get(DESCRIPTION_PATH, self._serve)
        # A short shutdown: a simulated device's pending answers are not worth waiting for.
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.2)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((LOOPBACK, 0))
        self.port = int(sock.getsockname()[1])
        await web.SockSite(self._runner, sock).start()
        await self._start_ssdp()

    async def _start_ssdp(self) -> None:
        info = self.info
        device_class = type(
            "SimRootDevice",
            (UpnpServerDevice,),
            {
                "DEVICE_DEFINITION": DeviceInfo(
                    device_type=info["device_type"],
                    friendly_name=info["friendly_name"],
                    manufacturer=info["manufacturer"],
                    manufacturer_url=None,
                    model_description=None,
                    model_name=info["model_name"],
                    model_number=info["model_number"],
                    model_url=None,
                    serial_number=info["serial_number"],
                    udn=self.udn,
                    upc=None,
                    presentation_url=None,
                    url=DESCRIPTION_PATH,
                    icons=[],
                    xml=ET.Element("device"),
                ),
                "EMBEDDED_DEVICES": [],
                "SERVICES": [_service_class(s) for s in self.services],
            },
        )
        self.device = device_class(NopRequester(), f"http://{LOOPBACK}:{self.port}", self.boot_id, 1)
        source = (LOOPBACK, 0)
        self._responder = SsdpSearchResponder(self.device, source=source, target=self.target)
        await self._responder.async_start()
        if self.announce:
            self._announcer = SsdpAdvertisementAnnouncer(self.device, source=source, target=self.target)
            await self._announcer.async_start()

    async def _stop_ssdp(self) -> None:
        if self._announcer is not None:
            await self._announcer.async_stop()  # sends ssdp:byebye
            self._announcer = None
        if self._responder is not None:
            await self._responder.async_stop()
            self._responder = None

    async def async_reboot(self, *, firmware: str | None = None) -> None:
        """Come back with the next BOOTID.UPNP.ORG (and, perhaps, new firmware)."""
        await self._stop_ssdp()
        self.boot_id += 1
        if firmware is not None:
            self.firmware = firmware
        await self._start_ssdp()

    async def async_stop(self) -> None:
        await self._stop_ssdp()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
