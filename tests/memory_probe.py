"""A gateway flooded from outside, in a process of its own: prints its resident memory as JSON.

    python -m tests.memory_probe

Used by tests/test_memory_hygiene.py. The gateway runs as `linli run` would (embedded broker,
MQTT devices, discovery, alerts, elder care, the portal) with 20 demo homes; a separate
process floods it the way an outside audit did: 30,000 malformed payloads on device and
discovery topics, 2,000 hostile topics, and 500 junk TCP connections to the broker and the
portal. Resident memory is read before, after the flood has been taken in, and once the
gateway has had its minute of upkeep.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

_FLOOD = """
import os, random, socket, sys, time
import paho.mqtt.client as mqtt
port, portal = int(sys.argv[1]), int(sys.argv[2])
topics = sys.argv[3:]
rng = random.Random(7)
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="flooder")
c.max_queued_messages_set(0)
c.connect("127.0.0.1", port)
c.loop_start()
for i in range(30000):
    topic = rng.choice(topics) if i % 3 else f"homeassistant/sensor/x{i % 5000}/config"
    c.publish(topic, os.urandom(rng.randint(1, 2000)), qos=0)
    if i % 500 == 0:
        time.sleep(0.02)
for i in range(2000):
    c.publish(f"linli/v1/h{rng.randint(0, 10**9)}/{'x' * rng.randint(1, 200)}{i}", b'{"sos":"pressed"}')
    c.publish(f"homeassistant/binary_sensor/{'n' * 100}{i}/o{i}/config", b'{"name": "' + b"A" * 5000 + b'"}')
    if i % 200 == 0:
        time.sleep(0.02)
time.sleep(1)
c.loop_stop()
c.disconnect()
for i in range(500):
    for target in (port, portal):
        try:
            s = socket.create_connection(("127.0.0.1", target), timeout=2)
            s.send(os.urandom(100))
            s.close()
        except OSError:
            pass
"""


def rss_mb() -> float:
    for line in Path(f"/proc/{os.getpid()}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def main() -> None:
    from linli.gateway import supervision
    from linli.gateway.config import load_config
    from linli.gateway.runtime import Gateway
    from linli.sim.layout import layout
    from tests.brokers import free_port

    supervision.MEMORY_TRIM_S = 3.0  # the gateway's minute of upkeep, shortened for the test
    folder = Path(tempfile.mkdtemp(prefix="linli-memory-"))
    port, portal = free_port(), free_port()
    config = load_config(
        None,
        environ={},
        overrides={
            "data_dir": str(folder),
            "gateway_id": "memory-probe",
            "log_level": "ERROR",
            "mqtt": {"broker": "embedded", "port": port},
            "portal": {"enabled": True, "port": portal},
            "discovery": {"sources": ["mqtt"]},
            "components": [
                "linli.adapters.mqtt_device:MqttDeviceAdapter",
                "linli.gateway.discovery:Discovery",
                "linli.adapters.discovery.sources:MqttDiscoverySource",
                "linli.adapters.discovery.sources:ZeroconfSource",
                "linli.adapters.discovery.sources:SsdpSource",
                "linli.services.alerts:AlertEngine",
                "linli.services.eldercare:ElderCare",
                "linli.portal.app:Portal",
            ],
        },
    )
    import logging

    logging.disable(logging.WARNING)  # the flood is meant to be refused; its log is not the subject
    gateway = Gateway(config)
    await gateway.async_start()
    data = layout(20)
    await gateway.registry.async_import(**data)
    gc.collect()
    await asyncio.sleep(5)
    baseline = rss_mb()
    topics = [d["topic"] for d in data["devices"]]
    flood = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _FLOOD, str(port), str(portal), *topics
    )
    await flood.wait()
    received = -1
    while gateway.mqtt.received != received:  # until the last of the flood has been handled
        received = gateway.mqtt.received
        await asyncio.sleep(1.0)
    flooded = rss_mb()
    await asyncio.sleep(8)  # upkeep: the inbox written, freed heap handed back
    settled = rss_mb()
    inbox = gateway.components["discovery"].inbox
    result = {
        "baseline_mb": baseline,
        "flooded_mb": flooded,
        "settled_mb": settled,
        "received": gateway.mqtt.received,
        "inbox_items": len(inbox.items),
        "rejected_inputs": inbox.rejected_inputs,
    }
    await gateway.async_stop()
    print(json.dumps(result))
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
