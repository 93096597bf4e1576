"""Component `screens`: multi-screen — the household's TV as one target, whichever operator's box it is.

From a phone (through the portal): send a message, a stream or a web page to the
household's TV, or open the Linli portal on it. From the gateway: an alert for a
household appears as an overlay on its TV (the `tv` delivery channel) when the
escalation step for the household's own screens starts, and goes away when a
person acknowledges or resolves it — both told by the alert engine through that
channel alone, never heard from the bus, so the TV keeps the policy's timing.

The TV is found by capability kind (a device of the household with `notify`),
and commanded through `gateway.commands`: this module knows no adapter, so a
carrier box and a cable box are reached by the same code.

Only alarms look like alarms on the box: a reminder (medication, the daily
check-in) and an announcement are calm overlays (level `info`), whatever
their severity says; an emergency broadcast is a `warning`. Opening the
Linli portal on a box the gateway adopted for a household sends it the URL
the portal gives (`tv_link`: `/tv/` with a one-time pairing grant), so the
box is signed in to its household without a code.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

from linli.gateway.commands import CommandError, NotSupportedError, UnavailableError
from linli.gateway.component import ComponentKey
from linli.gateway.context import Context
from linli.gateway.notify import Audience, Delivery, Outcome

if TYPE_CHECKING:
    from linli.gateway.component import ComponentApi
    from linli.gateway.registry import Device

_LOGGER = logging.getLogger(__name__)
CHANNEL_NAME: Final = "tv"
_LEVELS: Final = {"critical": "alarm", "high": "alarm", "warning": "warning", "info": "info"}
_CLOSED: Final = frozenset({"acknowledged", "resolved", "cancelled"})
#: Alert kinds that are nudges, not alarms: a calm overlay on the box.
CALM_KINDS: Final = frozenset({"reminder", "check_in_reminder"})


def overlay_level(alert: dict[str, Any]) -> str:
    """The box overlay's level for an alert: `info` for a reminder, else by severity."""
    if alert.get("kind") in CALM_KINDS:
        return "info"
    return _LEVELS.get(str(alert.get("severity")), "alarm")


class NoScreenError(CommandError):
    """The household has no TV box (yet)."""

    code = "no_screen"


class UnknownHouseholdError(CommandError):
    code = "unknown_household"


def alert_text(alert: dict[str, Any]) -> str:
    title = str(alert.get("title") or alert.get("kind") or "Alert")
    detail = str(alert.get("detail") or "")
    text = f"{title} — {detail}" if detail else title
    return text[:500]


class TvChannel:
    """Alert delivery channel `tv`: the household's TV overlay, through the box's `notify`.

    The escalation step for the household shows the overlay; the alert's later changes come
    through `async_follow`, and an answer (acknowledged, resolved, cancelled) clears it. The
    box's commands carry the engine's context for them, so the overlay is traced to its cause.
    """

    name = CHANNEL_NAME

    def __init__(self, screens: Screens) -> None:
        self._screens = screens

    async def async_deliver(self, alert: dict[str, Any], audience: Audience, *, context: Context) -> Delivery:
        if audience is not Audience.HOUSEHOLD:
            return Delivery(outcome=Outcome.NO_RECIPIENT, detail="the TV shows the household's own alerts")
        household = alert.get("household_id")
        tv = self._screens.tv(household) if household else None
        if tv is None:
            return Delivery(outcome=Outcome.NO_RECIPIENT, detail=f"no TV box in household {household}")
        try:
            await self._screens.async_show_alert(tv, alert, context=context)
        except NotSupportedError as exc:
            return Delivery(outcome=Outcome.NO_RECIPIENT, detail=exc.message)
        except CommandError as exc:  # unavailable, box_error: the engine retries with backoff
            return Delivery(outcome=Outcome.FAILED, detail=f"{exc.code}: {exc.message}"[:300])
        return Delivery(outcome=Outcome.DELIVERED, detail=f"overlay on {tv.id}")

    async def async_follow(
        self, alert: dict[str, Any], audience: Audience, transition: str, *, context: Context
    ) -> None:
        """An answered alert leaves the TV it is on; other changes leave the overlay as it is."""
        household = alert.get("household_id")
        if audience is not Audience.HOUSEHOLD or transition not in _CLOSED or not household:
            return
        await self._screens.async_withdraw_alert(str(household), alert.get("id"), context=context)


