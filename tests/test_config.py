"""Gateway configuration: defaults, TOML file, LINLI_ environment, explicit overrides."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from linli.components import DEFAULT_COMPONENTS
from linli.gateway.config import CONFIG_SCHEMA, ConfigError
from linli.gateway.config import load_config as core_load_config
from linli.gateway.mqtt.link import MqttSettings

ROOT_DEFAULTS = {"components": list(DEFAULT_COMPONENTS)}


def load_config(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """The configuration as `linli run` loads it: the composition root's components by default."""
    kwargs.setdefault("defaults", ROOT_DEFAULTS)
    return core_load_config(*args, **kwargs)


@pytest.fixture
def host_named(monkeypatch: pytest.MonkeyPatch):
    def set_name(name: str) -> None:
        monkeypatch.setattr("linli.gateway.config.socket.gethostname", lambda: name)

    set_name("linli-box")
    return set_name


def write(tmp_path: Path, text: str, name: str = "linli.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def assert_defaults(config: dict) -> None:
    assert config["portal"]["port"] == 8080
    assert config["mqtt"]["port"] == 1883
    # "auto": the managed Mosquitto (per-device ACL) when installed, else the embedded rumqttd
    assert config["mqtt"]["broker"] == ("mosquitto" if shutil.which("mosquitto") else "embedded")
    assert config["data_dir"] == "./linli-data"


# -- defaults --------------------------------------------------------------------------------


def test_no_config_file_runs_on_defaults_named_after_the_host(host_named) -> None:
    config = load_config(None, environ={})
    assert_defaults(config)
    assert config["gateway_id"] == "gw-linli-box"


def test_empty_config_file_runs_on_defaults(tmp_path: Path, host_named) -> None:
    config = load_config(write(tmp_path, ""), environ={})
    assert_defaults(config)
    assert config["gateway_id"] == "gw-linli-box"


def test_host_name_punctuation_becomes_a_valid_gateway_id(host_named) -> None:
    # given a host called like many home routers name machines
    host_named("box.fritz.box")
    # when no gateway_id is configured
    config = load_config(None, environ={})
    # then the derived id satisfies the same rule as a configured one
    assert config["gateway_id"] == "gw-box-fritz-box"
    assert re.fullmatch(CONFIG_SCHEMA["properties"]["gateway_id"]["pattern"], config["gateway_id"])


def test_configured_gateway_id_wins_over_the_host_name(tmp_path: Path, host_named) -> None:
    config = load_config(write(tmp_path, 'gateway_id = "gw-7"\n'), environ={})
    assert config["gateway_id"] == "gw-7"


def test_file_values_merge_into_defaults_section_by_section(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[mqtt]\nport = 1884\n"), environ={})
    assert config["mqtt"]["port"] == 1884
    assert config["mqtt"]["host"] == "127.0.0.1"  # the rest of [mqtt] keeps its defaults
    assert config["portal"]["port"] == 8080


# -- errors name the key, the value and the problem ------------------------------------------


def test_port_out_of_range_names_key_and_limit(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 70000\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    message = str(caught.value)
    assert "mqtt.port" in message
    assert "70000" in message
    assert "65535" in message
    assert str(path) in message


def test_misspelt_key_names_section_and_the_unexpected_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[mqtt]\nprot = 1\n"), environ={})
    message = str(caught.value)
    assert "mqtt" in message
    assert "'prot'" in message


def test_wrong_type_names_key_and_expected_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, '[portal]\nport = "x"\n'), environ={})
    message = str(caught.value)
    assert "portal.port" in message
    assert "'x'" in message
    assert "integer" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = '[mqtt]\nport = 0\nprot = 1\n[portal]\nport = "x"\n'
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), environ={})
    lines = str(caught.value).splitlines()
    assert len(lines) == 3
    assert any("mqtt.port" in line for line in lines)
    assert any("'prot'" in line for line in lines)
    assert any("portal.port" in line for line in lines)


def test_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt\nport = 1\n", name="broken.toml")
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(path) in str(caught.value)
    assert "not valid TOML" in str(caught.value)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    assert str(caught.value) == f"{path}: no such config file"


def test_reconnect_minimum_above_maximum_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nreconnect_min_s = 10\nreconnect_max_s = 5\n")
    with pytest.raises(ConfigError, match=r"mqtt\.reconnect_min_s"):
        load_config(path, environ={})


# -- environment and overrides ---------------------------------------------------------------


def test_environment_overrides_are_applied(host_named) -> None:
    environ = {
        "LINLI_MQTT__PORT": "1884",
        "LINLI_STORE__BATCH_MS": "50",
        "LINLI_GATEWAY_ID": "gw-7",
        "PATH": "/usr/bin",  # unrelated variables are ignored
    }
    config = load_config(None, environ=environ)
    assert config["mqtt"]["port"] == 1884
    assert config["store"]["batch_ms"] == 50
    assert config["gateway_id"] == "gw-7"
    assert config["store"]["batch_rows"] == 20000  # siblings keep their defaults


def test_invalid_environment_value_says_it_came_from_the_environment() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ={"LINLI_MQTT__PORT": "abc"})
    message = str(caught.value)
    assert "environment" in message
    assert "mqtt.port" in message
    assert "'abc'" in message


