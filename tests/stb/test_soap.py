"""UPnP control messages: read once per distinct message, read-only, and hostile ones refused every time."""

from __future__ import annotations

import pytest

from linli.adapters.upnp import soap
from linli.sim.dial_box import XML_BOMB
from tests.stb.boxes import home_with_tv, stb_gateway

AV = "urn:schemas-upnp-org:service:AVTransport:2"


def test_the_same_answer_is_read_once_and_shared_read_only() -> None:
    # given the empty answer every box of a model gives to SetAVTransportURI
    answer = soap.envelope(AV, "SetAVTransportURIResponse")
    # when it arrives twice, as different bytes objects
    first, second = soap.parse(answer), soap.parse(bytes(bytearray(answer)))
    # then it is read once: both callers get the same message
    assert first is second
    assert (first.namespace, first.name, dict(first.values), first.fault) == (
        AV,
        "SetAVTransportURIResponse",
        {},
        None,
    )
    # and nobody can change what the other callers are given
    with pytest.raises(TypeError):
        first.values["CurrentURI"] = "dvb://1.2.3"  # type: ignore[index]
    with pytest.raises(AttributeError):
        first.name = "PlayResponse"  # type: ignore[misc]


def test_a_state_variables_document_is_read_once_and_keeps_only_the_master_channel() -> None:
    document = (
        '<?xml version="1.0" encoding="UTF-8"?><stateVariableValuePairs xmlns="urn:schemas-upnp-org:av:avs">'
        '<stateVariable variableName="Volume" channel="Master">30</stateVariable>'
        '<stateVariable variableName="Volume" channel="LF">5</stateVariable>'
        '<stateVariable variableName="Mute">1</stateVariable></stateVariableValuePairs>'
    )
    found = soap.parse_value_pairs(document)
    assert dict(found) == {"Volume": "30", "Mute": "1"}
    assert soap.parse_value_pairs(document) is found
    with pytest.raises(TypeError):
        found["Volume"] = "99"  # type: ignore[index]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (XML_BOMB, "document type declaration"),
        (b"<s:Envelope", "not well-formed"),
        (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"/>', "no SOAP Body"),
        (b"\xff\xfe<\x00a\x00/\x00>\x00", "not UTF-8"),
    ],
    ids=["xml-bomb", "truncated", "no-body", "utf-16"],
)
def test_a_hostile_or_broken_message_is_refused_every_time(body: bytes, says: str) -> None:
    # refused, and not remembered as anything: the second time is refused all the same
    for _ in range(2):
        with pytest.raises(soap.SoapError, match=says):
            soap.parse(body)


def test_a_large_message_is_read_in_full_but_not_kept() -> None:
    metadata = "x" * 10_000
    answer = soap.envelope(AV, "GetMediaInfoResponse", [("CurrentURIMetaData", metadata)])
    first, second = soap.parse(answer), soap.parse(answer)
    assert first.values["CurrentURIMetaData"] == metadata
    assert first == second and first is not second


def test_a_fault_keeps_its_upnp_error() -> None:
    fault = soap.parse(soap.fault_envelope(714, "Illegal MIME-type & more"))
    assert fault.name == "Fault" and fault.fault == (714, "Illegal MIME-type & more")


async def test_prepared_requests_tune_each_box_to_the_channel_asked_for(make_gateway, boxes) -> None:
    # given two cable boxes, tuned back and forth over the same channels (the same requests, prepared)
    gateway = await stb_gateway(make_gateway)
    first, second = await boxes("broadcast", "h1-tv"), await boxes("broadcast", "h2-tv")
    tvs = {"h1": (await home_with_tv(gateway, "h1", first), first)}
    tvs["h2"] = (await home_with_tv(gateway, "h2", second), second)
    for lcn in (1, 2, 1, 2, 3):
        for household, offset in (("h1", 0), ("h2", 1)):
            device, box = tvs[household]
            wanted = (lcn + offset - 1) % 3 + 1
            # when a channel is tuned
            command = {"action": "tune", "lcn": wanted}
            result = await gateway.commands.async_send(device.id, "channel", command)
            # then that box, and only that box, shows it, confirmed from what it reports
            assert result["state"]["lcn"] == wanted
            assert box.screen.channel is not None and box.screen.channel["lcn"] == wanted
    assert first.screen.channel["lcn"] == 3 and second.screen.channel["lcn"] == 1
