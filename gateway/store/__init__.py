"""Persistence: one SQLite file in WAL mode, migrated per owner, written by one thread."""

from linli.gateway.store.migrations import Migration, SchemaTooNewError, migrate, schema_version, table_exists
from linli.gateway.store.retention import async_apply_retention
from linli.gateway.store.store import Store

__all__ = [
    "Migration",
    "SchemaTooNewError",
    "Store",
    "async_apply_retention",
    "migrate",
    "schema_version",
    "table_exists",
]
