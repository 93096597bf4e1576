"""Component `sim`: builds the demo community in the registry and runs its homes.

Configured by the `demo` section that `linli demo` writes into the config:
`households`, `rate` (messages per second for the whole community),
`sos_per_hour` (per home) and `tv_remote_per_hour` (presses of each TV's own
remote: a channel or a volume change the box reports to the gateway).
"""

from __future__ import annotations

import asyncio
import logging
import random

from linli.gateway.component import ComponentApi
from linli.gateway.mqtt.broker import MosquittoBroker
from linli.gateway.mqtt.topics import device_topic
from linli.sim import config
from linli.sim.announcers import SimAnnouncers
from linli.sim.homes import SimDevice, SimHome, run_homes
from linli.sim.layout import household_id, layout, residents
from linli.sim.telemetry import GENERATORS, DeviceSim
from linli.sim.televisions import SimTelevisions

_LOGGER = logging.getLogger(__name__)


class SimCommunity:
    name = "sim"
    config_schema = config.CONFIG_SCHEMA  # its own section of the configuration
    config_defaults = config.CONFIG_DEFAULTS
    config_section = "demo"
    requires = ("mqtt_device",)

    def __init__(self) -> None:
        self.homes: list[SimHome] = []
        self._task: asyncio.Task[None] | None = None
        self.televisions: SimTelevisions = SimTelevisions()
        self._announcers: asyncio.Task[None] | None = None

    async def async_start(self, gateway: ComponentApi) -> None:
        demo = gateway.config.get("demo", {})
        count = int(demo.get("households", 20))
        rate = float(demo.get("rate", count * 0.5))
        sos_per_hour = float(demo.get("sos_per_hour", 0.5))
        self.televisions = SimTelevisions(remote_per_hour=float(demo.get("tv_remote_per_hour", 12)))
        if gateway.registry.community_name == "Linli community":  # the default: name the demo
            gateway.registry.community_name = "邻里示范社区 · Linli demo community"
        added = await gateway.registry.async_import(**layout(count))
        if added:
            _LOGGER.info("demo: registered %d simulated devices in %d households", len(added), count)
        await _add_residents(gateway, count)
        broker = gateway.mqtt.settings
        for index in range(1, count + 1):
            hid = household_id(index)
            # One simulated bridge per base topic: the home hub (linli/v1/<home>), and in
            # every fourth home a Zigbee2MQTT bridge (zigbee2mqtt/<home>) beside it.
            bridges: dict[str, list[SimDevice]] = {}
            for device in gateway.registry.household_devices(hid):
                # only what a home hub reports over MQTT: the TV box (adopted on an earlier run)
                # is driven by its own adapter, and a device added by hand has no simulator
                if device.profile.id not in GENERATORS:
                    continue
                bridges.setdefault(_base_topic(hid, device.topic), []).append(
                    SimDevice(
                        device_id=device.id,
                        topic=device.topic,
                        availability_topic=device.availability_topic,
                        sim=DeviceSim(device.profile.id, random.Random(f"{device.id}")),
                    )
                )
            total = sum(len(devices) for devices in bridges.values()) or 1
            for number, (base, devices) in enumerate(sorted(bridges.items())):
                credential = await _bridge_credential(gateway, hid, base)
                self.homes.append(
                    SimHome(
                        hid,
                        devices,
                        host=broker.host,
                        port=broker.port,
                        rate=rate / count * len(devices) / total,
                        sos_per_hour=sos_per_hour,
                        # The first home's resident presses the pendant ~25 s in, so that a new
                        # demo shows an alert escalating on the phone, the TV and the console.
                        first_sos_after_s=25.0 if index == 1 else None,
                        seed=index * 10 + number,
                        username=credential[0] if credential else None,
                        password=credential[1] if credential else None,
                        client_id=credential[0] if credential else f"sim-{hid}-{number}",
                    )
                )
        if isinstance(gateway.broker, MosquittoBroker):
            await gateway.broker.async_reload()  # the hubs' credentials, before the hubs connect
        self._task = asyncio.create_task(run_homes(self.homes), name="linli-sim")
        await self.televisions.async_start(gateway, count)
        discovery = gateway.config["discovery"]
        announcers = SimAnnouncers(
            mqtt_host=broker.host,
            mqtt_port=broker.port,
            prefix=discovery["mqtt"]["prefix"],
            ssdp_group=discovery["ssdp"]["group"],
            ssdp_port=discovery["ssdp"]["port"],
        )
        self._announcers = asyncio.create_task(announcers.async_run(), name="linli-sim-announcers")

    async def async_stop(self) -> None:
        # Each part stops whatever another one did: the hubs must not outlive the broker.
        for name in ("_task", "_announcers"):
            task = getattr(self, name)
            if task is None:
                continue
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:
                _LOGGER.exception("demo: the simulator's %s had failed", task.get_name())
            setattr(self, name, None)
        await self.televisions.async_stop()

    @property
    def published(self) -> int:
        return sum(home.published for home in self.homes)


def _base_topic(hid: str, topic: str) -> str:
    zigbee = f"zigbee2mqtt/{hid}"
    return zigbee if topic.startswith(zigbee + "/") else device_topic(hid, "").rstrip("/")


async def _bridge_credential(gateway: ComponentApi, hid: str, base: str) -> tuple[str, str] | None:
    """Each simulated bridge is a bridge of its household (a fresh password every run),
    where the broker enforces per-household access; the embedded broker has no ACL."""
    if not isinstance(gateway.broker, MosquittoBroker):
        return None
    name = "demo Zigbee2MQTT" if base.startswith("zigbee2mqtt/") else "demo hub"
    issued = await gateway.mqtt_credentials.async_issue_bridge(hid, base, name)
    return issued.principal.username, issued.password


async def _add_residents(gateway: ComponentApi, count: int) -> None:
    """The demo homes' residents, each with the devices that are theirs (once per data folder)."""
    registry = gateway.registry
    new = [person for person in residents(count) if person["id"] not in registry.residents]
    for person in new:
        await registry.async_add_resident(
            person["id"], person["household_id"], person["name"], data=person["data"]
        )
        for device_id in person["devices"]:
            if device_id in registry.devices:
                await registry.async_assign_device(device_id, person["id"])
    if new:
        _LOGGER.info("demo: %d residents added to %d households", len(new), count)
