"""The discovery sources: components that hear devices announce themselves, for the core's inbox.

Three protocols, three components, each feeding the inbox the core's `discovery`
component keeps (linli.gateway.discovery): MQTT announcements (Home Assistant's,
Tasmota's own and Linli's native, `mqtt.py`), mDNS/DNS-SD (`zeroconf.py`) and
SSDP with UPnP descriptions (`ssdp.py`). Which of them listen is the
`discovery.sources` setting; `sources.py` holds the components.

Parsing is apart from I/O: `schemas.py`, `ha_abbreviations.py` and `tasmota.py`
read MQTT announcements, `upnp_description.py` reads UPnP descriptions; the
protocol modules hold the sockets and subscriptions.
"""
