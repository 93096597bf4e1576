"""A paired TV's credential: what a *screen* principal is, and the few routes it may call.

A screen is not a person: its token (`TokenKind.SCREEN`) belongs to no user
and names one household in its scope. It acts as that household's resident
would on the TV — sees its alerts, care and tiles, checks in, confirms a
reminder, calls for help, answers an alarm — and nothing else: no account
administration, no export, no settings, no other household. The auth
middleware refuses a screen every API route not listed here.
"""

from __future__ import annotations

from typing import Final

from linli.gateway.users import Role, Token
from linli.portal.auth.principal import Principal

#: The cookie a paired box keeps its screen credential in (HttpOnly, SameSite=Strict).
SCREEN_COOKIE: Final = "linli_screen"
VIA: Final = "screen"
SCREEN_TTL_S: Final = 365 * 86400.0  # a year: the household admin revokes a lost or sold box sooner

#: What the TV page needs, and all a screen may call.
SCREEN_ROUTES: Final[frozenset[tuple[str, str]]] = frozenset(
    {
        ("GET", "/api/v1/auth/me"),
        ("GET", "/api/v1/households/{household_id}"),
        ("GET", "/api/v1/households/{household_id}/care"),
        ("POST", "/api/v1/households/{household_id}/care/check-in"),
        ("POST", "/api/v1/households/{household_id}/care/reminders/{reminder_id}/confirm"),
        ("POST", "/api/v1/households/{household_id}/help"),
        ("GET", "/api/v1/announcements"),
        ("GET", "/api/v1/alerts"),
        ("GET", "/api/v1/alerts/{alert_id}"),
        ("POST", "/api/v1/alerts/{alert_id}/acknowledge"),
        ("POST", "/api/v1/alerts/{alert_id}/cancel"),
        ("GET", "/api/v1/ws"),
        ("POST", "/api/v1/tv/pairings"),
        ("POST", "/api/v1/tv/pairings/token"),
    }
)


def screen_may(method: str, template: str | None) -> bool:
    """Whether a screen may call this API route (HEAD as GET)."""
    return ("GET" if method == "HEAD" else method, template or "") in SCREEN_ROUTES


def screen_principal(token: Token) -> Principal | None:
    """The principal a live screen token stands for (None when its scope names no household)."""
    household = (token.scope or {}).get("household")
    if not isinstance(household, str) or not household:
        return None
    name = f"screen:{token.id}"
    return Principal(
        user_id=name,
        name=name,
        role=Role.RESIDENT,  # what a resident sees on the TV; screen_may narrows it to the TV's routes
        household_id=household,
        display_name=name,  # no person's name: help calls name the household instead
        locale="zh-CN",
        via=VIA,
        token_id=token.id,
        csrf=token.csrf,
    )
