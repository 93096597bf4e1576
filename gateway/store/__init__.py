"""Persistence: one SQLite file in WAL mode, migrated on start, written by one thread."""

from gateway.store.migrations import LATEST as SCHEMA_VERSION
from gateway.store.migrations import migrate, schema_version
from gateway.store.retention import async_apply_retention
from gateway.store.store import Store

__all__ = ["SCHEMA_VERSION", "Store", "async_apply_retention", "migrate", "schema_version"]
