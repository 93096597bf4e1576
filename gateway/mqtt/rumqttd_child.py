"""The embedded broker's own process: `python -m linli.gateway.mqtt.rumqttd_child CONFIG`.

rumqttd (compiled into the `iotcore` wheel) has no shutdown API and must not share the
gateway's event loop or lifetime, so it runs here until SIGTERM. Unlike iotcore's own
child entry point it does not exit when its parent does: a gateway that dies leaves the
broker, and the messages it holds for the gateway's session, for the next one.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise SystemExit("usage: python -m linli.gateway.mqtt.rumqttd_child CONFIG.toml")
    from iotcore.iotcore import IotCoreBroker

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # rumqttd reports routine per-packet spans at ERROR through its tracing bridge.
    logging.getLogger("rumqttd").setLevel(logging.CRITICAL)
    IotCoreBroker(config_path=argv[0]).run_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
