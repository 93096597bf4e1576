"""Honest refusals: what a discovered device is, and why Linli cannot adopt it yet.

A Chromecast, a HomeKit accessory or a printer on a household's network is found
by discovery like anything else. Rather than a bare "no profile", the inbox says
what it is, why it cannot be adopted, and what to do (in Chinese and English),
looked up here by the mDNS service type or the UPnP device type it announced.
The table holds facts only; the inbox shows a refusal when no profile matches and
no adapter claims the device (an adapter that learns to adopt Cast receivers wins).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from linli.gateway.discovery.model import Announcement, Source

NOT_ADOPTABLE: Final = "not_adoptable"


@dataclass(slots=True, frozen=True, kw_only=True)
class Refusal:
    """Why a kind of device cannot be adopted; each text by language (zh-CN first, en)."""

    what: Mapping[str, str]
    why: Mapping[str, str]
    advice: Mapping[str, str]
    code: str = NOT_ADOPTABLE

    def sentence(self, locale: str = "en") -> str:
        """`Chromecast (Google Cast): Linli cannot control Cast devices yet; ignore it, or …`."""
        lang = "zh-CN" if locale.lower().startswith("zh") else "en"
        if lang == "zh-CN":
            return f"{self.what[lang]}：{self.why[lang]}；{self.advice[lang]}"
        return f"{self.what[lang]}: {self.why[lang]}; {self.advice[lang]}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "what": dict(self.what),
            "why": dict(self.why),
            "advice": dict(self.advice),
            "message": {"zh-CN": self.sentence("zh-CN"), "en": self.sentence("en")},
        }


def _refusal(what: tuple[str, str], why: tuple[str, str], advice: tuple[str, str]) -> Refusal:
    return Refusal(
        what={"zh-CN": what[0], "en": what[1]},
        why={"zh-CN": why[0], "en": why[1]},
        advice={"zh-CN": advice[0], "en": advice[1]},
    )


_IGNORE_ZH: Final = "在收件箱中忽略即可"
_IGNORE_EN: Final = "ignore it in the inbox"

_CAST: Final = _refusal(
    ("Chromecast（Google Cast）投屏设备", "Chromecast (Google Cast)"),
    ("邻里暂时无法控制 Cast 设备", "Linli cannot control Cast devices yet"),
    (
        f"{_IGNORE_ZH}；若它内置于机顶盒，请批准同一台机顶盒的 DIAL/DLNA 条目",
        f"{_IGNORE_EN}, or, if it is built into a set-top box, approve that box's DIAL/DLNA entry",
    ),
)
_ANDROID_TV: Final = _refusal(
    ("Android TV 遥控服务", "Android TV remote service"),
    (
        "该协议需要在电视上逐台配对，邻里暂不支持",
        "its protocol needs pairing on each TV, which Linli does not support yet",
    ),
    (
        f"{_IGNORE_ZH}；运营商机顶盒请通过其 DIAL/DLNA 或 RDK 条目接入",
        f"{_IGNORE_EN}; carrier set-top boxes join through their DIAL/DLNA or RDK entry",
    ),
)
_HOMEKIT: Final = _refusal(
    ("HomeKit 配件", "HomeKit accessory"),
    (
        "HomeKit 配件只能与苹果家庭中枢配对，邻里无法接管",
        "a HomeKit accessory pairs with an Apple home hub only; Linli cannot take it over",
    ),
    (
        f"{_IGNORE_ZH}；如设备也支持 Zigbee 或 MQTT，请改用该方式接入",
        f"{_IGNORE_EN}; if the device also speaks Zigbee or MQTT, add it that way",
    ),
)
_AIRPLAY: Final = _refusal(
    ("AirPlay 接收端（音箱、电视或苹果设备）", "AirPlay receiver (a speaker, TV or Apple device)"),
    ("邻里暂时无法控制 AirPlay 接收端", "Linli cannot control AirPlay receivers yet"),
    (
        f"{_IGNORE_ZH}；电视请通过机顶盒条目接入",
        f"{_IGNORE_EN}; a TV joins through its set-top box entry",
    ),
)
_PRINTER: Final = _refusal(
    ("网络打印机", "Network printer"),
    (
        "打印机不是智能家居设备，邻里不管理打印机",
        "a printer is not a home device; Linli does not manage printers",
    ),
    (_IGNORE_ZH, _IGNORE_EN),
)
_SONOS: Final = _refusal(
    ("Sonos 音箱", "Sonos speaker"),
    ("邻里暂时无法控制 Sonos 音箱", "Linli cannot control Sonos speakers yet"),
    (_IGNORE_ZH, _IGNORE_EN),
)
_SPOTIFY: Final = _refusal(
    ("Spotify Connect 音箱", "Spotify Connect speaker"),
    ("邻里不控制音乐播放", "Linli does not control music playback"),
    (_IGNORE_ZH, _IGNORE_EN),
)
_MIIO: Final = _refusal(
    ("米家 Wi-Fi 设备（miIO）", "Mi Home Wi-Fi device (miIO)"),
    (
        "miIO 设备需要从米家云取得每台设备的密钥，邻里不接入云端",
        "a miIO device needs its own token from the Mi Home cloud, and Linli does not use vendor clouds",
    ),
    (
        "同型号若有 Zigbee 版本，请通过 Zigbee2MQTT 接入；否则在收件箱中忽略",
        "add the Zigbee version of the model through Zigbee2MQTT where there is one; otherwise ignore it",
    ),
)
_ROUTER: Final = _refusal(
    ("宽带路由器或家庭网关", "Broadband router or home gateway"),
    (
        "路由器由宽带运营商管理（TR-069/TR-369），不是家中的设备",
        "routers are managed by the broadband carrier (TR-069/TR-369), not adopted as home devices",
    ),
    (_IGNORE_ZH, _IGNORE_EN),
)
_MEDIA_SERVER: Final = _refusal(
    ("媒体服务器或网络存储（NAS）", "Media server or network storage (NAS)"),
    ("邻里不管理媒体服务器", "Linli does not manage media servers"),
    (_IGNORE_ZH, _IGNORE_EN),
)

#: mDNS / DNS-SD service types (lower case, with the `.local.` suffix) → refusal.
BY_SERVICE_TYPE: Final[Mapping[str, Refusal]] = {
    "_googlecast._tcp.local.": _CAST,
    "_androidtvremote2._tcp.local.": _ANDROID_TV,
    "_androidtvremote._tcp.local.": _ANDROID_TV,
    "_hap._tcp.local.": _HOMEKIT,
    "_hap._udp.local.": _HOMEKIT,
    "_airplay._tcp.local.": _AIRPLAY,
    "_raop._tcp.local.": _AIRPLAY,
    "_ipp._tcp.local.": _PRINTER,
    "_ipps._tcp.local.": _PRINTER,
    "_printer._tcp.local.": _PRINTER,
    "_pdl-datastream._tcp.local.": _PRINTER,
    "_sonos._tcp.local.": _SONOS,
    "_spotify-connect._tcp.local.": _SPOTIFY,
    "_miio._udp.local.": _MIIO,
    "_usp-agt-mqtt._tcp.local.": _ROUTER,
}

#: UPnP device types (the part before the version, `urn:…:device:<Type>`) → refusal.
BY_UPNP_DEVICE: Final[Mapping[str, Refusal]] = {
    "urn:schemas-upnp-org:device:ZonePlayer": _SONOS,
    "urn:schemas-upnp-org:device:Printer": _PRINTER,
    "urn:schemas-upnp-org:device:InternetGatewayDevice": _ROUTER,
    "urn:schemas-upnp-org:device:WANDevice": _ROUTER,
    "urn:schemas-upnp-org:device:MediaServer": _MEDIA_SERVER,
}


def refusal_for_service(service_type: str) -> Refusal | None:
    """The refusal for an mDNS service type such as `_googlecast._tcp.local.`."""
    return BY_SERVICE_TYPE.get(service_type.lower())


def _upnp_refusal(device_type: str) -> Refusal | None:
    base, _, version = device_type.rpartition(":")
    return BY_UPNP_DEVICE.get(base if version.isdigit() else device_type)


def refusal_for(announcements: Iterable[Announcement]) -> Refusal | None:
    """Why none of these announcements can be adopted, if the table knows; None otherwise.

    A device that announces anything Linli can work with (MQTT telemetry, a native
    service, a type not in the table) is never refused here: the caller checks profiles
    and adapters first, and this only names what is left.
    """
    found: Refusal | None = None
    for announcement in announcements:
        if announcement.source is Source.MQTT or announcement.topic:
            return None  # it publishes telemetry: adoptable with a profile or its own config
        for facts in announcement.facts:
            if announcement.source is Source.ZEROCONF:
                refusal = refusal_for_service(facts.get("type", ""))
            else:
                refusal = _upnp_refusal(facts.get("deviceType", "")) or _upnp_refusal(facts.get("st", ""))
            found = found or refusal
    return found
