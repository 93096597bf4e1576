"""Who may call the inbox, the screens, and the API routes that are not declared operations.

Every API operation declares its roles where it is declared (`portal/api/operations.py`);
the inbox's and the screens' declarations take theirs from here. A route some module adds
to the app outside that table (the live-event WebSocket) is open only to the roles named in
`OTHER_ROUTE_ROLES`: the auth middleware enforces them and the OpenAPI document publishes
them. A route missing from both is refused to everyone signed in, so a new route is closed
until someone decides who may use it.
"""

from __future__ import annotations

from typing import Final

from linli.gateway.users import Role
from linli.portal.auth.principal import COMMUNITY_ROLES, EVERYONE, MEMBERS

INBOX_ROLES: Final = COMMUNITY_ROLES
#: A household's TV: its members send to it; the property office and installers too (for
#: announcements and setting boxes up). Not carers or providers: opening pages on a parent's
#: TV is the household's own decision.
SCREEN_ROLES: Final = MEMBERS | COMMUNITY_ROLES

OTHER_ROUTE_ROLES: Final[dict[tuple[str, str], frozenset[Role]]] = {
    ("GET", "/api/v1/ws"): EVERYONE,
}


def roles_for(method: str, template: str) -> frozenset[Role]:
    """The roles that may call another module's route (none when it was never declared)."""
    return OTHER_ROUTE_ROLES.get(("GET" if method == "HEAD" else method, template), frozenset())
