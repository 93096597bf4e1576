"""The delivery ledger: every delivery a regional consumer receives, counted as delivered.

PostgreSQL cannot tell how a message arrived: the events table's key makes a second
row of one message impossible, and the rows carry the numbers the gateway assigned,
not the order they came in. So each consumer keeps a ledger beside it, fed once per
delivery with the gateway, the gateway's own delivery sequence number (the envelope's
`seq`, linli.wire.messages) and the time the consumer took the delivery up:

    ledger.record_batch([(gateway, seq, arrived_at), ...])   # every delivery, before it is applied
    ledger.absorbed([(gateway, seq), ...])       # those the idempotent upsert left unchanged

and counts, per gateway and in total:

- deliveries  every message received, redeliveries included;
- distinct    the different (gateway, seq) among them;
- duplicates  deliveries of a (gateway, seq) already received (deliveries - distinct);
- absorbed    deliveries the upsert left unchanged (no new row). Every duplicate should
              be absorbed; a duplicate that is not was the first to commit (its earlier
              copy's batch never did: the consumer died before the commit);
- inversions  first deliveries that arrived after a delivery of the same gateway with
              a higher seq (a duplicate is a duplicate, never also an inversion).

Nothing here knows the broker: the MQTT consumer and the JetStream one feed the same
calls. A consumer process sees only its share of a consumer group, so each process
also appends its deliveries to a log (`log_path`), and `replay` merges the logs of all
processes by arrival time into one region-wide ledger — what a drill reads. Arrival
times are the consumers' wall clocks when each delivery was received (MQTT) or its batch
was pulled (JetStream): within one process the order is exact; across processes it is as
good as the clocks (one machine's in the bench).

Memory and disk stay bounded: a gateway's seen set keeps the last `window` sequence
numbers below its highest (a delivery older than that can only be a redelivery, and is
counted as one), and a log is rotated at `rotate_bytes` (the previous one is kept).
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

import orjson

WINDOW: Final = 1 << 16
ROTATE_BYTES: Final = 64 << 20
_DELIVERED: Final = "d"
_ABSORBED: Final = "a"


@dataclass(slots=True)
class Counts:
    deliveries: int = 0
    distinct: int = 0
    duplicates: int = 0
    absorbed: int = 0
    inversions: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(slots=True)
class _Stream:
    """One gateway's deliveries so far."""

    highest: int | None = None
    seen: set[int] = field(default_factory=set)
    counts: Counts = field(default_factory=Counts)


def log_path(folder: Path, client_id: str) -> Path:
    """Where the consumer `client_id` logs its deliveries (one file per process)."""
    return folder / "deliveries" / f"{client_id}.jsonl"


