"""What the network feeds the gateway is bounded: a flood leaves no lasting growth (device plane issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
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


def test_the_heap_is_trimmed_after_a_burst_not_every_minute() -> None:
    from linli.gateway.supervision import _resident_bytes, burst_to_give_back

    mib = 1 << 20
    # the first look trims (nothing to compare with), and so does one that cannot read the size
    assert burst_to_give_back(150 * mib, None) and burst_to_give_back(None, 150 * mib)
    # a steady gateway is left alone (each trim holds the allocator's lock: a pause for everyone)
    assert not burst_to_give_back(150 * mib, 150 * mib) and not burst_to_give_back(156 * mib, 150 * mib)
    # a burst (a flood of junk, a backlog) is given back
    assert burst_to_give_back(312 * mib, 150 * mib)
    # and the size is read from the system on Linux
    assert (_resident_bytes() or 0) > 10 * mib
