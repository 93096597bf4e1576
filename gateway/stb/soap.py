"""UPnP control messages (SOAP 1.1 as UDA 1.1 §3.2 uses it): one action element of flat arguments.

A control request or answer is an `Envelope` whose `Body` holds one element —
the action, `<action>Response`, or a `Fault` carrying a `UPnPError` — whose
children are simple values. That shape is all this module reads or writes, so a
command costs a string template out and one pass of expat in, instead of an
element tree each way (async-upnp-client still reads device descriptions and
owns the services' argument definitions and type coercion).

Safety: a SOAP message must not contain a document type declaration (SOAP 1.1
§3), and entities can only be declared in one, so a DOCTYPE is refused on
sight — an XML bomb or an external entity never expands. Nothing deeper than
the arguments (or the fault's detail) is kept, and at most `MAX_VALUES` of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final
from xml.parsers import expat
from xml.sax.saxutils import escape

ENVELOPE_NS: Final = "http://schemas.xmlsoap.org/soap/envelope/"
ENCODING_STYLE: Final = "http://schemas.xmlsoap.org/soap/encoding/"
CONTROL_NS: Final = "urn:schemas-upnp-org:control-1-0"
CONTENT_TYPE: Final = 'text/xml; charset="utf-8"'
MAX_VALUES: Final = 64
_HEAD: Final = (
    f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{ENVELOPE_NS}" '
    f's:encodingStyle="{ENCODING_STYLE}"><s:Body>'
)
_TAIL: Final = "</s:Body></s:Envelope>"


class SoapError(ValueError):
    """Not a UPnP control message; the text says what is wrong with it."""


@dataclass(slots=True)
class SoapMessage:
    """The one element in the Body: its namespace and local name, and its arguments' text."""

    namespace: str
    name: str
    values: dict[str, str] = field(default_factory=dict)
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


def _split(name: str) -> tuple[str, str]:
    namespace, _, local = name.rpartition(" ")
    return namespace, local


def parse(body: bytes) -> SoapMessage:
    """The message in a control request or answer; SoapError for anything else."""
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    path: list[str] = []
    message: SoapMessage | None = None
    text: list[str] = []
    fault_code: list[str] = []
    fault_text: list[str] = []

    def refuse_doctype(*_: object) -> None:
        raise SoapError("a document type declaration (SOAP forbids one; entities are not accepted)")

    def start(name: str, _attributes: dict[str, str]) -> None:
        nonlocal message
        namespace, local = _split(name)
        depth = len(path)
        if depth == 0 and (local != "Envelope" or namespace not in (ENVELOPE_NS, "")):
            raise SoapError(f"root element {local!r} is not a SOAP Envelope")
        if depth == 1 and local != "Body":
            if local == "Header":
                path.append(local)
                return
            raise SoapError(f"{local!r} where the SOAP Body belongs")
        if depth == 2 and path[1] == "Body":
            if message is not None:
                raise SoapError("more than one element in the SOAP Body")
            message = SoapMessage(namespace=namespace, name=local)
        if depth == 3 and message is not None and len(message.values) >= MAX_VALUES:
            raise SoapError(f"more than {MAX_VALUES} arguments")
        text.clear()
        path.append(local)

    def end(_name: str) -> None:
        local = path.pop()
        depth = len(path)
        if message is None or depth < 3 or path[1] != "Body":
            return
        if depth == 3:
            message.values[local] = "".join(text)
        elif message.name == "Fault" and local == "errorCode":
            fault_code[:] = ["".join(text)]
        elif message.name == "Fault" and local == "errorDescription":
            fault_text[:] = ["".join(text)]
        text.clear()

    def characters(data: str) -> None:
        if len(path) >= 4:
            text.append(data)

    parser.StartDoctypeDeclHandler = refuse_doctype
    parser.EntityDeclHandler = refuse_doctype
    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(body, True)
    except expat.ExpatError as exc:
        raise SoapError(f"not well-formed XML ({exc})") from None
    if message is None:
        raise SoapError("an empty SOAP Body")
    if message.name == "Fault":
        code = fault_code[0].strip() if fault_code else ""
        description = fault_text[0] if fault_text else message.values.get("faultstring", "")
        message.fault = (int(code) if code.isdigit() else None, description[:200])
    return message