class Screens:
    """The `screens` component."""

    name = "screens"
    requires: tuple[str, ...] = ("registry",)

    def __init__(self) -> None:
        self._api: ComponentApi | None = None
        self._channel = TvChannel(self)
        self._showing: dict[str, int] = {}  # household → alert id on its TV
        #: household → the TV portal's URL for its box (with a one-time pairing grant); set by the portal
        self.tv_link: Callable[[str], str] | None = None

    async def async_start(self, api: ComponentApi) -> None:
        self._api = api
        api.notifier.register(self._channel)

    async def async_stop(self) -> None:
        """Nothing of its own to undo: its channel and listener go with its ComponentApi."""

    # -- finding the TV ------------------------------------------------------------

    def tv(self, household_id: str) -> Device | None:
        """The household's TV box: a device with a `notify` capability (an available one first)."""
        assert self._api is not None
        boxes = [
            d
            for d in self._api.registry.household_devices(household_id)
            if any(cap.kind == "notify" for cap in d.profile.capabilities)
        ]
        boxes.sort(key=lambda d: (not d.available, d.id))
        return boxes[0] if boxes else None

    def _require_tv(self, household_id: str) -> Device:
        assert self._api is not None
        if household_id not in self._api.registry.households:
            raise UnknownHouseholdError(f"no household {household_id!r}")
        tv = self.tv(household_id)
        if tv is None:
            raise NoScreenError(
                f"household {household_id} has no TV set-top box; adopt one with its operator's adapter"
            )
        return tv

    async def async_command(
        self, tv: Device, kind: str, value: dict[str, Any], *, context: Context | None = None
    ) -> Any:
        """A command to the TV's capability of this kind (the capability's key is the box's own)."""
        return await self._send(tv, kind, value, context)

    async def _send(self, tv: Device, kind: str, value: dict[str, Any], context: Context | None) -> Any:
        assert self._api is not None
        key = next((cap.key for cap in tv.profile.capabilities if cap.kind == kind), None)
        if key is None:
            raise NotSupportedError(f"{tv.id} ({tv.profile.id}) has no {kind!r}")
        ctx = context or Context(household=tv.household_id, origin=self.name)
        return await self._api.commands.async_send(tv.id, key, value, context=ctx)

    # -- what phones and services ask for -------------------------------------------------

    async def async_notify(
        self,
        household_id: str,
        text: str,
        *,
        title: str | None = None,
        level: str = "info",
        context: Context | None = None,
    ) -> Any:
        """Show a message on the household's TV (the overlay)."""
        tv = self._require_tv(household_id)
        command: dict[str, Any] = {"action": "show", "text": text, "level": level}
        if title:
            command["title"] = title
        return await self._send(tv, "notify", command, context)

    async def async_clear(self, household_id: str, *, context: Context | None = None) -> Any:
        return await self._send(self._require_tv(household_id), "notify", {"action": "clear"}, context)

    async def async_play(
        self,
        household_id: str,
        *,
        url: str | None = None,
        title: str | None = None,
        lcn: int | None = None,
        channel: dict[str, Any] | None = None,
        context: Context | None = None,
    ) -> Any:
        """Play a stream (`url`) or tune a channel (`lcn` or an OIPF `channel` record) on the TV."""
        tv = self._require_tv(household_id)
        if url is not None:
            command: dict[str, Any] = {"action": "play", "url": url}
            if title:
                command["title"] = title
            return await self._send(tv, "media", command, context)
        if lcn is not None:
            return await self._send(tv, "channel", {"action": "tune", "lcn": lcn}, context)
        if channel is not None:
            return await self._send(tv, "channel", {"action": "tune", "channel": channel}, context)
        raise ValueError("say what to play: a 'url', a channel number 'lcn' or a 'channel' record")

    async def async_open(
        self, household_id: str, *, url: str | None = None, context: Context | None = None
    ) -> Any:
        """Open a web page on the TV; without `url`, the household's Linli TV portal."""
        tv = self._require_tv(household_id)
        command: dict[str, Any] = {"action": "open"}
        if url is None and self.tv_link is not None:
            url = self.tv_link(household_id)  # the box opens /tv already paired to its household
        if url is not None:
            command["url"] = url
        return await self._send(tv, "portal", command, context)

    async def async_announce(self, announcement: dict[str, Any], households: set[str] | None) -> int:
        """Show an announcement on the TV of each household it is for (None: every one); calm.

        Best effort: a home without a box, or a box that is off, is skipped (the TV page and the
        phones have the announcement too). Returns how many boxes showed it.
        """
        assert self._api is not None
        targets = sorted(self._api.registry.households if households is None else households)
        level = "warning" if announcement.get("kind") == "emergency" else "info"
        title = str(announcement.get("title") or "")[:100]
        text = str(announcement.get("body") or title)[:500]
        shown = 0
        for household in targets:
            if self.tv(household) is None:
                continue
            context = Context(household=household, origin=f"announcement:{announcement.get('id')}")
            try:
                await self.async_notify(household, text, title=title or None, level=level, context=context)
                shown += 1
            except CommandError as exc:
                _LOGGER.debug("announcement not shown on the TV of %s: %s", household, exc)
        return shown

    async def async_show_alert(
        self, tv: Device, alert: dict[str, Any], *, context: Context | None = None
    ) -> Any:
        """The alert as the TV's overlay, in the delivery's context (a child of the escalation step's)."""
        command = {
            "action": "show",
            "text": alert_text(alert),
            "title": str(alert.get("title") or "")[:100] or "Alert",
            "level": overlay_level(alert),
        }
        if isinstance(alert.get("id"), int):
            command["alert_id"] = alert["id"]
        context = context or Context(household=tv.household_id, origin=f"alert:{alert.get('id')}")
        result = await self._send(tv, "notify", command, context)
        if isinstance(alert.get("id"), int):
            self._showing[tv.household_id] = alert["id"]
        return result

    async def async_withdraw_alert(self, household: str, alert_id: Any, *, context: Context) -> None:
        """Clear the overlay if it is this alert's (best effort: a box that is off has nothing on)."""
        if self._showing.get(household) != alert_id:
            return
        self._showing.pop(household, None)
        try:
            await self.async_clear(household, context=context)
        except (CommandError, UnavailableError) as exc:
            _LOGGER.debug("overlay of household %s not cleared: %s", household, exc)


#: The screens component, for typed lookup by its peers (the portal, casting).
SCREENS: ComponentKey[Screens] = ComponentKey("screens", Screens)
