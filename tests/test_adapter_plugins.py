"""Adapter plug-ins: found by entry point and folder, checked, started in isolation, broken ones explained."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from linli import cli
from linli.components import BUILTIN_ADAPTERS
from linli.gateway.plugins import AdapterState, ManifestError, discover, load_manifest
from tests.brokers import free_port, settle
from tests.portal_accounts import add_account, api_token

GOOD_CODE = """
class Adapter:
    async def async_start(self, api):
        self.api = api
        self.events = 0
        api.bus.listen(object, lambda event: None) if False else None
        self.settings = api.config

    async def async_stop(self):
        pass
"""
CODE = {
    "acme_good": GOOD_CODE,
    "acme_broken_manifest": GOOD_CODE,
    "acme_import_error": "import linli_no_such_module  # noqa\n" + GOOD_CODE,
    "acme_start_raises": """
class Adapter:
    async def async_start(self, api):
        raise ValueError("cannot reach the vendor cloud: set adapters.settings.acme_start_raises.api_key")

    async def async_stop(self):
        pass
""",
    "acme_crashes": """
import asyncio

class Adapter:
    async def async_start(self, api):
        async def job():
            await asyncio.sleep(0.05)
            raise RuntimeError("lost the serial port")
        api.spawn(job(), "reader")

    async def async_stop(self):
        pass
""",
    "acme_no_permission": """
class Adapter:
    async def async_start(self, api):
        api.notifier.register(self)

    async def async_stop(self):
        pass
""",
    "acme_needs_key": GOOD_CODE,
}


def manifest(adapter_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": adapter_id,
        "name": f"ACME {adapter_id}",
        "version": "0.3.1",
        "kind": "provider",
        "entry": f"{adapter_id}.adapter:Adapter",
        "provides": ["notify"],
        "discovery": {"zeroconf": [{"type": "_acme._tcp.local."}]},
        "permissions": ["bus"],
        **extra,
    }


MANIFESTS = {
    "acme_good": manifest("acme_good"),
    "acme_broken_manifest": {**manifest("acme_broken_manifest"), "version": "one", "provides": ["tv"]},
    "acme_import_error": manifest("acme_import_error"),
    "acme_start_raises": manifest("acme_start_raises"),
    "acme_crashes": manifest("acme_crashes"),
    "acme_no_permission": manifest("acme_no_permission"),
    "acme_needs_key": manifest(
        "acme_needs_key",
        config_schema={
            "type": "object",
            "required": ["api_key"],
            "properties": {"api_key": {"type": "string"}, "region": {"type": "string", "default": "hubei"}},
        },
    ),
}


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each ACME package installed the way pip would: code, manifest.json, and an entry point."""
    site = tmp_path / "site"
    for name, code in CODE.items():
        package = site / name
        package.mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "adapter.py").write_text(code)
        (package / "manifest.json").write_text(json.dumps(MANIFESTS[name]))
        dist = site / f"{name}-0.3.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: 0.3.1\n"
        )
        (dist / "entry_points.txt").write_text(f"[linli.adapters]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(site))
    yield site
    for name in CODE:
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]


