"""Certification results: one `Check` per thing verified, shown as a table and written as JSON.

The JSON report's format is documented by `report.schema.json` next to this file (FORMAT names
its version). `linli certify` keeps each adapter's last report as <data_dir>/certifications/<id>.json,
where the adapters API (portal/adapters_api.py) reads it."""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import orjson

FORMAT: Final = "linli-certification/1"
SCHEMA_PATH: Final = Path(__file__).with_name("report.schema.json")


class Result(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    NOT_DECLARED = "not_declared"  # a kind the adapter does not provide: must be uniformly not_supported
    SKIP = "skip"
    # it works only partly on this box (a cable box without the operator's app): never a pass
    DEGRADED = "degraded"


@dataclass(slots=True, kw_only=True)
class Check:
    group: str
    name: str
    result: Result
    capability: str | None = None
    command: Any = None
    latency_ms: float | None = None
    detail: str = ""

    @property
    def key(self) -> tuple[str, str | None, str]:
        return (self.group, self.capability, self.name)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["result"] = self.result.value
        return data


@dataclass(slots=True, kw_only=True)
class Report:
    adapter: str
    version: str | None = None
    kind: str | None = None
    provides: list[str] = field(default_factory=list)
    target: str | None = None
    simulated: bool = False
    started_at: float = field(default_factory=time.time)
    duration_s: float = 0.0
    checks: list[Check] = field(default_factory=list)

    def add(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.result is Result.FAIL]

    @property
    def certified(self) -> bool:
        return bool(self.checks) and not self.failed

    def summary(self) -> dict[str, Any]:
        counts = {result.value: 0 for result in Result}
        for check in self.checks:
            counts[check.result.value] += 1
        latencies = sorted(c.latency_ms for c in self.checks if c.latency_ms is not None)
        timing = {}
        if latencies:
            timing = {
                "commands": len(latencies),
                "p50_ms": round(statistics.median(latencies), 2),
                "max_ms": round(latencies[-1], 2),
            }
        return {**counts, "certified": self.certified, "latency": timing}

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "adapter": self.adapter,
            "version": self.version,
            "kind": self.kind,
            "provides": self.provides,
            "target": self.target,
            "simulated": self.simulated,
            "started_at": self.started_at,
            "duration_s": round(self.duration_s, 3),
            "summary": self.summary(),
            "checks": [c.as_dict() for c in self.checks],
        }

    def write_json(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2) + b"\n")

    def table(self) -> str:
        head = f"linli certify {self.adapter} {self.version or '?'} ({self.kind or '?'})"
        if self.target:
            head += f" — {'simulated box' if self.simulated else 'box'} at {self.target}"
        rows = [("GROUP", "CAPABILITY", "CHECK", "RESULT", "MS", "DETAIL")]
        for c in self.checks:
            rows.append(
                (
                    c.group,
                    c.capability or "-",
                    c.name,
                    c.result.value,
                    f"{c.latency_ms:.1f}" if c.latency_ms is not None else "",
                    c.detail[:90],
                )
            )
        widths = [max(len(r[i]) for r in rows) for i in range(5)]
        lines = [head, ""]
        for row in rows:
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:5])) + "  " + row[5])
        s = self.summary()
        timing = s["latency"]
        lines.append("")
        lines.append(
            f"{s['pass']} passed, {s['fail']} failed, "
            f"{s['not_declared']} not declared (uniform not_supported), "
            f"{s['skip']} skipped"
            + (
                f"; {timing['commands']} commands, p50 {timing['p50_ms']} ms, max {timing['max_ms']} ms"
                if timing
                else ""
            )
            + f" in {self.duration_s:.1f} s — {'CERTIFIED' if self.certified else 'NOT CERTIFIED'}"
        )
        return "\n".join(lines)
