"""Carrier IPTV set-top boxes over RDK Thunder JSON-RPC (plus DIAL where the box has it)."""
