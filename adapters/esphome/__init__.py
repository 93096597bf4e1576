"""ESPHome nodes, adopted from their mDNS announcement through the native API (aioesphomeapi)."""
