"""The UPnP toolkit the set-top-box adapters share: SOAP actions, GENA events, DIAL.

Not an adapter (it has no manifest.json): the protocol pieces that both operators'
adapters and the simulated boxes speak. The box contract itself (what a driver is)
stays in the core, in `linli.gateway.stb`.
"""