class Ledger:
    """Counts deliveries as they arrive; with `log`, also appends each to that file."""

    def __init__(self, log: Path | None = None, *, window: int = WINDOW, rotate_bytes: int = ROTATE_BYTES):
        self.window = window
        self.rotate_bytes = rotate_bytes
        self._streams: dict[str, _Stream] = {}
        self._log = log
        self._fd: int | None = None
        self._written = 0
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            self._open()

    # -- feeding ------------------------------------------------------------------------

    def record(self, gateway: str, seq: int, arrived_at: float) -> bool:
        """One delivery of `gateway`'s message `seq`; True if it is a duplicate."""
        return self.record_batch([(gateway, seq, arrived_at)]) == 1

    def record_batch(self, deliveries: Iterable[tuple[str, int, float]]) -> int:
        """A batch's deliveries (gateway, seq, arrived_at), logged in one write; how many were duplicates."""
        lines, duplicates = [], 0
        for gateway, seq, arrived_at in deliveries:
            lines.append(orjson.dumps([_DELIVERED, arrived_at, gateway, seq]))
            duplicates += self._count(gateway, seq)
        self._write(lines)
        return duplicates

    def absorbed(self, deliveries: Iterable[tuple[str, int]]) -> int:
        """Deliveries (gateway, seq) whose upsert changed no row, logged in one write; how many."""
        lines = []
        for gateway, seq in deliveries:
            lines.append(orjson.dumps([_ABSORBED, gateway, seq]))
            self._stream(gateway).counts.absorbed += 1
        self._write(lines)
        return len(lines)

    def _stream(self, gateway: str) -> _Stream:
        stream = self._streams.get(gateway)
        if stream is None:
            stream = self._streams[gateway] = _Stream()
        return stream

    def _count(self, gateway: str, seq: int) -> bool:
        stream = self._stream(gateway)
        counts = stream.counts
        counts.deliveries += 1
        highest = stream.highest
        if seq in stream.seen or (highest is not None and seq <= highest - self.window):
            counts.duplicates += 1
            return True
        counts.distinct += 1
        stream.seen.add(seq)
        if highest is None or seq > highest:
            stream.highest = highest = seq
            if len(stream.seen) > 2 * self.window:
                floor = highest - self.window
                stream.seen = {s for s in stream.seen if s > floor}
        else:
            counts.inversions += 1
        return False

    # -- reading ------------------------------------------------------------------------

    def counts(self) -> Counts:
        """All gateways together."""
        total = Counts()
        for stream in self._streams.values():
            total.add(stream.counts)
        return total

    def gateways(self) -> dict[str, Counts]:
        """Each gateway's counts."""
        return {gateway: stream.counts for gateway, stream in self._streams.items()}

    def stats(self) -> dict[str, Any]:
        return {**self.counts().as_dict(), "gateways": len(self._streams)}

    # -- the log ------------------------------------------------------------------------

    def _open(self) -> None:
        assert self._log is not None
        # Unbuffered appends, a batch at a time: a consumer killed mid-batch has already logged what
        # it received.
        self._fd = os.open(self._log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        self._written = os.fstat(self._fd).st_size

    def _write(self, lines: list[bytes]) -> None:
        # One append per batch, not per delivery: this runs on the consumer's event loop, in the
        # ingest path (a few KB into the page cache, before the batch is applied).
        if self._fd is None or not lines:
            return
        if self._written >= self.rotate_bytes:
            assert self._log is not None
            os.close(self._fd)
            os.replace(self._log, self._log.with_name(self._log.name + ".1"))
            self._open()
        self._written += os.write(self._fd, b"\n".join(lines) + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _entries(path: Path, rank: int) -> Iterator[tuple[float, int, int, list[Any]]]:
    """A log's entries, each keyed (arrival, process rank, line): an absorption sorts after its delivery."""
    arrived = 0.0
    line_no = 0
    for part in (path.with_name(path.name + ".1"), path):
        if not part.exists():
            continue
        with part.open("rb") as lines:
            for raw in lines:
                try:
                    entry = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    continue  # the last line of a process killed mid-write
                if entry[0] == _DELIVERED:
                    arrived = float(entry[1])
                line_no += 1
                yield arrived, rank, line_no, entry


def replay(paths: Iterable[Path]) -> Ledger:
    """One ledger of several consumer processes' logs, their deliveries merged by arrival time."""
    ledger = Ledger()
    # Each log is in its own arrival order already: merge them, do not sort them.
    merged = heapq.merge(*(_entries(p, rank) for rank, p in enumerate(sorted(paths))))
    for _, _, _, entry in merged:
        if entry[0] == _DELIVERED:
            ledger._count(str(entry[2]), int(entry[3]))
        elif entry[0] == _ABSORBED:
            ledger._stream(str(entry[1])).counts.absorbed += 1
    return ledger


def logs(folder: Path, prefix: str = "") -> list[Path]:
    """The delivery logs under `folder` (a region's data_dir) of consumers whose id starts with `prefix`."""
    return sorted((folder / "deliveries").glob(f"{prefix}*.jsonl"))
