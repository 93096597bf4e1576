"""Live events over one WebSocket (`/api/v1/ws`), and the `ws` alert delivery channel."""

from linli.portal.live.channel import WsChannel
from linli.portal.live.hub import Connection, Hub

__all__ = ["Connection", "Hub", "WsChannel"]
