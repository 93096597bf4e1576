"""MQTT: the supervised link, the broker modes, and Linli's topic layout."""