def test_config_path_variable_is_not_a_setting() -> None:
    config = load_config(None, environ={"LINLI_CONFIG": "/etc/linli.toml"})
    assert "config" not in config


def test_file_then_environment_then_overrides_take_precedence(tmp_path: Path) -> None:
    # given the same keys set in the file, in the environment and as overrides
    path = write(tmp_path, "[mqtt]\nport = 1001\nkeepalive_s = 11\n[portal]\nport = 2001\n")
    environ = {"LINLI_MQTT__PORT": "1002", "LINLI_MQTT__KEEPALIVE_S": "12"}
    overrides = {"mqtt": {"port": 1003}}
    # when all three are loaded
    config = load_config(path, environ=environ, overrides=overrides)
    # then each key comes from the last layer that sets it
    assert config["mqtt"]["port"] == 1003  # override beats env and file
    assert config["mqtt"]["keepalive_s"] == 12  # env beats file
    assert config["portal"]["port"] == 2001  # file beats default


def test_overrides_are_validated_too() -> None:
    with pytest.raises(ConfigError, match=r"portal\.port"):
        load_config(None, environ={}, overrides={"portal": {"port": 0}})


def test_loading_does_not_mutate_the_defaults(tmp_path: Path) -> None:
    defaults = {"components": list(DEFAULT_COMPONENTS)}
    load_config(None, environ={}, overrides={"mqtt": {"port": 1999}, "components": []}, defaults=defaults)
    config = load_config(None, environ={}, defaults=defaults)
    assert config["mqtt"]["port"] == 1883
    assert config["components"] == list(DEFAULT_COMPONENTS)


def test_the_core_runs_nothing_above_it_unless_told() -> None:
    # the components are the composition root's choice (linli/components.py), not the core's
    assert core_load_config(None, environ={})["components"] == []


def test_a_components_section_gets_its_own_defaults_and_schema() -> None:
    # given the portal configured, with nothing said about its section
    portal_only = {"components": ["linli.portal.app:Portal"]}
    config = core_load_config(None, environ={}, overrides=portal_only)
    # then the portal's own defaults fill it
    assert config["portal"]["port"] == 8080 and config["portal"]["session_hours"] == 12
    # and its schema (not the core's) judges what is written there, the environment included
    with pytest.raises(ConfigError, match=r"portal\.session_hours"):
        load_config(
            None,
            environ={"LINLI_PORTAL__SESSION_HOURS": "9999"},
            overrides={"components": ["linli.portal.app:Portal"]},
        )
    with pytest.raises(ConfigError, match=r"portal\.trusted_proxies\[0\]"):
        core_load_config(
            None, environ={}, overrides={**portal_only, "portal": {"trusted_proxies": ["nowhere"]}}
        )
    # a section whose component does not run is kept as written, unjudged
    assert core_load_config(None, environ={}, overrides={"portal": {"port": 1}})["portal"] == {"port": 1}


def test_a_component_that_cannot_be_imported_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"linli\.services\.nowhere"):
        load_config(None, environ={}, overrides={"components": ["linli.services.nowhere:Nothing"]})


# -- secrets ---------------------------------------------------------------------------------


def test_mqtt_settings_never_show_the_password(tmp_path: Path) -> None:
    # given a config with broker credentials
    path = write(tmp_path, '[mqtt]\nusername = "gw"\npassword = "s3cr3t-pw"\n')
    mqtt = load_config(path, environ={})["mqtt"]
    settings = MqttSettings(
        host=mqtt["host"],
        port=mqtt["port"],
        client_id="linli-test",
        gateway_id="gw-test",
        username=mqtt["username"],
        password=mqtt["password"],
    )
    # when the settings are printed or logged in any usual way
    shown = [repr(settings), str(settings), f"{settings}", f"{settings!r}", repr([settings])]
    # then the password is never part of it, while the useful parts are
    assert all("s3cr3t-pw" not in text for text in shown)
    assert repr(settings) == "MqttSettings(gw@127.0.0.1:1883)"


def test_anonymous_mqtt_settings_say_so() -> None:
    settings = MqttSettings(host="broker", port=8883, client_id="c", gateway_id="g")
    assert repr(settings) == "MqttSettings(anonymous@broker:8883)"


def test_numeric_looking_password_from_environment_is_kept_as_text() -> None:
    # given a broker password made of digits, set the usual way in the environment
    environ = {"LINLI_MQTT__USERNAME": "gw", "LINLI_MQTT__PASSWORD": "123456"}
    # when the configuration is loaded
    config = load_config(None, environ=environ)
    # then the gateway uses it as the password it is
    assert config["mqtt"]["password"] == "123456"


def test_config_error_about_the_password_does_not_echo_it(tmp_path: Path) -> None:
    # given a password written as a TOML number by mistake
    path = write(tmp_path, "[mqtt]\npassword = 98765432\n")
    # when the configuration is refused
    with pytest.raises(ConfigError) as caught:
        load_config(path, environ={})
    # then the message names the key but not the secret
    assert "mqtt.password" in str(caught.value)
    assert "98765432" not in str(caught.value)


def test_gateway_id_from_a_non_ascii_host_name_follows_the_gateway_id_rule(host_named) -> None:
    host_named("客厅网关")
    config = load_config(None, environ={})
    assert re.fullmatch(CONFIG_SCHEMA["properties"]["gateway_id"]["pattern"], config["gateway_id"])
