"""UPnP control messages (SOAP 1.1 as UDA 1.1 §3.2 uses it): one action element of flat arguments.

A control request or answer is an `Envelope` whose `Body` holds one element —
the action, `<action>Response`, or a `Fault` carrying a `UPnPError` — whose
children are simple values. That shape is all this module reads or writes, so a
command costs a string template out and at most one pass of the standard
library's C parser in (none for an answer seen before), instead of
async-upnp-client's element trees and defusedxml's Python parser each way (the
library still reads device descriptions and owns the services' argument
definitions and type coercion).

Safety: a SOAP message must not contain a document type declaration (SOAP 1.1
§3), and entities can only be declared in one, so a message with a DOCTYPE is
refused before it is parsed — an XML bomb or an external entity never gets to
expand. Messages are UTF-8 (UDA 1.1 §3.2.1); at most `MAX_VALUES` arguments are accepted.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from xml.etree import ElementTree as ET
from xml.sax.saxutils import escape

ENVELOPE_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
ENCODING_STYLE: Final = "http://schemas.xmlsoap.org/soap/encoding/"
CONTROL_NS: Final = "urn:schemas-upnp-org:control-1-0"
CONTENT_TYPE: Final = 'text/xml; charset="utf-8"'
MAX_VALUES: Final = 64
_REMEMBERED: Final = 1024  # distinct messages kept parsed, ≤ _REMEMBERED_BYTES each (a few MB at most)
_REMEMBERED_BYTES: Final = 4096
_HEAD: Final = (
    f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ENVELOPE_NS}" '
    f's:encodingStyle="{ENCODING_STYLE}"><s:Body>'
)
_TAIL: Final = "</s:Body></s:Envelope>"


class SoapError(ValueError):
    """Not a UPnP control message; the text says what is wrong with it."""


@dataclass(slots=True, frozen=True)
class SoapMessage:
    """The one element in the Body: its namespace and local name, and its arguments' text.

    Read-only: `parse` hands the same message to every caller whose bytes were the same.
    """

    namespace: str
    name: str
    values: Mapping[str, str] = field(default_factory=dict)
    fault: tuple[int | None, str] | None = None  # (UPnP errorCode, errorDescription) of a Fault


def envelope(namespace: str, element: str, arguments: Iterable[tuple[str, str]] = ()) -> bytes:
    """`<u:element xmlns:u=namespace>` with the arguments (already UPnP strings), in an envelope."""
    args = "".join(f"<{name}>{escape(value)}</{name}>" for name, value in arguments)
    return f'{_HEAD}<u:{element} xmlns:u="{namespace}">{args}</u:{element}>{_TAIL}'.encode()


def fault_envelope(code: int, description: str) -> bytes:
    """A UPnP error (UDA 1.1 §3.2.2), answered with HTTP 500."""
    return (
        f"{_HEAD}<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        f'<UPnPError xmlns="{CONTROL_NS}"><errorCode>{int(code)}</errorCode>'
        f"<errorDescription>{escape(description)}</errorDescription></UPnPError></detail></s:Fault>{_TAIL}"
    ).encode()


def _local(tag: str) -> tuple[str, str]:
    namespace, _, local = tag[1:].partition("}") if tag.startswith("{") else ("", "", tag)
    return (namespace, local) if local else ("", namespace)


def tree(body: bytes | str, what: str) -> ET.Element:
    """The element tree of a UTF-8 document without a DOCTYPE (so no entity can be declared).

    SoapError otherwise. Also what the DIAL client reads app status documents with.
    """
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise SoapError(f"{what} is not UTF-8 (UDA 1.1 §3.2.1 requires it)") from None
    if "<!DOCTYPE" in text:
        raise SoapError(
            f"a document type declaration in {what} (SOAP forbids one; entities are not accepted)"
        )
    try:
        # A str is parsed as UTF-8 whatever its XML declaration says: decoded above, once.
        return ET.fromstring(text)
    except ET.ParseError as exc:
        raise SoapError(f"{what} is not well-formed XML ({exc})") from None


def parse(body: bytes) -> SoapMessage:
    """The message in a control request or answer; SoapError for anything else.

    The same bytes are parsed once: answers repeat — every box of a model answers
    an action without out-arguments (SetAVTransportURI, Play, SetVolume) with the
    same envelope, and a read of an unchanged state with the same bytes it sent
    last time — so most exchanges of a community's boxes cost no XML parse at all.
    Large or malformed messages are not remembered.
    """
    if len(body) > _REMEMBERED_BYTES:
        return _parse(body)
    return _parse_remembered(bytes(body))


def _parse(body: bytes) -> SoapMessage:
    root = tree(body, "the SOAP message")
    namespace, local = _local(root.tag)
    if local != "Envelope" or namespace not in (ENVELOPE_NS, ""):
        raise SoapError(f"root element {local!r} is not a SOAP Envelope")
    body_element = next((child for child in root if _local(child.tag)[1] == "Body"), None)
    if body_element is None:
        raise SoapError("no SOAP Body")
    if len(body_element) != 1:
        raise SoapError(f"{len(body_element)} elements in the SOAP Body, where one belongs")
    element = body_element[0]
    if len(element) > MAX_VALUES:
        raise SoapError(f"more than {MAX_VALUES} arguments")
    namespace, name = _local(element.tag)
    values = {_local(child.tag)[1]: child.text or "" for child in element}
    fault = None
    if name == "Fault":
        error = next((e for e in element.iter() if _local(e.tag)[1] == "UPnPError"), None)
        code = description = ""
        if error is not None:
            for child in error:
                field_name = _local(child.tag)[1]
                if field_name == "errorCode":
                    code = (child.text or "").strip()
                elif field_name == "errorDescription":
                    description = child.text or ""
        description = description or values.get("faultstring", "")
        fault = (int(code) if code.isdigit() else None, description[:200])
    return SoapMessage(namespace, name, MappingProxyType(values), fault)


_parse_remembered = functools.lru_cache(maxsize=_REMEMBERED)(_parse)


def parse_value_pairs(document: str) -> Mapping[str, str]:
    """A `stateVariableValuePairs` document (GetStateVariables of AVTransport:2, RenderingControl:2).

    Variables of another channel than Master are left out; the same rules as `parse`
    (no DOCTYPE, at most MAX_VALUES), and the same document is read once, like a message.
    """
    if len(document) > _REMEMBERED_BYTES:
        return _value_pairs(document)
    return _value_pairs_remembered(document)


def _value_pairs(document: str) -> Mapping[str, str]:
    root = tree(document, "the state variables")
    if _local(root.tag)[1] != "stateVariableValuePairs":
        raise SoapError(f"root element {_local(root.tag)[1]!r} is not stateVariableValuePairs")
    if len(root) > MAX_VALUES:
        raise SoapError(f"more than {MAX_VALUES} state variables")
    return MappingProxyType(
        {
            str(variable.get("variableName")): variable.text or ""
            for variable in root
            if _local(variable.tag)[1] == "stateVariable" and variable.get("channel", "Master") == "Master"
        }
    )


_value_pairs_remembered = functools.lru_cache(maxsize=_REMEMBERED)(_value_pairs)
