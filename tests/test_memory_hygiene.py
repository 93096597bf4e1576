"""What the network feeds the gateway is bounded: a flood leaves no lasting growth (device plane issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_after_a_flood_of_junk_the_gateway_returns_to_within_ten_percent_of_its_memory() -> None:
    # given a gateway with 20 homes, in its own process, measured at rest
    # when 30,000 malformed payloads, 2,000 hostile topics and 500 junk connections arrive
    probe = subprocess.run(
        [sys.executable, "-m", "tests.memory_probe"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=True,
    )
    result = json.loads(probe.stdout.strip().splitlines()[-1])
    # then it took the flood in (nothing was simply not delivered) and kept only bounded traces
    assert result["received"] >= 30_000, result
    assert result["inbox_items"] <= 500, result
    # and once its upkeep has run, its resident memory is back within 10% of where it was
    assert result["settled_mb"] <= 1.10 * result["baseline_mb"], result
