"""A throwaway PostgreSQL cluster for tests: initdb into a temp folder, loopback only.

Debian's `postgresql` package puts its programs under /usr/lib/postgresql/<version>/bin
(`.ci/run` installs it). PostgreSQL refuses to run as root, so as root the cluster
runs as the `postgres` user the package creates, in a folder that user owns.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.brokers import free_port, wait_listening
from tests.infrastructure import missing


def pg_bin() -> Path | None:
    """The folder holding initdb/pg_ctl: on PATH, else Debian's newest version."""
    found = shutil.which("pg_ctl")
    if found and shutil.which("initdb"):
        return Path(found).parent
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), key=lambda p: int(p.parent.parent.name)
    )
    return versions[-1].parent if versions else None


class PostgresCluster:
    """One cluster on a free 127.0.0.1 port; its unix socket stays in its own folder."""

    def __init__(self, *, durable: bool = False) -> None:
        """`durable`: fsync and synchronous commit on, as in production (benchmarks); off for tests."""
        binaries = pg_bin()
        if binaries is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql")
        self.bin = binaries
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="linli-pg-"))
        self.data = self.folder / "data"
        self.user = "linli"
        self.durable = durable
        self._as: list[str] = []
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root needs runuser to start PostgreSQL as 'postgres'")
            try:
                import pwd

                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("no 'postgres' user: apt-get install postgresql creates it") from None
            os.chown(self.folder, pw.pw_uid, pw.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        result = subprocess.run([*self._as, *args], capture_output=True, text=True, check=False, timeout=120)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.folder / "log"),
            "-w",
            "start",
        )
        wait_listening(self.port)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    """One cluster for the whole session (each test gets its own database)."""
    try:
        cluster = PostgresCluster()
    except RuntimeError as exc:
        missing("PostgreSQL (initdb, pg_ctl)", str(exc))
    cluster.start()
    yield cluster
    cluster.stop()


_databases = iter(range(1, 1_000_000))


@pytest.fixture
async def region_dsn(postgres_cluster: PostgresCluster) -> str:
    """A fresh, empty database for one test."""
    import asyncpg

    name = f"region_{next(_databases)}"
    conn = await asyncpg.connect(postgres_cluster.dsn())
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return postgres_cluster.dsn(name)
