"""What a box must report after a command, and the kinds derived from the others.

A command is confirmed only when the state read back from the box shows its
effect: the same rule for every operator, so "done" means the same everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from linli.gateway.stb.channels import same_channel

Expectation = Callable[[Any], bool]


def expected(kind: str, command: dict[str, Any]) -> Expectation:
    """A predicate on the kind's state that holds once `command` (resolved) took effect."""
    action = command["action"]
    if kind == "power":
        on = action == "on"
        return lambda state: bool(state) and state.get("on") is on
    if kind == "channel":
        target = command["channel"]  # the fleet resolves lcn / up / down to a record
        return lambda state: same_channel(state, target)
    if kind == "app":
        app = command["app"]
        if action == "launch":
            return lambda state: bool(state) and state.get("running") == app
        return lambda state: bool(state) and state.get("running") != app
    if kind == "media":
        if action == "play":
            url = command["url"]
            return lambda state: bool(state) and state.get("state") == "playing" and state.get("url") == url
        wanted = {"pause": "paused", "resume": "playing", "stop": "stopped"}[action]
        return lambda state: bool(state) and state.get("state") == wanted
    if kind == "volume":
        if action == "set":
            level = command["level"]
            return lambda state: bool(state) and state.get("level") == level
        muted = command["muted"]
        return lambda state: bool(state) and state.get("muted") is muted
    if kind == "notify":
        if action == "show":
            text = command["text"]
            return lambda state: bool(state) and state.get("text") == text
        return lambda state: bool(state) and state.get("text") is None
    if kind == "portal":
        if action == "open":
            url = command["url"]
            return lambda state: bool(state) and state.get("open") is True and state.get("url") == url
        return lambda state: bool(state) and state.get("open") is False
    return lambda state: True


def now_playing(states: dict[str, Any]) -> dict[str, Any]:
    """What the screen shows: a film or stream over a channel, a channel over an app."""
    media = states.get("media") or {}
    if media.get("state") in ("playing", "paused") and media.get("url"):
        return {"source": "media", "title": media.get("title"), "channel": None, "url": media["url"]}
    channel = states.get("channel")
    if channel:
        return {"source": "channel", "title": channel["name"], "channel": channel, "url": None}
    app = states.get("app") or {}
    if app.get("running"):
        return {"source": "app", "title": app["running"], "channel": None, "url": app.get("url")}
    return {"source": "none", "title": None, "channel": None, "url": None}
