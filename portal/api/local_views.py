"""The gateway's status and the households at a glance: the community page's read-only views.

Declared like every other operation (`operations.py`), for every signed-in
role, each caller seeing the households within their reach. These three are
also the views the demo opens without a sign-in (`open_locally`): only to this
machine's own browser, only for reading, only where `portal.open_local_views`
is on — and then without any health value (`device_view` of nobody).
"""

from __future__ import annotations

import time
from typing import Any, Final

from linli.adapters.mqtt_device import MQTT_DEVICES
from linli.gateway import __version__
from linli.portal.api.community import device_view, scoped_households
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call
from linli.portal.auth.principal import EVERYONE

#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "GET",
    "/api/v1/status",
    summary="Read the gateway's status",
    tag="community",
    roles=EVERYONE,
    open_locally=True,
)
async def status(call: Call) -> dict[str, Any]:
    gateway = call.gateway
    adapter = gateway.peer(MQTT_DEVICES)
    return {
        "gateway_id": gateway.gateway_id,
        "version": __version__,
        "community": {"id": gateway.registry.community_id, "name": gateway.registry.community_name},
        "uptime_s": round(time.time() - (gateway.started_at or time.time()), 1),
        "startup_s": gateway.startup_s,
        "households": len(gateway.registry.households),
        "devices": len(gateway.registry.devices),
        "devices_available": sum(1 for d in gateway.registry.devices.values() if d.available),
        "mqtt": gateway.mqtt.stats(),
        "ingest": {
            "accepted": getattr(adapter, "accepted", 0),
            "rejected": getattr(adapter, "rejected", 0),
        },
        "store": {
            "rows_written": gateway.store.rows_written,
            "pending_rows": gateway.store.pending_rows,
            "batches": gateway.store.batches_written,
        },
        "profile_errors": gateway.profiles.errors,
        # each component's state with the reason a person can act on (waiting, retrying, failed…)
        "components": [s.as_dict() for s in gateway.statuses()],
    }


@ROUTES.op(
    "GET",
    "/api/v1/households",
    summary="List the households I may see",
    tag="community",
    roles=EVERYONE,
    open_locally=True,
)
async def households(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    visible = scoped_households(call.principal, call.gateway)
    items = []
    for household in sorted(registry.households.values(), key=lambda h: h.id):
        if visible is not None and household.id not in visible:
            continue
        devices = registry.household_devices(household.id)
        unit = registry.units.get(household.unit_id)
        building = registry.buildings.get(unit.building_id) if unit else None
        items.append(
            {
                "id": household.id,
                "name": household.name,
                "unit": unit.name if unit else None,
                "building": building.name if building else None,
                "devices": len(devices),
                "devices_available": sum(1 for d in devices if d.available),
                "last_seen": max((d.last_seen or 0 for d in devices), default=None) or None,
            }
        )
    return {"items": items, "total": len(items)}


@ROUTES.op(
    "GET",
    "/api/v1/households/{household_id}/devices",
    summary="List a household's devices with state",
    tag="devices",
    roles=EVERYONE,
    open_locally=True,
)
async def household_devices(call: Call) -> dict[str, Any]:
    registry = call.gateway.registry
    household_id = call.household_id
    visible = scoped_households(call.principal, call.gateway)
    if household_id not in registry.households or (visible is not None and household_id not in visible):
        raise ApiError("not_found", f"no household {household_id!r}")
    devices = sorted(registry.household_devices(household_id), key=lambda d: d.id)
    # The same view as the REST API's: a provider's key sees only its kinds, and a health
    # value only whoever may read the household's health data (never the open local views).
    items = [device_view(d, call.principal, call.gateway) for d in devices]
    return {"items": items, "total": len(items)}
