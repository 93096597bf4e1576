"""Two-way cable (DVB-C) set-top boxes over DIAL and UPnP/DLNA MediaRenderer (async-upnp-client)."""
