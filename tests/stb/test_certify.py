"""The conformance kit: both operators' adapters pass it against their simulated boxes, alike."""

from __future__ import annotations

import json
from pathlib import Path

from adapters.certify.report import Result
from adapters.certify.run import async_certify
from gateway import cli


async def test_both_operator_adapters_are_certified_with_identical_results(tmp_path: Path) -> None:
    # given both operators' adapters and their simulated boxes
    # when the kit certifies each
    carrier = await async_certify("stb_carrier", json_path=tmp_path / "carrier.json")
    broadcast = await async_certify("stb_broadcast", json_path=tmp_path / "broadcast.json")
    # then both pass every check
    assert carrier.certified, carrier.table()
    assert broadcast.certified, broadcast.table()
    # and, for every capability both declare, check for check the same outcome
    shared = set(carrier.provides) & set(broadcast.provides)
    assert shared >= {"power", "channel", "media", "volume", "notify", "portal", "app", "now_playing", "meta"}

    def outcomes(report):  # type: ignore[no-untyped-def]
        return {c.key: c.result for c in report.checks if c.capability in shared}

    assert outcomes(carrier) == outcomes(broadcast)
    # a kind only one declares is, on the other, the uniform not_supported
    keys = [c for c in broadcast.checks if c.capability == "keys"]
    assert [c.result for c in keys] == [Result.NOT_DECLARED]
    # every command was timed, and the JSON report says the same as the table
    report = json.loads((tmp_path / "broadcast.json").read_text())
    assert report["summary"]["certified"] is True
    assert report["summary"]["latency"]["commands"] >= 25
    assert all(
        c["latency_ms"] is not None for c in report["checks"] if c["group"] == "contract" and c["command"]
    )


async def test_unknown_adapter_is_not_certified() -> None:
    report = await async_certify("no_such_adapter")
    assert not report.certified
    assert "no adapter 'no_such_adapter'" in report.checks[0].detail


def test_linli_certify_prints_the_table_and_writes_the_report(tmp_path: Path, capsys) -> None:
    # when an operator runs the kit from the command line against the simulated box
    status = cli.main(["certify", "stb_broadcast", "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    # then it exits 0, shows each check with its latency, and writes the JSON report
    assert status == 0, out
    assert "CERTIFIED" in out and "NOT CERTIFIED" not in out
    assert "address that never answers" in out
    assert json.loads((tmp_path / "report.json").read_text())["adapter"] == "stb_broadcast"
