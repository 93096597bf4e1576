"""Persistence: one SQLite file in WAL mode, migrated on start, written by one thread."""

from linli.gateway.store.migrations import LATEST as SCHEMA_VERSION
from linli.gateway.store.migrations import migrate, schema_version
from linli.gateway.store.retention import async_apply_retention
from linli.gateway.store.store import Store

__all__ = ["SCHEMA_VERSION", "Store", "async_apply_retention", "migrate", "schema_version"]