def test_manifest_errors_name_the_file_and_json_path(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(
        json.dumps({**manifest("x1"), "version": "one", "provides": ["tv"], "permissions": ["root"]})
    )
    with pytest.raises(ManifestError) as raised:
        load_manifest(path)
    errors = raised.value.errors
    assert any(e.startswith("$.version: 'one' does not match") for e in errors)
    assert any(e.startswith("$.permissions[0]: 'root' is not one of") for e in errors)
    path.write_text(json.dumps({**manifest("x1"), "provides": ["tv"]}))
    with pytest.raises(ManifestError, match=r"\$\.provides\[0\]: 'tv' is not a capability kind"):
        load_manifest(path)
    path.write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(path)


def test_adapters_are_found_by_entry_point_and_in_the_builtin_folder(installed: Path) -> None:
    entries = {e.id: e for e in discover(builtin_package=BUILTIN_ADAPTERS)}
    # the built-in operators' adapters: in the folder and declared as entry points
    assert "folder adapters/stb_carrier" in entries["stb_carrier"].sources
    assert any(s.startswith("entry point stb_broadcast") for s in entries["stb_broadcast"].sources)
    # a provider's pip-installed package, by its entry point alone
    assert entries["acme_good"].sources == ["entry point acme_good (acme-good)"]
    assert entries["acme_good"].manifest is not None and entries["acme_good"].problem is None
    # a bad manifest is found, with what is wrong
    broken = entries["acme_broken_manifest"]
    assert broken.manifest is None and "$.version" in (broken.problem or "")


@pytest.mark.slow
async def test_broken_adapters_are_disabled_with_a_reason_and_the_gateway_keeps_running(
    installed: Path, make_gateway, capsys
) -> None:
    # given six broken adapters and a good one installed
    gateway = await make_gateway(
        components=["linli.portal.app:Portal", "linli.gateway.plugins.host:AdapterHost"],
        portal={"enabled": True},
        adapters={"allowed": list(CODE), "only": list(CODE), "settings": {"acme_good": {"anything": 1}}},
    )
    host = gateway.components["adapters"]
    await settle(lambda: host.slots["acme_crashes"].state is AdapterState.CRASHED, timeout=2)
    states = {s["id"]: (s["state"], s["reason"] or "") for s in host.status()}
    # then the gateway runs, with the good adapter, and each broken one says why it is off
    assert gateway.ready.is_set()
    assert states["acme_good"] == ("running", "")
    assert states["acme_broken_manifest"][0] == "disabled"
    assert "$.provides[0]: 'tv' is not a capability kind" in states["acme_broken_manifest"][1]
    assert states["acme_import_error"] == (
        "disabled",
        "cannot load acme_import_error.adapter:Adapter: "
        "ModuleNotFoundError: No module named 'linli_no_such_module'",
    )
    assert states["acme_start_raises"][0] == "failed"
    assert "exception in start: ValueError: cannot reach the vendor cloud" in states["acme_start_raises"][1]
    assert states["acme_crashes"] == ("crashed", "crashed: RuntimeError: lost the serial port")
    assert states["acme_no_permission"][0] == "failed"
    assert "without the 'notify' permission; add it to 'permissions'" in states["acme_no_permission"][1]
    assert states["acme_needs_key"][0] == "disabled"
    assert "adapters.settings.acme_needs_key: 'api_key' is a required property" in states["acme_needs_key"][1]
    # the good adapter got its settings, with the defaults of its schema
    assert host.adapter("acme_good").settings == {"anything": 1}
    # the portal shows the same
    url = gateway.components["portal"].url.rstrip("/")
    await add_account(gateway, "installer", "installer")
    token = await api_token(gateway, "installer")
    auth = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession(headers=auth) as http, http.get(f"{url}/api/v1/adapters") as response:
        listed = {item["id"]: item for item in (await response.json())["items"]}
    assert listed["acme_crashes"]["state"] == "crashed"
    assert listed["acme_import_error"]["reason"] == states["acme_import_error"][1]
    # and so does `linli adapters`, asking the running gateway
    status = await asyncio.to_thread(cli.main, ["adapters", "--url", url, "--token", token])
    out = capsys.readouterr().out
    assert status == 1
    assert "running gateway" in out
    assert "crashed: RuntimeError: lost the serial port" in out
    assert "No module named 'linli_no_such_module'" in out


def test_linli_adapters_without_a_gateway_checks_manifests_and_imports(
    installed: Path, capsys, tmp_path: Path
) -> None:
    # given a config whose portal nobody serves
    port = free_port()
    config = tmp_path / "linli.toml"
    allowed = ", ".join(f'"{name}"' for name in [*CODE, "stb_carrier"])
    config.write_text(f"[portal]\nport = {port}\n[adapters]\nallowed = [{allowed}]\n", encoding="utf-8")
    status = cli.main(["adapters", "--config", str(config)])
    out = capsys.readouterr().out
    assert status == 1
    assert f"checked offline — start errors not shown: no gateway answered at http://127.0.0.1:{port}" in out
    lines = {line.split()[0]: line for line in out.splitlines()[2:] if line.strip()}
    assert " ok " in lines["acme_good"] and " ok " in lines["stb_carrier"]
    assert "broken" in lines["acme_import_error"] and "linli_no_such_module" in lines["acme_import_error"]
    assert "broken" in lines["acme_broken_manifest"] and "$.version" in lines["acme_broken_manifest"]
    status = cli.main(["adapters", "--config", str(config), "--json"])
    items = {i["id"]: i for i in json.loads(capsys.readouterr().out)["items"]}
    assert items["acme_good"]["state"] == "ok"
    # and with the default configuration, only the shipped adapters are allowed: ACME's are listed
    # as not allowed (not imported to check them, not counted as broken)
    config.write_text(f"[portal]\nport = {port}\n", encoding="utf-8")
    cli.main(["adapters", "--config", str(config), "--json"])
    items = {i["id"]: i for i in json.loads(capsys.readouterr().out)["items"]}
    assert items["acme_good"]["state"] == "not_allowed" and items["stb_carrier"]["state"] == "ok"
    assert all(items[name]["state"] == "ok" for name in ("esphome", "stb_broadcast"))  # every shipped one
    assert items["acme_import_error"]["state"] == "not_allowed"
    # but a gateway named with --url that does not answer is an error, not a silent fallback
    assert cli.main(["adapters", "--url", f"http://127.0.0.1:{port}"]) == 2
    assert f"no gateway answered at http://127.0.0.1:{port}" in capsys.readouterr().err


async def test_a_stopped_or_crashed_adapter_leaves_nothing_behind(installed: Path, make_gateway) -> None:
    gateway = await make_gateway(
        components=["linli.gateway.plugins.host:AdapterHost"],
        adapters={"allowed": list(CODE), "only": ["acme_good", "acme_crashes"]},
    )
    host = gateway.components["adapters"]
    await settle(lambda: host.slots["acme_crashes"].state is AdapterState.CRASHED, timeout=2)
    assert host.adapter("acme_crashes") is None
    # a stopped adapter can be started again, and a crashed one restarted
    await host.async_stop_adapter("acme_good")
    assert host.slots["acme_good"].state is AdapterState.STOPPED
    assert await host.async_restart("acme_good") is AdapterState.RUNNING
    assert await host.async_start_adapter("acme_crashes") is AdapterState.RUNNING
    await settle(lambda: host.slots["acme_crashes"].state is AdapterState.CRASHED, timeout=2)
    assert host.slots["acme_crashes"].starts == 2


async def test_only_adapters_whose_manifest_is_allowed_are_loaded(
    installed: Path, make_gateway, caplog
) -> None:
    import hashlib

    good = hashlib.sha256((installed / "acme_good" / "manifest.json").read_bytes()).hexdigest()
    # given ACME's adapters installed, a config that allows only the shipped ones and acme_crashes,
    # and pins acme_needs_key to a manifest other than the installed one
    gateway = await make_gateway(
        components=["linli.gateway.plugins.host:AdapterHost"],
        adapters={
            "allowed": ["@shipped", "acme_crashes", f"acme_needs_key@sha256:{'0' * 64}"],
            "only": ["acme_good", "acme_import_error", "acme_needs_key", "acme_crashes"],
        },
    )
    host = gateway.components["adapters"]
    states = {s["id"]: s for s in host.status()}
    # then the ones not allowed are listed as such, with what to do, and their code never ran
    for name in ("acme_good", "acme_import_error"):
        assert states[name]["state"] == "not_allowed"
        assert f"add '{name}'" in states[name]["reason"]
    assert f"acme_good@sha256:{good}" in states["acme_good"]["reason"]
    assert states["acme_good"]["manifest_sha256"] == good
    assert "acme_good.adapter" not in sys.modules and "linli_no_such_module" not in caplog.text
    # and a pinned manifest that changed is refused, saying so
    assert states["acme_needs_key"]["state"] == "not_allowed"
    assert "the package changed" in states["acme_needs_key"]["reason"]
    # and the allowed one runs; each refusal is one clear log line
    assert states["acme_crashes"]["state"] in ("running", "crashed")
    refused = [r.getMessage() for r in caplog.records if "not loaded: not allowed" in r.getMessage()]
    assert sorted(m.split()[1] for m in refused if m.split()[1].startswith("acme")) == [
        "acme_good",
        "acme_import_error",
        "acme_needs_key",
        "acme_no_permission",
        "acme_start_raises",
    ]
    # and it cannot be started by hand either
    with pytest.raises(ValueError, match="not allowed"):
        await host.async_start_adapter("acme_good")


def test_a_malformed_allowed_entry_is_a_config_error() -> None:
    from linli.gateway.config import ConfigError, load_config

    with pytest.raises(
        ConfigError, match=r"adapters.allowed\[1\]: 'acme_tv@md5:00' is not '@shipped' nor an adapter id"
    ):
        load_config(environ={}, overrides={"adapters": {"allowed": ["stb_carrier", "acme_tv@md5:00"]}})
