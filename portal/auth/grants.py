"""Who may call the API routes other modules serve (first views, inbox, screens, adapters).

The portal's own operations declare their roles where they are declared
(`portal/api/operations.py`). The routes other modules add to the app check
only what they know — a household in the path is checked by the auth
middleware — so their roles are declared here, once: the middleware enforces
them and the OpenAPI document publishes them. A route of another module that
is missing here is refused to everyone signed in, so a new route is closed
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
    ("GET", "/"): EVERYONE,
    ("GET", "/api/v1/status"): EVERYONE,
    ("GET", "/api/v1/households"): EVERYONE,
    ("GET", "/api/v1/households/{household_id}/devices"): EVERYONE,
    ("GET", "/api/v1/ws"): EVERYONE,
    ("GET", "/api/v1/inbox"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/scan"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/bulk-approve"): INBOX_ROLES,
    ("GET", "/api/v1/inbox/{item_id}"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/{item_id}/approve"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/{item_id}/reject"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/{item_id}/ignore"): INBOX_ROLES,
    ("POST", "/api/v1/inbox/{item_id}/restore"): INBOX_ROLES,
    # Adapter states and set-top boxes of every household: for the office and installers.
    ("GET", "/api/v1/adapters"): COMMUNITY_ROLES,
    ("GET", "/api/v1/adapters/{adapter_id}"): COMMUNITY_ROLES,
    ("GET", "/api/v1/households/{household_id}/screens"): SCREEN_ROLES,
    ("POST", "/api/v1/households/{household_id}/screens/tv/notify"): SCREEN_ROLES,
    ("DELETE", "/api/v1/households/{household_id}/screens/tv/notify"): SCREEN_ROLES,
    ("POST", "/api/v1/households/{household_id}/screens/tv/play"): SCREEN_ROLES,
    ("POST", "/api/v1/households/{household_id}/screens/tv/open"): SCREEN_ROLES,
}


def roles_for(method: str, template: str) -> frozenset[Role]:
    """The roles that may call another module's route (none when it was never declared)."""
    return OTHER_ROUTE_ROLES.get(("GET" if method == "HEAD" else method, template), frozenset())
