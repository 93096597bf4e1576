"""Value templates as devices ship them render; hostile ones are refused with a reason and render nothing.

The in-the-wild templates are those of Zigbee2MQTT (homeassistant.ts), Tasmota
(xdrv_12_home_assistant.ino), OpenMQTTGateway/Theengs and Home Assistant's MQTT docs.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from linli.gateway.profiles.templates import (
    MAX_TEMPLATE_CHARS,
    MISSING,
    TemplateFailed,
    TemplateRefused,
    compile_template,
    render,
)


def run(template: str, payload: str) -> Any:
    try:
        value_json = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value_json = MISSING
    return render(template, payload, value_json)


@pytest.mark.parametrize(
    ("template", "payload", "expected"),
    [
        ("{{ value_json.contact }}", '{"contact": false, "battery": 91}', "False"),  # Zigbee2MQTT
        ("{{ value_json.update.state }}", '{"update": {"state": "idle"}}', "idle"),  # a key, not dict.update
        ("{{value_json['ENERGY']['Power']}}", '{"ENERGY": {"Power": 95}}', "95"),  # Tasmota
        ('{{ value_json["AM2301"].Temperature }}', '{"AM2301": {"Temperature": 21.4}}', "21.4"),
        ("{{ value_json.weight | is_defined }}", '{"weight": 62.35}', "62.35"),  # OpenMQTTGateway
        ("{{ value | float | round(1) }}", "23.456", "23.5"),  # plain payloads
        ("{{ value_json.t | int }}", '{"t": "21.7"}', "21"),
        ("{{ value | lower }}", "ON", "on"),
        ("{{ value_json.mode | default('auto') }}", "{}", "auto"),
        ("{{ 'ON' if value_json.relay == 1 else 'OFF' }}", '{"relay": 1}', "ON"),
        ("{% if value_json.lux > 50 %}bright{% else %}dark{% endif %}", '{"lux": 10}', "dark"),
        ("{{ value.split(',')[1] }}", "12,34", "34"),
        ("{{ value_json.s | float(0) }}", '{"s": "unavailable"}', "0"),
        ("{% set t = value_json.temp %}{{ (t * 1.8 + 32) | round(1) }}", '{"temp": 20}', "68.0"),
    ],
)
def test_templates_found_in_the_wild_render(template: str, payload: str, expected: str) -> None:
    assert run(template, payload) == expected


@pytest.mark.parametrize(
    "template",
    ["{{ value_json.battery }}", "{{ value_json.weight | is_defined }}", "{{ value_json.a.b | float }}"],
)
def test_a_field_the_payload_lacks_is_not_reported(template: str) -> None:
    # a Zigbee2MQTT message without `battery`, a BLE advertisement without `weight`
    assert run(template, '{"linkquality": 80}') is MISSING


def test_a_template_failing_on_one_payload_says_why_and_keeps_working() -> None:
    with pytest.raises(TemplateFailed, match="cannot convert 'unavailable' to a number"):
        run("{{ value_json.s | float }}", '{"s": "unavailable"}')
    assert run("{{ value_json.s | float }}", '{"s": "21.5"}') == "21.5"


HOSTILE = [
    ("{{ ''.__class__.__mro__ }}", "__mro__"),
    ("{{ cycler.__init__.__globals__ }}", "__globals__"),
    ("{{ value_json['__class__'] }}", "__class__"),
    ("{{ range(10**9) | list }}", "range"),
    ("{% for i in value %}{% for j in value %}x{% endfor %}{% endfor %}", "loops"),
    ("{{ lipsum(10**6) }}", "lipsum"),
    ("{{ value_json | attr('__class__') }}", "filter 'attr'"),
    ("{{ value_json.items() }}", "calls a function"),
    ("{{ value_json.clear() }}", "calls a function"),
    ("{% include 'x' %}", "include"),
    ("{{ 'x' | center(1000000) }}", "filter 'center'"),
    ("{{ now() }}", "now"),
    ("{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "limit"),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE, ids=[r for _, r in HOSTILE])
def test_hostile_templates_are_refused_with_a_reason_before_they_run(template: str, reason: str) -> None:
    with pytest.raises(TemplateRefused) as refused:
        compile_template(template)
    assert reason in str(refused.value)
    # and asking again (cached) refuses again: it never renders anything
    with pytest.raises(TemplateRefused):
        run(template, '{"a": 1}')


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ 'a' * 1000000 }}", "repeating a sequence"),
        ("{{ value * 100000 }}", "repeating a sequence"),
        ("{{ 2 ** 100 ** 3 }}", "a power"),
        ("{{ value ~ value ~ value ~ value }}", "output over"),
    ],
)
def test_templates_that_blow_up_at_render_are_refused_for_good(template: str, reason: str) -> None:
    payload = "x" * 2000  # a 1 MB output would need 500 of these: the limit stops it long before
    compiled = compile_template(template)
    with pytest.raises(TemplateRefused, match=reason):
        compiled.render(payload, MISSING)
    # refused for good: even a harmless payload renders nothing now
    with pytest.raises(TemplateRefused, match=reason):
        compiled.render("1", MISSING)


def test_a_template_over_the_length_limit_is_refused() -> None:
    with pytest.raises(TemplateRefused, match="over the"):
        compile_template("{{ value }}" + " " * MAX_TEMPLATE_CHARS)


def test_one_template_text_is_compiled_once() -> None:
    assert compile_template("{{ value_json.temperature }}") is compile_template(
        "{{ value_json.temperature }}"
    )
