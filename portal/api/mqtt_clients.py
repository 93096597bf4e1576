"""The device plane's identities: MQTT credentials for a household's devices and bridges.

A credential's password is in the answer that creates it and nowhere else (the
database keeps the broker's hash). Issuing and revoking are audited; the broker
applies either at once, without dropping anyone else's connection.
"""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.mqtt.credentials import CredentialError, MqttCredentials
from linli.gateway.users import Role
from linli.portal.api.errors import ApiError, not_found
from linli.portal.api.operations import ID, Api, Call, obj, text
from linli.portal.auth.middleware import ACCOUNTS

_ROLES = [Role.MANAGER, Role.INSTALLER, Role.HOUSEHOLD_ADMIN]


def _credentials(call: Call) -> MqttCredentials:
    return call.gateway.mqtt_credentials


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/mqtt-clients",
    summary="List the household's MQTT credentials (devices and bridges; never their passwords)",
    tag="devices",
    roles=_ROLES,
)
async def list_clients(call: Call) -> dict[str, Any]:
    credentials = _credentials(call)
    return {
        "enforced": credentials.endpoint is not None,
        "items": credentials.listing(call.household_id),
    }


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/mqtt-clients",
    summary="Issue an MQTT credential for a device or a bridge of the household (password shown once)",
    tag="devices",
    roles=_ROLES,
    status=201,
    body=obj(
        {
            "kind": {"enum": ["device", "bridge"]},
            "device_id": ID,
            "base_topic": text(200),
            "name": text(120),
        },
        required=["kind"],
    ),
    description=(
        "A bridge (Zigbee2MQTT, Tasmota, OpenMQTTGateway, a home hub) publishes only under "
        "its _BASE topic, and what it announces can be adopted only into this household. "
        "A device publishes only its own state and availability topics and reads only its "
        "command topic. Issuing again for the same device gives it a new password."
    ),
)
async def issue(call: Call) -> dict[str, Any]:
    credentials = _credentials(call)
    if credentials.endpoint is None:
        mode = call.gateway.config["mqtt"]["broker"]
        raise ApiError(
            "not_supported",
            f"this gateway's broker (mqtt.broker = {mode!r}) takes no credentials from Linli: "
            "set mqtt.broker = 'mosquitto' to give devices and bridges their own credentials "
            "(the embedded broker has no per-device access control and serves loopback only)",
        )
    body = call.body
    try:
        if body["kind"] == "device":
            device = call.gateway.registry.device(body.get("device_id", ""))
            if device is None or device.household_id != call.household_id:
                raise not_found(f"device {body.get('device_id')!r} in household {call.household_id!r}")
            issued = await credentials.async_issue_device(device)
        else:
            if "base_topic" not in body:
                raise ApiError("invalid_body", "body.base_topic: a bridge needs its _BASE topic")
            issued = await credentials.async_issue_bridge(
                call.household_id, body["base_topic"], body.get("name")
            )
    except CredentialError as exc:
        raise ApiError("conflict", str(exc)) from None
    await call.request.app[ACCOUNTS].async_audit(
        call.principal,
        "mqtt_client.issue",
        target=issued.principal.username,
        household_id=call.household_id,
        ip=call.ip,
    )
    return issued.provisioning(*credentials.endpoint, tls=credentials.tls)


@ROUTES.op(
    "DELETE",
    "/api/v1/households/{household_id}/mqtt-clients/{username}",
    summary="Revoke an MQTT credential; the broker closes its connection at once",
    tag="devices",
    roles=_ROLES,
)
async def revoke(call: Call) -> dict[str, Any]:
    credentials = _credentials(call)
    username = call.path["username"]
    row = credentials.get(username)
    if row is None or row["household_id"] != call.household_id:
        raise not_found(f"MQTT credential {username!r}")
    await credentials.async_revoke(username)
    await call.request.app[ACCOUNTS].async_audit(
        call.principal, "mqtt_client.revoke", target=username, household_id=call.household_id, ip=call.ip
    )
    return {"revoked": username}


@ROUTES.op(
    "GET",
    "/api/v1/mqtt/broker",
    summary="The broker: mode, process, reloads and refused logins per client (anomalies)",
    tag="devices",
    roles=[Role.MANAGER, Role.INSTALLER],
)
async def broker(call: Call) -> dict[str, Any]:
    broker = call.gateway.broker
    return {
        "mode": call.gateway.config["mqtt"]["broker"],
        **(broker.stats() if broker is not None else {}),
        "link": call.gateway.mqtt.stats(),
    }
