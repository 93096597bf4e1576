"""The conformance kit: both operators' adapters pass it against their simulated boxes, alike —
and an adapter that only pretends gets the failing verdicts it deserves."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator

from linli import cli
from linli.adapters.stb_carrier.adapter import CarrierAdapter
from linli.adapters.stb_carrier.driver import ThunderDriver
from linli.certify.report import SCHEMA_PATH, Report, Result
from linli.certify.run import async_certify, certification_path
from linli.gateway.plugins import AdapterEntry
from linli.gateway.plugins.api import AdapterApi
from linli.gateway.plugins.manifest import build_manifest
from linli.gateway.stb.driver import BoxEndpoint, DriverContext
from linli.gateway.stb.fleet import BoxFleet
from linli.sim.thunder_box import ThunderBox
from tests.portal_accounts import add_account, api_token

pytestmark = pytest.mark.slow  # each runs the conformance kit's whole check list against live boxes

REPORT_SCHEMA = Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
CARRIER_MANIFEST = Path(__file__).parents[2] / "adapters" / "stb_carrier" / "manifest.json"


def _valid_report(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    errors = [f"{e.json_path}: {e.message}" for e in REPORT_SCHEMA.iter_errors(data)]
    assert not errors, errors[:5]
    return data  # type: ignore[no-any-return]


def _failed(report: Report) -> set[tuple[str, str | None, str]]:
    return {c.key for c in report.checks if c.result is Result.FAIL}


async def test_both_operator_adapters_are_certified_with_identical_results(tmp_path: Path) -> None:
    # given both operators' adapters and their simulated boxes
    # when the kit certifies each
    carrier = await async_certify("stb_carrier", json_path=tmp_path / "carrier.json")
    broadcast = await async_certify("stb_broadcast", json_path=tmp_path / "broadcast.json")
    # then both pass every check
    assert carrier.certified, carrier.table()
    assert broadcast.certified, broadcast.table()
    # and they declare the same capabilities, keys included: equal terms
    assert set(carrier.provides) == set(broadcast.provides)
    assert "keys" in broadcast.provides
    # and every check has the same outcome for both, none of them skipped or not declared
    assert {c.key: c.result for c in carrier.checks} == {c.key: c.result for c in broadcast.checks}
    assert {c.result for c in broadcast.checks} == {Result.PASS}
    # and every contract verb was seen on the box itself, not taken from the adapter's word
    verbs = [c for c in broadcast.checks if c.group == "contract" and c.command]
    assert len(verbs) >= 22 and all(c.detail == "seen on the box" for c in verbs)
    # and the errors were the box's own, injected into each operator's protocol
    errors = {c.name: c.detail for c in carrier.checks + broadcast.checks if c.group == "errors"}
    assert "JSON-RPC error" in next(c.detail for c in carrier.checks if c.name == "the box answers an error")
    assert "UPnP error" in next(c.detail for c in broadcast.checks if c.name == "the box answers an error")
    assert len(errors) == 4
    # every command was timed, and the JSON report follows its documented schema
    report = _valid_report(tmp_path / "broadcast.json")
    _valid_report(tmp_path / "carrier.json")
    assert report["summary"]["certified"] is True
    assert report["summary"]["latency"]["commands"] >= 30
    assert all(
        c["latency_ms"] is not None for c in report["checks"] if c["group"] == "contract" and c["command"]
    )


async def test_unknown_adapter_is_not_certified() -> None:
    report = await async_certify("no_such_adapter")
    assert not report.certified
    assert "no adapter 'no_such_adapter'" in report.checks[0].detail


def test_linli_certify_prints_the_table_and_keeps_the_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a gateway whose data lives in tmp_path
    monkeypatch.setenv("LINLI_DATA_DIR", str(tmp_path / "data"))
    # when an operator runs the kit from the command line against the simulated box
    status = cli.main(["certify", "stb_broadcast", "--json", str(tmp_path / "report.json")])
    out = capsys.readouterr().out
    # then it exits 0, shows each check with its latency, and writes the JSON report
    assert status == 0, out
    assert "CERTIFIED" in out and "NOT CERTIFIED" not in out
    assert "address that never answers" in out and "stop leaves nothing behind" in out
    assert _valid_report(tmp_path / "report.json")["adapter"] == "stb_broadcast"
    # and keeps it as the adapter's last certification, where the gateway shows it
    kept = _valid_report(certification_path(tmp_path / "data", "stb_broadcast"))
    assert kept["summary"]["certified"] is True


# -- adapters that pretend ---------------------------------------------------------------------


class _LyingDriver(ThunderDriver):
    """Says yes to volume and keys and does nothing; reads back the volume it was told."""

    def __init__(self, endpoint: BoxEndpoint, context: DriverContext) -> None:
        super().__init__(endpoint, context)
        self._told: dict[str, Any] = {}

    async def async_execute(self, kind: str, command: dict[str, Any]) -> None:
        if kind == "keys":
            return  # ignored
        if kind == "volume":
            self._told["level" if command["action"] == "set" else "muted"] = command.get(
                "level", command.get("muted")
            )
            return  # ignored, but remembered to be read back
        await super().async_execute(kind, command)

    async def async_read(self, kinds: frozenset[str]) -> dict[str, Any]:
        values = await super().async_read(kinds)
        if "volume" in values:
            values["volume"] = {**values["volume"], **self._told}
        return values


class LyingAdapter(CarrierAdapter):
    """A carrier adapter whose driver only pretends to change the volume and press keys."""

    async def async_start(self, api: AdapterApi) -> None:
        self.fleet = BoxFleet(api, driver_factory=_LyingDriver, profile_id="rdk/thunder-stb")
        await self.fleet.async_start()


_FORGOTTEN: list[Any] = []  # what the leaky adapter forgets, kept alive as a real leak would be


class LeakyAdapter(CarrierAdapter):
    """A carrier adapter that leaves a task and an open file behind each time it runs."""

    async def async_start(self, api: AdapterApi) -> None:
        await super().async_start(api)
        _FORGOTTEN.append(asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten"))
        _FORGOTTEN.append(open(os.devnull, "rb"))


def _entry(adapter_id: str, cls: str) -> AdapterEntry:
    raw = json.loads(CARRIER_MANIFEST.read_text())
    raw.pop("$schema", None)
    raw.update(id=adapter_id, name=f"Deliberately broken ({cls})", entry=f"tests.stb.test_certify:{cls}")
    return AdapterEntry(
        id=adapter_id, module="tests.stb.test_certify", sources=["test"], manifest=build_manifest(raw)
    )


_LYING: dict[str, Report] = {}


async def lying_report() -> Report:
    """The lying adapter's certification, run once for the tests that read it (it takes ~15 s)."""
    if "report" not in _LYING:
        _LYING["report"] = await async_certify("stb_lying", entry=_entry("stb_lying", "LyingAdapter"))
    return _LYING["report"]


