"""Casting from a phone: let this phone reach the household's virtual DLNA renderer for a while.

A renderer answers only its household's own network (`cast.allowed_networks`); a phone
elsewhere (mobile data through the community network, a carer's visit) is let in by a
member of the household, for `cast.pairing_s` seconds, from the address it asks from.
"""

from __future__ import annotations

from typing import Any, Final

from linli.gateway.users import Role
from linli.portal.api.errors import ApiError
from linli.portal.api.operations import Api, Call
from linli.portal.auth.middleware import ACCOUNTS
from linli.services.screens import CAST

MEMBERS = [Role.RESIDENT, Role.HOUSEHOLD_ADMIN]


#: The operations this module serves, each declared once (`operations.py`); `assembly.py` mounts them.
ROUTES: Final = Api()


@ROUTES.op(
    "POST",
    "/api/v1/households/{household_id}/cast/pair",
    summary="Let this phone cast to the household's TV for a while (its address, audited)",
    tag="screens",
    roles=MEMBERS,
)
async def pair(call: Call) -> dict[str, Any]:
    cast = call.gateway.peer(CAST)
    if cast is None:
        raise ApiError(
            "not_supported", "casting is not switched on in this gateway (components: gateway.stb.cast)"
        )
    try:
        until = cast.pair(call.household_id, call.ip)
    except ValueError:
        raise ApiError("bad_request", f"this phone's address {call.ip!r} cannot be paired") from None
    await call.request.app[ACCOUNTS].async_audit(
        call.principal, "cast.pair", household_id=call.household_id, target=call.ip, ip=call.ip
    )
    renderer = f"{cast.url}/cast/{call.household_id}/description.xml" if cast.url else None
    return {"address": call.ip, "until": until, "renderer": renderer}
