"""UPnP device descriptions: fetched with a size and time bound, parsed with defusedxml.

A description comes from whatever answered on the network, so it is hostile
until proven otherwise:

* the fetch stops at `max_bytes` (a declared Content-Length over the limit is
  refused before reading) and at `timeout_s` for the whole exchange (a server
  that never answers, or drips one byte a second);
* the XML is parsed by defusedxml, which refuses entity declarations (the
  "billion laughs" bomb), external entities and DTD retrieval (XXE) — the
  parse runs in a worker thread, and is bounded because the input is;
* DIAL servers name their application endpoint in the `Application-URL`
  header of this very response (DIAL 2.x §5.4), so it is read here.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Final

import aiohttp
import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

_DEVICE_NS: Final = "urn:schemas-upnp-org:device-1-0"
_FIRMWARE_TAGS: Final = ("firmwareVersion", "softwareVersion")


class DescriptionError(Exception):
    """The description could not be used; the message says why.

    `status` is the HTTP status of a description that was not served (404 …) and
    `application_url` the DIAL `Application-URL` header that came with it, if any: many
    real DIAL servers answer their description URL with 404 and are DIAL servers still.
    """

    def __init__(
        self, message: str, *, status: int | None = None, application_url: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.application_url = application_url[:1024] if application_url else None


@dataclass(slots=True, kw_only=True)
class DeviceDescription:
    device_type: str | None
    friendly_name: str | None
    manufacturer: str | None
    model_name: str | None
    model_number: str | None
    model_description: str | None
    serial_number: str | None
    udn: str | None
    presentation_url: str | None
    firmware: str | None
    services: list[str] = field(default_factory=list)  # service types, embedded devices' included
    device_types: list[str] = field(default_factory=list)  # the root's and embedded devices'
    application_url: str | None = None  # DIAL


async def async_fetch(
    session: aiohttp.ClientSession, url: str, *, timeout_s: float, max_bytes: int
) -> tuple[bytes, str | None]:
    """The body and the DIAL `Application-URL` header; DescriptionError when unusable."""
    try:
        async with asyncio.timeout(timeout_s):
            async with session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise DescriptionError(
                        f"description {url} answered HTTP {response.status}",
                        status=response.status,
                        application_url=response.headers.get("Application-URL"),
                    )
                declared = response.content_length
                if declared is not None and declared > max_bytes:
                    raise DescriptionError(
                        f"description {url} is {declared} bytes, over the {max_bytes}-byte limit "
                        "(discovery.ssdp.max_description_bytes)"
                    )
                body = bytearray()
                async for chunk in response.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_bytes:
                        raise DescriptionError(
                            f"description {url} is over the {max_bytes}-byte limit "
                            "(discovery.ssdp.max_description_bytes); stopped reading"
                        )
                return bytes(body), response.headers.get("Application-URL")
    except TimeoutError:
        raise DescriptionError(
            f"description {url} did not arrive within {timeout_s:g} s (discovery.ssdp.description_timeout_s)"
        ) from None
    except aiohttp.ClientError as exc:
        raise DescriptionError(
            f"description {url} could not be fetched: {exc or type(exc).__name__}"
        ) from None


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _text(element: ET.Element, name: str) -> str | None:
    for child in element:
        if _local(child.tag) == name:
            text = (child.text or "").strip()
            return text[:256] or None
    return None


def parse(body: bytes) -> DeviceDescription:
    """Parse a device description (call in a worker thread: it is CPU work)."""
    try:
        root = DET.fromstring(body, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise DescriptionError(
            f"hostile XML refused ({type(exc).__name__}: {exc}); entity declarations and "
            "external references are never expanded"
        ) from None
    except (ET.ParseError, ValueError) as exc:
        raise DescriptionError(f"description is not well-formed XML: {exc}") from None
    if _local(root.tag) != "root":
        raise DescriptionError(f"description's root element is <{_local(root.tag)}>, not <root>")
    device = next((c for c in root if _local(c.tag) == "device"), None)
    if device is None:
        raise DescriptionError("description has no <device> element")
    services: list[str] = []
    device_types: list[str] = []
    firmware = None
    for element in device.iter():
        tag = _local(element.tag)
        if tag == "serviceType" and element.text:
            services.append(element.text.strip()[:256])
        elif tag == "deviceType" and element.text:
            device_types.append(element.text.strip()[:256])
        elif tag in _FIRMWARE_TAGS and element.text and firmware is None:
            firmware = element.text.strip()[:64] or None
    return DeviceDescription(
        device_type=_text(device, "deviceType"),
        friendly_name=_text(device, "friendlyName"),
        manufacturer=_text(device, "manufacturer"),
        model_name=_text(device, "modelName"),
        model_number=_text(device, "modelNumber"),
        model_description=_text(device, "modelDescription"),
        serial_number=_text(device, "serialNumber"),
        udn=_text(device, "UDN"),
        presentation_url=_text(device, "presentationURL"),
        firmware=firmware,
        services=services[:64],
        device_types=device_types[:16],
    )


async def async_describe(
    session: aiohttp.ClientSession, url: str, *, timeout_s: float, max_bytes: int
) -> DeviceDescription:
    body, application_url = await async_fetch(session, url, timeout_s=timeout_s, max_bytes=max_bytes)
    description = await asyncio.to_thread(parse, body)
    description.application_url = application_url[:1024] if application_url else None
    return description