async def test_an_adapter_that_ignores_commands_fails_exactly_those_checks(tmp_path: Path) -> None:
    # given an adapter whose volume and keys do nothing on the box, though it reports success
    # when the kit certifies it against the simulated box
    report = await lying_report()
    # then it is not certified: every volume verb and every key fails, because the box shows nothing
    assert not report.certified
    failed = _failed(report)
    assert {name for group, kind, name in failed if group == "contract"} == {
        "set",
        "mute",
        "unmute",
        "two VOL_UP raise the box's volume by two",
        "two VOL_DOWN lower it again",
        "MUTE mutes the box",
        "MUTE again unmutes it",
    }
    detail = next(c.detail for c in report.checks if c.capability == "volume" and c.name == "set")
    assert "the box does not show it" in detail
    # and what it really does (channels, media, the overlay) still passes, checked the same way
    passed = {c.key for c in report.checks if c.result is Result.PASS}
    assert ("contract", "channel", "tune by number") in passed and ("contract", "notify", "show") in passed
    # and the report says so in its documented format
    report.write_json(tmp_path / "r.json")
    assert _valid_report(tmp_path / "r.json")["summary"]["certified"] is False


async def test_an_adapter_that_leaves_a_task_and_a_file_behind_fails_the_stop_check() -> None:
    # given an adapter that forgets a task and an open file each time it starts
    # when the kit certifies it
    report = await async_certify("stb_leaky", entry=_entry("stb_leaky", "LeakyAdapter"))
    # then stopping it is the one failing check, naming both
    assert _failed(report) == {("lifecycle", None, "stop leaves nothing behind")}
    detail = next(c.detail for c in report.checks if c.name == "stop leaves nothing behind")
    assert "forgotten" in detail and "/dev/null" in detail
    for thing in _FORGOTTEN:
        if isinstance(thing, asyncio.Task):
            thing.cancel()
        else:
            thing.close()


