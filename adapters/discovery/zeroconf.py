"""mDNS / DNS-SD: one shared AsyncZeroconf browsing the service types profiles and config name.

A service that appears is resolved (SRV, TXT, A) and its TXT record turned into
an announcement: `id` / `deviceid` / `bt` give the identity (a Chromecast's
`id` is the UUID its DIAL server also uses over SSDP, so the two become one
inbox item), `md` / `model`, `fw` / `fv` the model and firmware the firmware
profiles match. A TXT record whose keys or the values Linli reads are not
printable UTF-8 text is rejected with a reason. A service that says goodbye
becomes unavailable.

Interfaces are configurable: a community network has one VLAN per household,
and the gateway must listen only where it is meant to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import Any, Final

from zeroconf import BadTypeInNameException, IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from linli.gateway.discovery.identity import mac_key, ordered, uuid_key
from linli.gateway.discovery.inbox import Inbox
from linli.gateway.discovery.model import Announcement, ProposedCapability, Rejection, Source
from linli.gateway.discovery.refusals import refusal_for_service

_LOGGER = logging.getLogger(__name__)

DEFAULT_TYPES: Final = (
    "_googlecast._tcp.local.",
    "_androidtvremote2._tcp.local.",
    "_airplay._tcp.local.",
    "_hap._tcp.local.",
    "_usp-agt-mqtt._tcp.local.",
    "_linli._tcp.local.",
)
NATIVE_TYPE: Final = "_linli._tcp.local."

# TXT keys Linli reads, by meaning, in order of preference (each family names them its own way).
_ID_KEYS: Final = ("id", "deviceid", "bt", "mac", "uuid")
_NAME_KEYS: Final = ("fn", "friendly_name", "name", "n")  # friendly_name: ESPHome
_MODEL_KEYS: Final = ("md", "model", "mdl")
_MANUFACTURER_KEYS: Final = ("mf", "manufacturer", "vendor")
_FIRMWARE_KEYS: Final = ("fw", "fv", "firmware", "sw", "version")
_READ_KEYS: Final = frozenset(
    {*_ID_KEYS, *_NAME_KEYS, *_MODEL_KEYS, *_MANUFACTURER_KEYS, *_FIRMWARE_KEYS, "topic"}
)
_MAX_TXT_VALUE: Final = 255  # a TXT string is at most 255 bytes on the wire, key included

_CATEGORIES: Final = {
    "_googlecast._tcp.local.": ("cast", ("app", "media", "volume")),
    "_androidtvremote2._tcp.local.": ("android_tv", ("keys", "app", "power")),
    "_airplay._tcp.local.": ("airplay", ("media",)),
    "_hap._tcp.local.": ("homekit", ()),
    "_usp-agt-mqtt._tcp.local.": ("usp_agent", ()),
    "_esphomelib._tcp.local.": ("esphome", ()),  # adopted by the esphome adapter
    NATIVE_TYPE: ("linli", ()),
}


class TxtError(ValueError):
    """A TXT record Linli will not use; the message says which key and why."""


def _hex(raw: bytes) -> str:
    return raw[:16].hex(" ") + (" …" if len(raw) > 16 else "")


def decode_txt(properties: dict[bytes, bytes | None]) -> dict[str, str]:
    """TXT record → text. Keys must be printable ASCII (RFC 6763 §6.4); the values Linli
    reads must be printable UTF-8; other values are kept as text when they are, as hex if not."""
    out: dict[str, str] = {}
    for raw_key, raw_value in properties.items():
        try:
            key = raw_key.decode("ascii")
        except UnicodeDecodeError:
            raise TxtError(f"TXT key bytes {_hex(raw_key)} are not printable ASCII") from None
        if not key or not key.isprintable() or "=" in key:
            raise TxtError(f"TXT key {key[:32]!r} is not printable ASCII without '='")
        key = key.lower()
        if raw_value is None:
            out[key] = ""
            continue
        try:
            value = raw_value.decode("utf-8")
            text = value.isprintable()
        except UnicodeDecodeError:
            text = False
        if not text:
            if key in _READ_KEYS:
                raise TxtError(
                    f"TXT {key}: bytes {_hex(raw_value)} are not printable UTF-8 text (binary junk)"
                )
            out[key] = "hex:" + raw_value[:_MAX_TXT_VALUE].hex()
            continue
        out[key] = value[:_MAX_TXT_VALUE]
    return out


def _pick(txt: dict[str, str], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = txt.get(key)
        if value:
            return value
    return None


def instance_name(name: str, service_type: str) -> str:
    return name[: -len(service_type) - 1] if name.endswith("." + service_type) else name


def service_announcement(
    service_type: str,
    name: str,
    properties: dict[bytes, bytes | None],
    addresses: list[str],
    port: int | None,
) -> Announcement:
    """What one resolved service says about its device (raises TxtError on junk)."""
    txt = decode_txt(properties)
    instance = instance_name(name, service_type)
    keys: list[str] = []
    native = service_type == NATIVE_TYPE
    device_id = _pick(txt, _ID_KEYS)
    if native and device_id:
        keys.append(f"linli:{device_id}")
    elif device_id:
        keys += [k for k in (uuid_key(device_id) if len(device_id) >= 32 else None, mac_key(device_id)) if k]
    keys.append(f"zeroconf:{name.lower()}")
    category, kinds = _CATEGORIES.get(service_type, (service_type.split(".")[0].lstrip("_"), ()))
    address = f"{addresses[0]}:{port}" if addresses and port else (addresses[0] if addresses else None)
    topic = None
    if native and device_id:
        topic = txt.get("topic") or f"linli/v1/discovery/{device_id}"
    return Announcement(
        source=Source.ZEROCONF,
        keys=ordered(keys),
        address=address,
        name=_pick(txt, _NAME_KEYS) or instance,
        manufacturer=_pick(txt, _MANUFACTURER_KEYS),
        model=_pick(txt, _MODEL_KEYS),
        firmware=_pick(txt, _FIRMWARE_KEYS),
        category=category,
        topic=topic,
        facts=[{**txt, "type": service_type}],
        capabilities=[ProposedCapability(key=kind, kind=kind, origin=service_type) for kind in kinds],
        details={
            "type": service_type,
            "instance": instance,
            "addresses": addresses,
            "port": port,
            "txt": txt,
            # what this kind of service is and why Linli cannot adopt it (shown in the inbox)
            **({"refusal": refusal.as_dict()} if (refusal := refusal_for_service(service_type)) else {}),
        },
    )


class ZeroconfDiscovery:
    """Browses the configured service types on the configured interfaces."""

    def __init__(
        self, inbox: Inbox, *, interfaces: list[str] | str, types: list[str], resolve_timeout_s: float = 3.0
    ) -> None:
        self._inbox = inbox
        self.interfaces = interfaces
        self.types = sorted(set(types))
        self._timeout_ms = int(resolve_timeout_s * 1000)
        self._aiozc: AsyncZeroconf | None = None
        self._browser: AsyncServiceBrowser | None = None
        self._more: list[AsyncServiceBrowser] = []  # types adapters declared after the start
        self._resolving: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._keys: dict[tuple[str, str], tuple[str, ...]] = {}
        self.resolved = 0

    async def async_start(self) -> None:
        from zeroconf import InterfaceChoice

        interfaces: Any = InterfaceChoice.All if self.interfaces == "all" else list(self.interfaces)
        self._aiozc = AsyncZeroconf(interfaces=interfaces, ip_version=IPVersion.V4Only)
        self._browser = AsyncServiceBrowser(
            self._aiozc.zeroconf, self.types, handlers=[self._on_service_state_change]
        )

    def browse(self, types: list[str]) -> None:
        """Browse these types too (an adapter that adopts them started after discovery)."""
        new = sorted(set(types) - set(self.types))
        if not new or self._aiozc is None:
            return
        self.types = sorted({*self.types, *new})
        self._more.append(
            AsyncServiceBrowser(self._aiozc.zeroconf, new, handlers=[self._on_service_state_change])
        )

    async def async_stop(self) -> None:
        for task in list(self._resolving.values()):
            task.cancel()
        for task in list(self._resolving.values()):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._resolving.clear()
        for browser in [*self._more, *([self._browser] if self._browser is not None else [])]:
            await browser.async_cancel()
        self._browser = None
        self._more.clear()
        if self._aiozc is not None:
            await self._aiozc.async_close()
            self._aiozc = None

    def _on_service_state_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        key = (service_type, name)
        if state_change is ServiceStateChange.Removed:
            task = self._resolving.pop(key, None)
            if task is not None:
                task.cancel()
            keys = self._keys.get(key) or (f"zeroconf:{name.lower()}",)
            self._inbox.withdraw(keys, Source.ZEROCONF, "service removed (mDNS goodbye)")
            return
        if key in self._resolving:
            return
        task = asyncio.get_running_loop().create_task(
            self._resolve(service_type, name), name=f"linli-zeroconf-resolve-{name[:40]}"
        )
        self._resolving[key] = task
        task.add_done_callback(lambda _: self._resolving.pop(key, None))

    async def _resolve(self, service_type: str, name: str) -> None:
        assert self._aiozc is not None
        info = AsyncServiceInfo(service_type, name)
        try:
            found = await info.async_request(self._aiozc.zeroconf, self._timeout_ms)
        except BadTypeInNameException as exc:
            self._reject(service_type, name, None, f"service name is not valid DNS-SD: {exc}")
            return
        if not found:
            _LOGGER.debug("zeroconf: %s did not answer within %d ms", name, self._timeout_ms)
            return
        self.resolved += 1
        addresses = [socket.inet_ntoa(a) for a in info.addresses_by_version(IPVersion.V4Only) if len(a) == 4]
        try:
            announcement = service_announcement(service_type, name, info.properties, addresses, info.port)
        except TxtError as exc:
            address = f"{addresses[0]}:{info.port}" if addresses else name
            self._reject(service_type, name, address, f"{instance_name(name, service_type)}: {exc}")
            return
        self._keys[(service_type, name)] = announcement.keys
        self._inbox.announce(announcement)

    def _reject(self, service_type: str, name: str, address: str | None, reason: str) -> None:
        self._inbox.reject_invalid(
            Rejection(
                source=Source.ZEROCONF,
                keys=(f"zeroconf:{name.lower()}",),
                address=address or name,
                reason=reason,
            )
        )
