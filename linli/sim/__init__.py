"""A simulated community: households whose home hubs publish real MQTT telemetry."""
