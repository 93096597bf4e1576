"""The demo community's new devices, announcing themselves each way real ones do.

Residents have bought devices that nobody has adopted yet, so the demo's
discovery inbox is populated:

* MQTT discovery (retained): a Zigbee2MQTT door and motion sensor, a Tasmota
  plug, an ESPHome climate node, a Home Assistant device-form config and a
  native Linli fall radar;
* mDNS on loopback: a native Linli SOS pendant (`_linli._tcp`), a Chromecast
  built into the cable operator's set-top box (`_googlecast._tcp`, the same
  UUID as the box's DIAL server: one inbox entry for both), a HomeKit bridge;
* SSDP on loopback: that cable set-top box (DIAL + DLNA MediaRenderer), a
  carrier IPTV box (DIAL) and a DLNA television.

Everything stays on 127.0.0.1; the SSDP group and port follow the gateway's
`discovery.ssdp` settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

import aiomqtt
import orjson
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from linli.sim import discovery_payloads as payloads
from linli.sim.upnp_box import LOOPBACK, SimUpnpDevice

_LOGGER = logging.getLogger(__name__)

CABLE_BOX_UUID = "6f1d2c3b-4a59-4e68-9d7c-2b1a0e9f8d71"
MEDIA_RENDERER = "urn:schemas-upnp-org:device:MediaRenderer:1"
RENDERER_SERVICES = (
    "urn:schemas-upnp-org:service:AVTransport:1",
    "urn:schemas-upnp-org:service:RenderingControl:1",
    "urn:schemas-upnp-org:service:ConnectionManager:1",
)


MQTT_DEVICES = ("balcony door", "hall motion", "rice cooker plug", "climate node", "kitchen", "fall radar")


def mqtt_messages(prefix: str = "homeassistant") -> list[payloads.Message]:
    return [
        *payloads.zigbee2mqtt_contact_sensor("0x00158d0008a1b2c3", "h0004/balcony-door", prefix=prefix),
        *payloads.zigbee2mqtt_motion_sensor("0x00158d0008d4e5f6", "h0008/hall-motion", prefix=prefix),
        *payloads.tasmota_plug("3C:71:BF:4A:1B:2C", "tasmota_4A1B2C", "Rice cooker plug", prefix=prefix),
        *payloads.esphome_climate("h0012-climate", "a4:cf:12:b3:c4:d5", prefix=prefix),
        *payloads.ha_device_form("0AFFD2", prefix=prefix),
        *payloads.linli_native("fr60-7a21", "FR-60", firmware="2.0.3", name="卫生间跌倒雷达 Fall radar"),
    ]


def upnp_boxes(ssdp_group: str, ssdp_port: int) -> list[SimUpnpDevice]:
    where = {"ssdp_group": ssdp_group, "ssdp_port": ssdp_port}
    return [
        SimUpnpDevice(
            udn=f"uuid:{CABLE_BOX_UUID}",
            device_type=MEDIA_RENDERER,
            friendly_name="客厅有线机顶盒 Cable set-top box",
            manufacturer="Linli Sim Cable",
            model_name="DVB-C HD STB 9",
            model_number="C9",
            firmware="3.2.1",
            services=RENDERER_SERVICES,
            dial=True,
            **where,
        ),
        SimUpnpDevice(
            udn="uuid:0c2f6e5a-1d7b-4f3e-8a90-5b4c3d2e1f07",
            device_type="urn:dial-multiscreen-org:device:dial:1",
            friendly_name="卧室 IPTV 机顶盒 IPTV box",
            manufacturer="Linli Sim Telecom",
            model_name="IPTV STB 4K",
            firmware="5.0.7",
            dial=True,
            **where,
        ),
        SimUpnpDevice(
            udn="uuid:9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
            device_type=MEDIA_RENDERER,
            friendly_name="Living room TV",
            manufacturer="Linli Sim TV",
            model_name="Smart TV 55",
            services=RENDERER_SERVICES,
            **where,
        ),
    ]


def mdns_services() -> list[AsyncServiceInfo]:
    address = [socket.inet_aton(LOOPBACK)]
    return [
        AsyncServiceInfo(
            "_linli._tcp.local.",
            "SOS pendant 3f2a._linli._tcp.local.",
            addresses=address,
            port=8883,
            properties={"id": "sos-3f2a", "model": "SOS-P1", "fw": "1.4.0", "name": "紧急呼叫挂件"},
            server="linli-sos-3f2a.local.",
        ),
        AsyncServiceInfo(
            "_googlecast._tcp.local.",
            f"Cable-Box-{CABLE_BOX_UUID.replace('-', '')}._googlecast._tcp.local.",
            addresses=address,
            port=8009,
            properties={
                "id": CABLE_BOX_UUID.replace("-", ""),
                "md": "DVB-C HD STB 9",
                "fn": "客厅有线机顶盒 Cable set-top box",
                "ve": "05",
                "ca": "201221",
                "st": "0",
                "rs": "",
            },
            server="cable-box.local.",
        ),
        AsyncServiceInfo(
            "_hap._tcp.local.",
            "Linli Sim Bridge._hap._tcp.local.",
            addresses=address,
            port=51826,
            properties={
                "c#": "2", "ff": "0", "id": "4E:21:9A:0C:77:31", "md": "Sim Bridge", "pv": "1.1", "s#": "1",
                "sf": "1", "ci": "2",
            },
            server="linli-sim-bridge.local.",
        ),
    ]  # fmt: skip


class SimAnnouncers:
    """Starts every announcer; stops them (SSDP says byebye, mDNS says goodbye)."""

    def __init__(
        self, *, mqtt_host: str, mqtt_port: int, prefix: str, ssdp_group: str, ssdp_port: int
    ) -> None:
        self.mqtt_host, self.mqtt_port, self.prefix = mqtt_host, mqtt_port, prefix
        self.boxes = upnp_boxes(ssdp_group, ssdp_port)
        self.services = mdns_services()
        self._zeroconf: AsyncZeroconf | None = None

    async def async_run(self) -> None:
        """Announce everything, then stay until cancelled (and clean up then)."""
        try:
            await self._publish_mqtt()
            for box in self.boxes:
                await box.async_start()
            self._zeroconf = AsyncZeroconf(interfaces=[LOOPBACK], ip_version=IPVersion.V4Only)
            # As a real device does, take "name (2)" if another responder already has the name
            # (a second demo on this machine, or one still saying goodbye).
            await asyncio.gather(
                *(self._zeroconf.async_register_service(s, allow_name_change=True) for s in self.services)
            )
            _LOGGER.info(
                "demo: %d new devices announce themselves to the discovery inbox (MQTT, mDNS, SSDP)",
                len(self.boxes) + len(self.services) + len(MQTT_DEVICES),
            )
            await asyncio.Event().wait()
        except Exception:
            # The demo goes on without these announcements; say so now, not at shutdown.
            _LOGGER.exception("demo: the new devices could not announce themselves")
        finally:
            await self._stop()

    async def _publish_mqtt(self) -> None:
        for attempt in range(20):
            try:
                async with aiomqtt.Client(
                    self.mqtt_host, self.mqtt_port, identifier="sim-announcer"
                ) as client:
                    for topic, payload in mqtt_messages(self.prefix):
                        await client.publish(topic, orjson.dumps(payload), qos=1, retain=True)
                return
            except aiomqtt.MqttError as exc:
                _LOGGER.debug("demo announcer: broker not ready (%s), retry %d", exc, attempt)
                await asyncio.sleep(0.5)

    async def _stop(self) -> None:
        with contextlib.suppress(Exception):
            if self._zeroconf is not None:
                await self._zeroconf.async_close()
        self._zeroconf = None
        for box in self.boxes:
            with contextlib.suppress(Exception):
                await box.async_stop()