async def test_manage_shows_each_adapters_last_certification(make_gateway: Any) -> None:
    # given a gateway, and the lying adapter certified (and failed) into its data directory
    gateway = await make_gateway(
        components=["linli.portal.app:Portal", "linli.gateway.plugins.host:AdapterHost"],
        portal={"enabled": True},
        adapters={"only": ["stb_carrier"], "settings": {"stb_carrier": {"poll_s": 3600}}},
    )
    data_dir = Path(gateway.config["data_dir"])
    report = await lying_report()
    assert not report.certified
    report.write_json(certification_path(data_dir, "stb_lying"))  # as `linli certify` keeps it
    # and the carrier adapter's report kept under its own id, as `linli certify stb_carrier` would
    certification_path(data_dir, "stb_carrier").write_bytes(
        certification_path(data_dir, "stb_lying").read_bytes().replace(b'"stb_lying"', b'"stb_carrier"')
    )
    # when the property manager's console asks for the adapters
    url = gateway.components["portal"].url.rstrip("/")
    await add_account(gateway, "installer", "installer")
    auth = {"Authorization": f"Bearer {await api_token(gateway, 'installer')}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{url}/api/v1/adapters") as response:
            listed = {item["id"]: item for item in (await response.json())["items"]}
        async with http.get(f"{url}/api/v1/adapters/stb_carrier") as response:
            one = await response.json()
    # then the adapter carries its last certification: when, the verdict, and the failed checks by name
    shown = listed["stb_carrier"]["certification"]
    assert shown["certified"] is False and shown["at"] == report.started_at
    assert shown["counts"]["fail"] == len(report.failed) > 0
    assert "contract: volume set" in shown["failed"]
    assert one["certification"] == shown
    # and an adapter never certified says so (null), not a verdict
    assert all(item["certification"] is None for key, item in listed.items() if key != "stb_carrier")


async def test_a_live_box_is_certified_through_the_adapters_own_reads_and_says_what_it_skipped() -> None:
    # given a box the kit did not start (a live box, as far as the kit knows)
    box = ThunderBox(name="live-box")
    await box.async_start()
    try:
        # when it is certified at its address, without --power
        report = await async_certify("stb_carrier", target=box.url)
    finally:
        await box.async_stop()
    # then every verb is read back from the box through the adapter, and passes
    assert report.certified, report.table()
    verbs = [c for c in report.checks if c.group == "contract" and c.command]
    assert verbs and all(c.detail == "read back" for c in verbs)
    assert box.screen.volume != 20  # the box really was driven
    # and what cannot be done to a live box is skipped, each saying why, never passed
    skipped = {c.name: c.detail for c in report.checks if c.result is Result.SKIP}
    assert set(skipped) == {
        "power off",
        "the box answers an error",
        "the box answers garbage",
        "the box never finishes its answer",
        "a hanging box does not hold up another",
        "a box that vanishes does not stop the adapter",
    }
    assert "--power" in skipped["power off"] and "live box" in skipped["the box answers an error"]
    # and the addresses that refuse or never answer are still tried
    tried = {c.name: c.result for c in report.checks if c.group == "unreachable"}
    assert tried["address that refuses"] is Result.PASS and tried["address that never answers"] is Result.PASS


async def test_a_cable_box_without_the_operators_app_is_certified_degraded_not_passed() -> None:
    from linli.sim.dial_box import DialBox

    # given a live cable box that has DIAL and DLNA but not the operator's Linli app
    box = DialBox(name="no-app-box", companion=False)
    await box.async_start()
    try:
        report = await async_certify("stb_broadcast", target=box.url)
    finally:
        await box.async_stop()
    # then what needs the app (the overlay, the portal) is reported degraded, saying why — not passed
    degraded = {c.capability: c.detail for c in report.checks if c.result is Result.DEGRADED}
    assert {"notify", "portal"} <= set(degraded), report.table()
    assert all("Linli" in why for why in degraded.values())
    assert not any(
        c.result is Result.PASS for c in report.checks if c.capability in degraded and c.group == "contract"
    )
    # while what works without it still passes, and the report validates against its schema
    assert any(c.result is Result.PASS and c.capability == "volume" for c in report.checks)
    Draft202012Validator(json.loads(SCHEMA_PATH.read_text())).validate(report.as_dict())
