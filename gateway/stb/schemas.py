"""JSON Schemas of the set-top box contract: one state and a set of commands per kind.

A command is a JSON object whose `action` names the verb; the other members are
its parameters:

    {"action": "tune", "lcn": 5}             channel
    {"action": "show", "text": "…"}          notify (the TV overlay)
    {"action": "set", "level": 30}           volume

An `action` the contract does not have for a kind, and any command to a kind a
box's adapter does not declare, is `not_supported` — the same error from every
adapter. Parameters that do not match their schema are `invalid_command`.

Channels are one record for both networks, after the OIPF DAE `Channel` class:
`idType` 10 (DVB-C, with the DVB triplet `onid`/`tsid`/`sid`), 40 (IPTV
delivered via SD&S, with `ipBroadcastID`) or 41 (IPTV addressed by `uri`); `lcn`
is the logical channel number the resident dials (OIPF `majorChannel`), absent
for a service the operator's lineup does not list.
"""

from __future__ import annotations

from typing import Any, Final

ID_TYPE_DVB_C: Final = 10
ID_TYPE_IPTV_SDS: Final = 40
ID_TYPE_IPTV_URI: Final = 41

#: Remote-control keys a `keys` command may press (names, not vendor key codes).
KEY_NAMES: Final = (
    "POWER",
    "UP",
    "DOWN",
    "LEFT",
    "RIGHT",
    "OK",
    "BACK",
    "HOME",
    "MENU",
    "INFO",
    "GUIDE",
    "EXIT",
    "CH_UP",
    "CH_DOWN",
    "VOL_UP",
    "VOL_DOWN",
    "MUTE",
    "PLAY",
    "PAUSE",
    "PLAY_PAUSE",
    "STOP",
    "FAST_FORWARD",
    "REWIND",
    "RED",
    "GREEN",
    "YELLOW",
    "BLUE",
    *(f"DIGIT_{d}" for d in range(10)),
)

_U16: Final = {"type": "integer", "minimum": 0, "maximum": 65535}
_TEXT: Final = {"type": "string", "maxLength": 500}
_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 100}
_WEB_URL: Final = {"type": "string", "pattern": "^https?://[^\\s]+$", "maxLength": 2048}
_MEDIA_URL: Final = {
    "type": "string",
    "pattern": "^(https?|rtsp|rtp|udp|igmp)://[^\\s]+$",
    "maxLength": 2048,
}
_APP: Final = {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"}
LEVELS: Final = ("info", "warning", "alarm")

CHANNEL_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["idType", "name"],
    "properties": {
        "idType": {"enum": [ID_TYPE_DVB_C, ID_TYPE_IPTV_SDS, ID_TYPE_IPTV_URI]},
        "lcn": {"type": "integer", "minimum": 1, "maximum": 9999},
        "name": _NAME,
        "onid": _U16,
        "tsid": _U16,
        "sid": _U16,
        "ipBroadcastID": {"type": "string", "minLength": 1, "maxLength": 256},
        "uri": _MEDIA_URL,
    },
    "additionalProperties": False,
    "allOf": [
        {
            "if": {"properties": {"idType": {"const": ID_TYPE_DVB_C}}},
            "then": {"required": ["onid", "tsid", "sid"]},
        },
        {
            "if": {"properties": {"idType": {"const": ID_TYPE_IPTV_SDS}}},
            "then": {"required": ["ipBroadcastID"]},
        },
        {
            "if": {"properties": {"idType": {"const": ID_TYPE_IPTV_URI}}},
            "then": {"required": ["uri"]},
        },
    ],
}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"oneOf": [{"type": "null"}, schema]}


def _obj(required: list[str], **properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": False,
    }


_NONE: Final = _obj([])

