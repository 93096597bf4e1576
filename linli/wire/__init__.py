"""The uplink's wire format: what a gateway and its region say to each other over MQTT.

Both sides depend on this package and on nothing else of Linli, so the gateway's
uplink (`linli.gateway.uplink`) and the regional application (`linli.region`)
cannot drift apart, and neither needs the other's code to speak to it.

Cut along parse | transport, as python-zeroconf cuts `_protocol` from its I/O:

* `topics`   — the topic layout, up and down; `parse_up` reads a topic back.
* `messages` — the upward envelope and what each kind carries; `encode` / `decode`.
* `signing`  — Ed25519 on what the region sends down (`Signer`, `Verifier`).
* `downlink` — a downlink announcement's shape, its limits, and the checks a
  gateway makes before trusting one. Bytes in, an `Announcement` out.
* `client`   — the only module doing I/O: the MQTT 5 client both sides connect
  to the regional broker with (reason-coded publishes, manual acks), and its
  TLS context.
"""