#: The state each kind reports (the value stored in the registry for it).
STB_STATE_SCHEMAS: Final[dict[str, dict[str, Any]]] = {
    "power": _obj(["on"], on={"type": "boolean"}),
    "keys": _obj(["last"], last={"type": "array", "items": {"enum": list(KEY_NAMES)}}),
    "channel": _nullable(CHANNEL_SCHEMA),
    "app": _obj(["running"], running=_nullable(_APP), url=_nullable(_WEB_URL)),
    "media": _obj(
        ["state", "url"],
        state={"enum": ["playing", "paused", "stopped"]},
        url=_nullable(_MEDIA_URL),
        title=_nullable(_NAME),
    ),
    "volume": _obj(
        ["level", "muted"], level={"type": "integer", "minimum": 0, "maximum": 100}, muted={"type": "boolean"}
    ),
    "notify": _obj(
        ["text"], text=_nullable(_TEXT), title=_nullable(_NAME), level=_nullable({"enum": list(LEVELS)})
    ),
    "portal": _obj(["open", "url"], open={"type": "boolean"}, url=_nullable(_WEB_URL)),
    "now_playing": _obj(
        ["source"],
        source={"enum": ["channel", "media", "app", "none"]},
        title=_nullable({"type": "string", "maxLength": 200}),
        channel=_nullable(CHANNEL_SCHEMA),
        url=_nullable({"type": "string", "maxLength": 2048}),
    ),
    "meta": _obj(
        ["adapter", "protocols"],
        adapter={"type": "string"},
        protocols={"type": "array", "items": {"type": "string"}},
        vendor=_nullable({"type": "string", "maxLength": 200}),
        model=_nullable({"type": "string", "maxLength": 200}),
        firmware=_nullable({"type": "string", "maxLength": 100}),
        id=_nullable({"type": "string", "maxLength": 300}),
        wake=_nullable({"enum": ["wol", "dial"]}),
    ),
}

#: kind → action → the schema of that action's parameters (without `action`).
STB_COMMAND_SCHEMAS: Final[dict[str, dict[str, dict[str, Any]]]] = {
    "power": {"on": _NONE, "off": _NONE},
    "keys": {
        "press": _obj(
            ["keys"],
            keys={"type": "array", "minItems": 1, "maxItems": 32, "items": {"enum": list(KEY_NAMES)}},
        )
    },
    "channel": {
        "tune": {
            "type": "object",
            "properties": {"lcn": CHANNEL_SCHEMA["properties"]["lcn"], "channel": CHANNEL_SCHEMA},
            "additionalProperties": False,
            "oneOf": [{"required": ["lcn"]}, {"required": ["channel"]}],
        },
        "up": _NONE,
        "down": _NONE,
    },
    "app": {
        "launch": _obj(["app"], app=_APP, url=_WEB_URL),
        "stop": _obj(["app"], app=_APP),
    },
    "media": {
        "play": _obj(["url"], url=_MEDIA_URL, title=_NAME),
        "pause": _NONE,
        "resume": _NONE,
        "stop": _NONE,
    },
    "volume": {
        "set": _obj(["level"], level={"type": "integer", "minimum": 0, "maximum": 100}),
        "mute": _obj(["muted"], muted={"type": "boolean"}),
    },
    "notify": {
        "show": _obj(
            ["text"],
            text={"type": "string", "minLength": 1, "maxLength": 500},
            title=_NAME,
            level={"enum": list(LEVELS)},
            alert_id={"type": "integer"},
        ),
        "clear": _NONE,
    },
    "portal": {"open": _obj([], url=_WEB_URL), "close": _NONE},
    "now_playing": {},  # read-only
    "meta": {},  # read-only
}


def command_schema(kind: str) -> dict[str, Any]:
    """The whole JSON Schema of a kind's command (for documentation and API clients)."""
    options = []
    for action, params in STB_COMMAND_SCHEMAS.get(kind, {}).items():
        properties = {"action": {"const": action}, **params.get("properties", {})}
        option: dict[str, Any] = {
            "type": "object",
            "required": ["action", *params.get("required", [])],
            "properties": properties,
            "additionalProperties": False,
        }
        if "oneOf" in params:
            option["oneOf"] = params["oneOf"]
        options.append(option)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "oneOf": options}
